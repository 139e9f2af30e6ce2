"""Windows, defects and pixel grids, in metres in the sample frame (what the server sends and the clients
rebuild).

A grid is a window cut into ``rows x columns`` pixels, pixel ``(r, c)`` centred at
``(x_min + (c + 1/2) px, y_min + (r + 1/2) py)`` - the convention every image of the twin uses, so an
image and its labels line up pixel for pixel.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """Axis-aligned rectangle ``[x_min, x_max) × [y_min, y_max)`` in metres (sample frame)."""

    x_min: float
    y_min: float
    x_max: float
    y_max: float

    @classmethod
    def around(cls, x: float, y: float, width: float, height: float) -> Window:
        """The window of the given size centred on ``(x, y)``."""
        return cls(x - width / 2, y - height / 2, x + width / 2, y + height / 2)

    @property
    def width(self) -> float:
        return self.x_max - self.x_min

    @property
    def height(self) -> float:
        return self.y_max - self.y_min

    @property
    def centre(self) -> tuple[float, float]:
        """The middle of the window ``(x, y)`` (m)."""
        return (self.x_min + self.x_max) / 2, (self.y_min + self.y_max) / 2

    def grown(self, margin: float) -> Window:
        """This window enlarged by ``margin`` (m) on every side."""
        return Window(self.x_min - margin, self.y_min - margin, self.x_max + margin, self.y_max + margin)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def defect_label(kind: str, species: str | None) -> str:
    """Human-readable kind of defect: ``"vacancy"``, ``"N substitution"``, ``"Pt adsorbate"``, ..."""
    return f"{species} {kind}" if kind in ("substitution", "adsorbate") else kind


@dataclass(frozen=True)
class Defect:
    """Ground truth for one defect or feature: what it is and where (m, sample frame)."""

    kind: str  # vacancy, substitution, multivacancy, pore, adsorbate, contamination
    species: str | None  # the substituting or adsorbed element; None otherwise
    host: str  # the element that belongs on the anchor site
    x: float
    y: float
    z: float
    origin: str = "as grown"  # or "beam damage"
    size: float = 0.0  # atoms removed (multivacancy) or radius in m (pore, contamination)
    layer: int = 0

    @property
    def label(self) -> str:
        return defect_label(self.kind, self.species)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "label": self.label}


def pixel_centres(window: Window, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """x (columns) and y (rows) of the pixel centres (m)."""
    rows, columns = shape
    x = window.x_min + (np.arange(columns) + 0.5) * window.width / columns
    y = window.y_min + (np.arange(rows) + 0.5) * window.height / rows
    return x, y
