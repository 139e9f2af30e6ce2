"""The latest snapshot of each live channel, and where each instrument has imaged: written by the
instruments as they acquire (cheaply: a reference and a counter), read by the web page."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

MAX_FOOTPRINTS = 5000  # places imaged the map keeps (the oldest go first)


@dataclass(frozen=True)
class Snapshot:
    """One channel's latest payload and its version (unique on the board, increasing)."""

    version: int
    payload: Any


@dataclass(frozen=True)
class Footprint:
    """A place an instrument imaged: its window (m, ``x_min``... as image metadata gives it), the
    electron dose it gave (electrons/m², 0 for the AFM) and its version on the board."""

    instrument: str
    window: dict[str, float]
    dose: float
    version: int


class Board:
    """Per channel the latest :class:`Snapshot`, and the :class:`Footprint` list; thread-safe, and
    publishing never waits for a reader (one short lock around a dictionary update)."""

    def __init__(self, max_footprints: int = MAX_FOOTPRINTS) -> None:
        self._lock = threading.Lock()
        self._counter = itertools.count(1)
        self._latest: dict[str, Snapshot] = {}
        self._footprints: deque[Footprint] = deque(maxlen=max_footprints)

    def publish(self, channel: str, payload: Any) -> int:
        """Make ``payload`` the latest of ``channel`` (kept by reference: the publisher must not change
        it afterwards); returns its version."""
        with self._lock:
            version = next(self._counter)
            self._latest[channel] = Snapshot(version, payload)
        return version

    def note_footprint(self, instrument: str, window: dict[str, float], dose: float) -> None:
        """Record that ``instrument`` imaged ``window`` giving it ``dose`` (electrons/m²)."""
        with self._lock:
            self._footprints.append(Footprint(instrument, dict(window), float(dose), next(self._counter)))

    def latest(self, channel: str) -> Snapshot | None:
        with self._lock:
            return self._latest.get(channel)

    def versions(self) -> dict[str, int]:
        """Channel -> version of its latest snapshot, and ``map`` -> the newest footprint's."""
        with self._lock:
            versions = {channel: snapshot.version for channel, snapshot in self._latest.items()}
            if self._footprints:
                versions["map"] = self._footprints[-1].version
        return versions

    def footprints(self) -> list[Footprint]:
        with self._lock:
            return list(self._footprints)
