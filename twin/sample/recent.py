"""The atoms of recently asked-for windows, kept for the next window inside one of them.

Instruments ask for the atoms of nearly the same area again and again: an AFM frame after frame (the
window creeping with the drift, growing with a wearing tip), a STEM focus series (the window shrinking
and growing with the probe's reach). Building a window's atoms from the seed costs far more than picking
them from a larger window's, so :class:`RecentWindows` keeps the atoms (in ångström, in the sample frame)
of the last few windows asked for again, or nearly so (a window asked for once keeps nothing), until
their sample changes; every sample of the process shares one budget in bytes. A removal of atoms
(:meth:`RecentWindows.remove`) takes them out of the kept windows, so a beam damaging the area as it
images it does not cost a rebuild each time.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

BUDGET_BYTES = 128 * 2**20  # what all kept windows together may hold
ASKED = 16  # windows asked for that are remembered (their bounds), all samples together


@dataclass(frozen=True)
class KeptWindow:
    """The atoms of ``bounds`` = ``(x0, y0, x1, y1)`` (Å) of one sample at one version: atomic numbers,
    positions (Å, sample frame) and sites ``(layer, i, j, b)``, in the order the sample builds them."""

    bounds: tuple[float, float, float, float]
    version: int
    numbers: np.ndarray
    positions: np.ndarray
    sites: np.ndarray

    def holds(self, x0: float, y0: float, x1: float, y1: float) -> bool:
        bx0, by0, bx1, by1 = self.bounds
        return bx0 <= x0 and by0 <= y0 and x1 <= bx1 and y1 <= by1

    @property
    def nbytes(self) -> int:
        return self.numbers.nbytes + self.positions.nbytes + self.sites.nbytes

    def __post_init__(self) -> None:
        for array in (self.numbers, self.positions, self.sites):
            array.flags.writeable = False  # shared by every window picked from it


class RecentWindows:
    """Kept windows of any number of samples (each known by a weak reference), least recently used
    dropped first once their bytes would exceed ``budget``; and the last :data:`ASKED` windows asked
    for (their bounds only), so that a window asked for once, never again, keeps no atoms."""

    def __init__(self, budget: int = BUDGET_BYTES) -> None:
        self.budget = budget
        self._kept: OrderedDict[int, tuple[weakref.ref, KeptWindow]] = OrderedDict()
        self._asked: OrderedDict[int, tuple[weakref.ref, tuple[float, float, float, float]]] = OrderedDict()
        self._lock = threading.Lock()
        self._next = 0

    def find(self, sample: Any, version: int, x0: float, y0: float, x1: float, y1: float
             ) -> tuple[KeptWindow | None, float]:
        """A kept window of ``sample`` at ``version`` that holds ``[x0, x1) x [y0, y1)`` (Å), or None; and
        the largest fraction of that window one of the sample's windows asked for recently covers (a
        window asked for again, or moved or grown a little since: worth keeping)."""
        best = 0.0
        with self._lock:
            for key, (owner, kept) in reversed(self._kept.items()):
                if owner() is not sample or kept.version != version:
                    continue
                if kept.holds(x0, y0, x1, y1):
                    self._kept.move_to_end(key)
                    return kept, 1.0
            for owner, bounds in self._asked.values():
                if owner() is sample:
                    best = max(best, _overlap(bounds, (x0, y0, x1, y1)))
            self._asked[self._next] = (weakref.ref(sample), (x0, y0, x1, y1))
            self._next += 1
            while len(self._asked) > ASKED:
                self._asked.popitem(last=False)
        return None, best

    def keep(self, sample: Any, kept: KeptWindow, current: int) -> None:
        """Keep ``kept`` if ``sample`` is still at its version (``current``, read now) and it fits."""
        if kept.nbytes > self.budget:
            return
        with self._lock:
            if kept.version != current:
                return
            self._kept[self._next] = (weakref.ref(sample), kept)
            self._next += 1
            self._trim()

    def remove(self, sample: Any, version: int, sites: np.ndarray) -> None:
        """``sample`` went from ``version`` to ``version + 1`` by losing the atoms of ``sites`` (N, 4): its
        windows kept at ``version`` lose them too and move on to ``version + 1``."""
        sites = np.asarray(sites, dtype=np.int64).reshape(-1, 4)
        with self._lock:
            for key, (owner, kept) in list(self._kept.items()):
                if owner() is None:
                    del self._kept[key]
                elif owner() is sample and kept.version == version:
                    stay = ~_rows_in(kept.sites, sites)
                    self._kept[key] = (owner, KeptWindow(kept.bounds, version + 1, kept.numbers[stay],
                                                         kept.positions[stay], kept.sites[stay]))

    def clear(self) -> None:
        with self._lock:
            self._kept.clear()
            self._asked.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(kept.nbytes for _, kept in self._kept.values())

    def _trim(self) -> None:
        for key in [key for key, (owner, _) in self._kept.items() if owner() is None]:
            del self._kept[key]
        for key in [key for key, (owner, _) in self._asked.items() if owner() is None]:
            del self._asked[key]
        while self._kept and sum(kept.nbytes for _, kept in self._kept.values()) > self.budget:
            self._kept.popitem(last=False)


def _overlap(bounds: tuple[float, float, float, float], window: tuple[float, float, float, float]) -> float:
    """The fraction of ``window`` that lies in ``bounds`` (both ``(x0, y0, x1, y1)``)."""
    (bx0, by0, bx1, by1), (x0, y0, x1, y1) = bounds, window
    width, height = min(x1, bx1) - max(x0, bx0), min(y1, by1) - max(y0, by0)
    area = (x1 - x0) * (y1 - y0)
    return max(width, 0.0) * max(height, 0.0) / area if area > 0 else 0.0


def _rows_in(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Which of the integer ``rows`` (N, k) equal one of ``others`` (M, k): each row made one integer, its
    columns' digits in a mixed radix wide enough for both."""
    if len(rows) == 0 or len(others) == 0:
        return np.zeros(len(rows), dtype=bool)
    both = np.concatenate([rows, others])
    low, spans = both.min(axis=0), both.max(axis=0) - both.min(axis=0) + 1
    if float(np.prod(spans.astype(float))) >= 2.0**62:  # too wide for one integer: row by row
        found = np.zeros(len(rows), dtype=bool)
        for row in others:
            found |= np.all(rows == row, axis=1)
        return found
    weights = np.array([int(np.prod(spans[k + 1:])) for k in range(len(spans))], dtype=np.int64)
    return np.isin((rows - low) @ weights, (others - low) @ weights)


RECENT = RecentWindows()
