"""Moved to :mod:`twin.common.wire` (the server and the clients share it); this name stays an alias of
that module for scripts that import it from here."""

import sys

from twin.common import wire

sys.modules[__name__] = wire
