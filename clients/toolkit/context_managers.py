"""Context managers that do what their names say, around any blanker with ``blank()``/``unblank()``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def blanker_context(blanker: Any) -> Iterator[Any]:
    """The beam unblanked inside the block and blanked again on leaving it, however it is left."""
    blanker.unblank()
    try:
        yield blanker
    finally:
        blanker.blank()
