"""Helpers lab scripts import from the vendor's companion toolkit: plotting (:mod:`.vision`) and
context managers (:mod:`.context_managers`), written here for the twin's images."""
