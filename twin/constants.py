"""Physical units shared across the twin: one definition each, imported wherever they are needed."""

ANGSTROM = 1e-10  # m: atom positions are handed out in ångström, everything public is in metres
