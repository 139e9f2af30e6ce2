"""Ground truth of the shared sample, read from the twin (not available on a real instrument)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any

import numpy as np
from ase import Atoms

from twin.sample import Defect

__all__ = ["Defect", "GroundTruth"]


def _window(x_min: float, y_min: float, x_max: float, y_max: float) -> dict[str, float]:
    return {"x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max}


class GroundTruth:
    """Queries about the sample itself, in metres in the sample frame."""

    def __init__(self, sample_proxy: Callable[[], Any]) -> None:
        self._sample_proxy = sample_proxy

    def info(self) -> dict[str, Any]:
        """Sample name, material, seed, defect densities and the server's time scale."""
        return self._sample_proxy().info()

    def defects(self, x_min: float, y_min: float, x_max: float, y_max: float) -> list[Defect]:
        """Every point defect whose site lies in the window (m); at most 1 µm² per query."""
        names = [f.name for f in fields(Defect)]
        found = self._sample_proxy().defects(_window(x_min, y_min, x_max, y_max))
        return [Defect(**{name: d[name] for name in names}) for d in found]

    def atoms(self, x_min: float, y_min: float, x_max: float, y_max: float) -> Atoms:
        """The atoms in the window; positions in Å relative to ``(x_min, y_min)``, z in the sample frame."""
        reply = self._sample_proxy().atoms(_window(x_min, y_min, x_max, y_max))
        cell = np.zeros(3)
        cell[:2] = reply["cell"][:2]
        atoms = Atoms(numbers=reply["numbers"], positions=reply["positions"], cell=cell)
        atoms.info["window"] = reply["window"]
        return atoms
