"""Progress bars of long work a person waits for: tqdm on stderr, on a terminal only, with the time left.

``TWIN_PROGRESS=0`` turns every bar off (the clients' reports of long server calls too); otherwise a bar
shows on a terminal and nothing reaches a log file or a pipe.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PROGRESS_VARIABLE = "TWIN_PROGRESS"  # "0": no progress on stderr


def wanted() -> bool:
    """Whether progress may be shown at all (``TWIN_PROGRESS`` is not "0")."""
    return os.environ.get(PROGRESS_VARIABLE, "1") != "0"


def bar(iterable: Any = None, **options: Any) -> Any:
    """A tqdm bar on the current stderr, shown on a terminal only and never with ``TWIN_PROGRESS=0``;
    ``options`` go to tqdm (``total``, ``desc``, ``unit``...)."""
    from tqdm import tqdm

    options.setdefault("file", sys.stderr)
    disable = options.pop("disable", None)
    return tqdm(iterable, disable=True if disable or not wanted() else None, **options)
