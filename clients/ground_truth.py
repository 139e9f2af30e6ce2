"""Ground truth of the shared sample, read from the twin (not available on a real instrument)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from ase import Atoms


@dataclass(frozen=True)
class Defect:
    """A point defect: kind, substituting species (None for a vacancy), host element, x, y, z (m)."""

    kind: str
    species: str | None
    host: str
    x: float
    y: float
    z: float
    label: str


def _window(x_min: float, y_min: float, x_max: float, y_max: float) -> dict[str, float]:
    return {"x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max}


class GroundTruth:
    """Queries about the sample itself, in metres in the sample frame."""

    def __init__(self, remote_getter: Any) -> None:
        self._get_remote = remote_getter

    @property
    def _remote(self) -> Any:
        return self._get_remote()

    def info(self) -> dict[str, Any]:
        """Sample name, material, seed, defect densities and the server's time scale."""
        return self._remote.info()

    def defects(self, x_min: float, y_min: float, x_max: float, y_max: float) -> list[Defect]:
        """Every point defect whose site lies in the window (m)."""
        return [Defect(**d) for d in self._remote.defects(_window(x_min, y_min, x_max, y_max))]

    def atoms(self, x_min: float, y_min: float, x_max: float, y_max: float) -> Atoms:
        """The atoms in the window; positions in Å relative to ``(x_min, y_min)``, z in the sample frame."""
        reply = self._remote.atoms(_window(x_min, y_min, x_max, y_max))
        cell = np.zeros(3)
        cell[:2] = reply["cell"][:2]
        atoms = Atoms(numbers=reply["numbers"], positions=reply["positions"], cell=cell)
        atoms.info["window"] = reply["window"]
        return atoms
