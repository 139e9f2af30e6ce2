"""Moved to :mod:`twin.common.cf` (the instruments and the clients share it); this name stays an alias of
that module for scripts that import it from here (``twin.cf.nested_attributes``)."""

import sys

from twin.common import cf

sys.modules[__name__] = cf
