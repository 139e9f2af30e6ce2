"""What has happened to the specimen since it was made: atoms the beam knocked out.

Stored per cell of the plane, like the grown defects, so that any window finds its own events
quickly; memory grows with the damage done, never with the area the sample covers. Lengths in Å.
"""

from __future__ import annotations

import threading

import numpy as np

Site = tuple[int, ...]  # (layer, i, j, b)


class KnockOuts:
    """Lattice sites emptied by the beam, with the element each one held."""

    def __init__(self, cell_size: float = 200.0) -> None:
        self.cell_size = cell_size
        self._cells: dict[tuple[int, int], dict[Site, tuple[float, float, str]]] = {}
        self._lock = threading.Lock()

    def add(self, sites: np.ndarray, xy: np.ndarray, symbols: list[str]) -> int:
        """Record sites ``(layer, i, j, b)`` at ``xy`` (Å) that lost their atom; returns how many are new."""
        added = 0
        with self._lock:
            for site, (x, y), symbol in zip(sites.tolist(), xy.tolist(), symbols, strict=True):
                cell = self._cells.setdefault(self._cell_of(x, y), {})
                if tuple(site) not in cell:
                    cell[tuple(site)] = (x, y, symbol)
                    added += 1
        return added

    def in_window(self, x0: float, y0: float, x1: float, y1: float) -> list[tuple[Site, float, float, str]]:
        """Emptied sites in ``[x0, x1) × [y0, y1)`` (Å): ``(site, x, y, element)``."""
        found = []
        (cx0, cy0), (cx1, cy1) = self._cell_of(x0, y0), self._cell_of(x1, y1)
        with self._lock:
            for cx in range(cx0, cx1 + 1):
                for cy in range(cy0, cy1 + 1):
                    for site, (x, y, symbol) in self._cells.get((cx, cy), {}).items():
                        if x0 <= x < x1 and y0 <= y < y1:
                            found.append((site, x, y, symbol))
        return found

    def peek(self, limit: int) -> list[tuple[float, float, str]]:
        """Up to ``limit`` emptied sites ``(x, y, element)`` (Å) without taking the lock (observers that
        must never wait: sites added meanwhile may be missing)."""
        found: list[tuple[float, float, str]] = []
        for cell in list(self._cells.values()):
            found.extend(list(cell.values())[:limit - len(found)])
            if len(found) >= limit:
                break
        return found

    def __len__(self) -> int:
        with self._lock:
            return sum(len(cell) for cell in self._cells.values())

    def _cell_of(self, x: float, y: float) -> tuple[int, int]:
        return int(np.floor(x / self.cell_size)), int(np.floor(y / self.cell_size))
