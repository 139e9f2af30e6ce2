"""Structures named as in AutoScript TEM: positions, points, limits and adorned images (SI units)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import numpy as np
import tifffile
import xarray as xr

from twin.common.cf import ROWS_IN_FILES, flat_attributes, frequency_coordinate, spatial_coordinate


def _combined(first: float | None, second: float | None, sign: float) -> float | None:
    """``first + sign * second`` where an axis left out (None) of one side counts as no change."""
    if first is None:
        return None if second is None else sign * second
    return first if second is None else first + sign * second


@dataclass
class StagePosition:
    """Stage coordinates: x, y, z in m; a (alpha), b (beta) tilts in rad. ``None`` = leave/unknown.

    Indexable (``pos[0]`` is x), convertible with ``np.array(pos)``, and added or subtracted axis by
    axis (``p0 + StagePosition(x=1e-6)`` moves x only: an axis left out counts as no change).
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

    def __add__(self, other: Any) -> StagePosition:
        if not isinstance(other, StagePosition):
            return NotImplemented
        return StagePosition(*(_combined(p, q, 1.0) for p, q in zip(self, other, strict=True)))

    def __sub__(self, other: Any) -> StagePosition:
        if not isinstance(other, StagePosition):
            return NotImplemented
        return StagePosition(*(_combined(p, q, -1.0) for p, q in zip(self, other, strict=True)))


@dataclass
class StageVelocity(StagePosition):
    """Stage speeds: x, y, z in m/s; a, b in rad/s (``None``: that axis does not move)."""


@dataclass
class Point:
    """A 2-D value such as a beam shift (m) or a stigmator setting; unpacks as ``x, y`` and adds to or
    subtracts another Point or a pair (``shift + (dx, dy)``)."""

    x: float = 0.0
    y: float = 0.0

    def __iter__(self) -> Iterator[float]:
        return iter((self.x, self.y))

    def __getitem__(self, index: int) -> float:
        return (self.x, self.y)[index]

    def __len__(self) -> int:
        return 2

    @staticmethod
    def _pair(other: Any) -> tuple[float, float] | None:
        if isinstance(other, Point):
            return other.x, other.y
        if isinstance(other, (tuple, list, np.ndarray)) and len(other) == 2:
            return float(other[0]), float(other[1])
        return None

    def __add__(self, other: Any) -> Point:
        pair = self._pair(other)
        return NotImplemented if pair is None else Point(self.x + pair[0], self.y + pair[1])

    __radd__ = __add__

    def __sub__(self, other: Any) -> Point:
        pair = self._pair(other)
        return NotImplemented if pair is None else Point(self.x - pair[0], self.y - pair[1])

    def __rsub__(self, other: Any) -> Point:
        pair = self._pair(other)
        return NotImplemented if pair is None else Point(pair[0] - self.x, pair[1] - self.y)


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


@dataclass(frozen=True)
class Aperture:
    """One aperture of a mechanism: its unique ``name``, ``type`` and ``diameter`` (m, circular ones)."""

    name: str
    type: str = "Circular"
    diameter: float | None = None


@dataclass(frozen=True)
class Rectangle:
    """A rectangle (left, top, width, height); relative regions use fractions 0..1, top from the top."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class Region:
    """A scan region: a coordinate system (only ``RELATIVE``) and a rectangle in it."""

    coordinate_system: str
    rectangle: Rectangle


@dataclass
class StemAcquisitionSettings:
    """Settings for ``acquire_stem_images_advanced``: one scan read by several detectors.

    Fields in the vendor's order. The twin's detectors are not segmented, so ``detector_segments`` must
    stay ``None``. ``mode`` is the twin's own addition: ``"interactive"``, ``"exact"`` or ``"prism"``
    for this request (default: the server's STEM mode).
    """

    dwell_time: float
    detector_types: list[Any] = field(default_factory=lambda: ["HAADF"])
    detector_segments: list[Any] | None = None
    region: Region | None = None
    size: int = 1024
    auto_beam_blank: bool = False
    mode: str | None = None


@dataclass
class EdsAcquisitionSettings:
    """Settings for an EDS spectrum (``analysis.eds.acquire_spectrum``), made empty and then filled in
    as scripts do: the detector's name, ``dispersion`` (eV per channel) and ``shaping_time`` (s) among
    those the detector offers, ``exposure_time`` (s) of live or real time (``exposure_time_type``)."""

    eds_detector: Any = None
    dispersion: float | None = None
    shaping_time: float | None = None
    exposure_time: float | None = None
    exposure_time_type: Any = "LiveTime"
    detector_segments: list[Any] | None = None


@dataclass
class EdsSpectrumImageSettings:
    """Settings for an EDS spectrum image (``analysis.eds.acquire_spectrum_image``): the read-out as for a
    spectrum, a STEM scan of ``size`` pixels (or ``region``) at ``dwell_time`` s per pixel (real time),
    and the scanning detectors imaging at the same time. ``mode`` as in :class:`StemAcquisitionSettings`."""

    eds_detector: Any = None
    dispersion: float | None = None
    shaping_time: float | None = None
    dwell_time: float | None = None
    size: int = 256
    scanning_detectors: list[Any] = field(default_factory=list)
    region: Region | None = None
    detector_segments: list[Any] | None = None
    mode: str | None = None


@dataclass
class CameraAcquisitionSettings:
    """Settings for ``acquire_camera_image_advanced``: the camera, size, exposure (s), the sensor's
    readout area ("Full", "Half", "Quarter": the central part at the same pixel pitch) and how many
    frames are summed into the image."""

    camera_detector: Any = "BM-Ceta"
    size: int = 1024
    exposure_time: float = 1.0
    fixed_readout_area: Any = "Full"
    frame_combining: int = 1
    electron_counting: bool = False


@dataclass
class RunStemAutoFocusSettings:
    """STEM autofocus: a through-focus series of scans with ``scanning_detector``."""

    scanning_detector: Any = "HAADF"
    size: int = 1024
    dwell_time: float = 1e-6
    auto_stigmate: bool = False
    accuracy_level: Any = None
    reset_beam_blanker_afterwards: bool = False


@dataclass
class RunBeamTiltAutoFocusSettings:
    """TEM autofocus from image shifts under beam tilt (three-image method, drift-free)."""

    camera_detector: Any = "BM-Ceta"
    size: int = 512
    exposure_time: float = 1.0
    focus_method: Any = None
    auto_stigmate: bool = False
    use_three_image_method: bool = True
    maximum_focus_change: float = 200e-9
    maximum_iterations: int = 6


@dataclass
class RunObjectiveAutoStigmatorSettings:
    """Objective stigmation from image shifts under beam tilt."""

    camera_detector: Any = "BM-Ceta"
    size: int = 512
    exposure_time: float = 1.0
    maximum_iterations: int = 3


@dataclass
class RunOptiStemSettings:
    """OptiSTEM: ``method`` (an OptiStemMethod), the scans' dwell time (s), size and the spatial-frequency
    cutoff (pixels) of its sharpness measure."""

    method: Any = "C1A1"
    dwell_time: float = 2e-6
    cutoff_in_pixels: int = 5
    size: int = 512


@dataclass
class RunAutoComaCorrectionSettings:
    """Settings of the probe corrector's automatic coma correction (a tableau of beam-tilted camera
    images): the camera, image size, exposure (s), iterations and the tableau's tile size. The twin can
    hold them; running the correction needs a corrector it does not simulate."""

    camera_detector: Any = "BM-Ceta"
    size: int = 1024
    exposure_time: float = 1.0
    maximum_iterations: int = 5
    tile_size: int = 1024


@dataclass(frozen=True)
class RunOptiStemResults:
    defocus: float
    astigmatism: Point
    coma: Point
    three_fold_astigmatism: Point


@dataclass(frozen=True)
class RunStemAutoFocusResults:
    defocus: float
    astigmatism: Point


@dataclass(frozen=True)
class RunBeamTiltAutoFocusResults:
    defocus: float
    astigmatism: Point
    drift: Point


@dataclass(frozen=True)
class RunObjectiveAutoStigmatorResults:
    astigmatism: Point
    astigmatism_orientation: float
    astigmatism_fit_error: float
    is_reliable: bool


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

    def __dir__(self) -> list[str]:
        return sorted(set(self._data) | set(super().__dir__()))

    @property
    def metadata_as_xml(self) -> str:
        """The metadata as XML under ``<Metadata>``, fields named in CamelCase
        (``Metadata/Optics/AccelerationVoltage``, in SI units)."""
        root = ElementTree.Element("Metadata")
        _to_xml(root, self._data)
        return ElementTree.tostring(root, encoding="unicode")

    def to_dict(self) -> dict[str, Any]:
        """A plain nested dict (a copy)."""
        return _plain(self._data)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in str(name).split("_")) or "Item"


def _to_xml(parent: ElementTree.Element, value: Any) -> None:
    """``value`` (a nested mapping) as child elements of ``parent``; lists repeat their element."""
    for key, item in value.items():
        for entry in item if isinstance(item, list) and item and isinstance(item[0], Mapping) else [item]:
            child = ElementTree.SubElement(parent, _camel(key))
            if isinstance(entry, Mapping):
                _to_xml(child, entry)
            else:
                child.text = " ".join(map(str, entry)) if isinstance(entry, (list, tuple)) else str(entry)


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

    def save(self, path: str | Path) -> Path:
        """Write the image as an ImageJ TIFF (``.tiff`` is added when ``path`` has no suffix), north up
        (row 0 at the top, as viewers show it), calibrated in ImageJ's way (pixels per micron and the unit
        "micron", or per 1/micron for a diffraction pattern), which ImageJ/Fiji, tifffile and
        HyperSpy/RosettaSciIO read as the pixel size; the metadata as JSON in ImageJ's ``Info``
        property, with the row order it was written in. Returns the path."""
        path = Path(path)
        if not path.suffix:
            path = path.with_suffix(".tiff")
        result = self.metadata.binary_result
        reciprocal = result.get("pixel_size_unit", "m") == "1/m"
        micron = 1e-6
        per_unit = ((1 / (result.pixel_size.x * micron), 1 / (result.pixel_size.y * micron)) if reciprocal
                    else (micron / result.pixel_size.x, micron / result.pixel_size.y))
        metadata = self.metadata.to_dict() | {"rows": ROWS_IN_FILES}
        data = self.data
        if data.dtype not in (np.uint8, np.uint16, np.float32):  # what ImageJ reads
            data = data.astype(np.float32)
        tifffile.imwrite(
            path, np.ascontiguousarray(data[::-1]), imagej=True, resolution=per_unit,
            metadata={"unit": "1/micron" if reciprocal else "micron", "Info": json.dumps(metadata)},
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> AdornedImage:
        """Read an image written by :meth:`save` (rows back along +y, as :attr:`data` keeps them)."""
        with tifffile.TiffFile(path) as tiff:
            metadata = json.loads(tiff.imagej_metadata["Info"])
            data = tiff.pages[0].asarray()
        if metadata.pop("rows", None) == ROWS_IN_FILES:
            data = data[::-1]
        return cls(np.ascontiguousarray(data), metadata)

    def to_xarray(self) -> xr.DataArray:
        """The image with pixel-centre coordinates ``x``, ``y`` (m, sample frame; rows along +y) and its
        metadata as flat attributes (``optics.defocus``, ``twin.window.x_min``; see
        :func:`twin.cf.flat_attributes`), so that ``to_netcdf`` and ``to_zarr`` take it as it is; a
        diffraction pattern gets spatial frequencies ``kx``, ``ky`` (1/m, direct beam at 0) instead."""
        pixel = self.metadata.binary_result.pixel_size
        attrs = {"long_name": "detector counts", "units": "count", **flat_attributes(self.metadata.to_dict())}
        if self.metadata.binary_result.get("pixel_size_unit", "m") == "1/m":
            kx = (np.arange(self.width) - self.width // 2) * pixel.x
            ky = (np.arange(self.height) - self.height // 2) * pixel.y
            coords = {"kx": frequency_coordinate("kx", kx), "ky": frequency_coordinate("ky", ky)}
            return xr.DataArray(self.data, dims=("ky", "kx"), name="counts", attrs=attrs, coords=coords)
        window = self.metadata.twin.window
        x = window.x_min + (np.arange(self.width) + 0.5) * pixel.x
        y = window.y_min + (np.arange(self.height) + 0.5) * pixel.y
        return xr.DataArray(self.data, dims=("y", "x"), name="counts", attrs=attrs,
                            coords={"x": spatial_coordinate("x", x), "y": spatial_coordinate("y", y)})

    def __repr__(self) -> str:
        return f"AdornedImage({self.width}x{self.height}, {self.data.dtype})"
