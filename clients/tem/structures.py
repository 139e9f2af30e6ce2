"""Structures named as in AutoScript TEM: positions, points, limits and adorned images (SI units)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass
from typing import Any

import numpy as np
import xarray as xr


@dataclass
class StagePosition:
    """Stage coordinates: x, y, z in m; a (alpha), b (beta) tilts in rad. ``None`` = leave/unknown.

    Indexable (``pos[0]`` is x) and convertible with ``np.array(pos)``.
    """

    x: float | None = None
    y: float | None = None
    z: float | None = None
    a: float | None = None
    b: float | None = None

    def __iter__(self) -> Iterator[float | None]:
        return iter(astuple(self))

    def __getitem__(self, index: int) -> float | None:
        return astuple(self)[index]

    def __len__(self) -> int:
        return 5


@dataclass
class Point:
    """A 2-D value such as a beam shift (m) or a stigmator setting."""

    x: float = 0.0
    y: float = 0.0

    def __iter__(self) -> Iterator[float]:
        return iter((self.x, self.y))


@dataclass(frozen=True)
class Limits:
    """A closed range ``[min, max]``."""

    min: float
    max: float


@dataclass(frozen=True)
class MagnificationData:
    """One entry of the magnification table; ``calibrated`` is what the camera sees."""

    nominal: float
    calibrated: float
    rotation: float = 0.0
    label: str = ""
    magnification_sub_mode: str = "SA"
    objective_lens_mode: str = "HM"


@dataclass(frozen=True)
class CameraLengthData:
    """One entry of the camera-length table (m)."""

    nominal: float
    calibrated: float
    rotation: float = 0.0
    label: str = ""
    objective_lens_mode: str = "HM"


class Metadata(Mapping):
    """Read-only nested metadata with attribute access: ``meta.binary_result.pixel_size.x``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        value = self._data[key]
        return Metadata(value) if isinstance(value, Mapping) else value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"metadata has no field {name!r}; fields: {', '.join(self._data)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Metadata({self._data!r})"

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (a copy)."""
        return _plain(self._data)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class AdornedImage:
    """An image with its acquisition metadata. ``data`` is ``[row, column]`` with rows along +y."""

    def __init__(self, data: np.ndarray, metadata: Mapping[str, Any]) -> None:
        self.data = data
        self.metadata = metadata if isinstance(metadata, Metadata) else Metadata(metadata)

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def bit_depth(self) -> int:
        return int(self.metadata.binary_result.bit_depth)

    def to_xarray(self) -> xr.DataArray:
        """The image with pixel-centre coordinates ``x``, ``y`` (m, sample frame) and its metadata."""
        window = self.metadata.twin.window
        pixel = self.metadata.binary_result.pixel_size
        x = window.x_min + (np.arange(self.width) + 0.5) * pixel.x
        y = window.y_min + (np.arange(self.height) + 0.5) * pixel.y
        return xr.DataArray(
            self.data,
            dims=("y", "x"),
            coords={"x": ("x", x, {"units": "m"}), "y": ("y", y, {"units": "m"})},
            name="counts",
            attrs=self.metadata.to_dict(),
        )

    def __repr__(self) -> str:
        return f"AdornedImage({self.width}x{self.height}, {self.data.dtype})"
