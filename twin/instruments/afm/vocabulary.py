"""Moved to :mod:`twin.common.afm_vocabulary` (the AFM and its client share it); this name stays an alias
of that module for code that imports it from here."""

import sys

from twin.common import afm_vocabulary

sys.modules[__name__] = afm_vocabulary
