"""Enumerations named as in AutoScript TEM (``from clients.tem.enumerations import CameraType``).

They live in :mod:`twin.common.tem_vocabulary`, which the server shares; this module is an alias of it.
"""

import sys

from twin.common import tem_vocabulary

sys.modules[__name__] = tem_vocabulary
