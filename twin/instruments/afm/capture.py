"""Saving AFM frames: Gwyddion's native ``.gwy`` files and NetCDF (through xarray).

The ``.gwy`` writer follows Gwyddion's documented serialisation: the magic ``GWYP``, then one
``GwyContainer`` whose components are typed, little-endian, with NUL-terminated names; each image
is a ``GwyDataField`` under ``/N/data`` with its title under ``/N/data/title`` and, when lines are
missing (a capture mid-frame), a mask under ``/N/mask`` (1 where nothing was scanned). Gwyddion's rows
run from the top down, so files open north up. The NetCDF file follows CF-1.10: coordinates with their
axes, each channel with a ``long_name`` and udunits units, lines not scanned as NaN (the fill value).
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from twin.common.cf import (
    CONVENTIONS,
    ROWS_IN_ARRAYS,
    cf_units,
    flat_attributes,
    spatial_coordinate,
    variable_name,
)

MAGIC = b"GWYP"


def _name(text: str) -> bytes:
    return text.encode("utf-8") + b"\0"


def _component(name: str, kind: str, value: Any) -> bytes:
    head = _name(name) + kind.encode("ascii")
    if kind == "i":
        return head + struct.pack("<i", value)
    if kind == "d":
        return head + struct.pack("<d", value)
    if kind == "s":
        return head + _name(value)
    if kind == "o":
        return head + value
    if kind == "D":
        array = np.ascontiguousarray(value, dtype="<f8").ravel()
        return head + struct.pack("<I", array.size) + array.tobytes()
    raise ValueError(f"kind = {kind!r}: not a GWY component type this writer uses")


def _object(type_name: str, components: list[bytes]) -> bytes:
    body = b"".join(components)
    return _name(type_name) + struct.pack("<I", len(body)) + body


def _unit(text: str) -> bytes:
    return _object("GwySIUnit", [_component("unitstr", "s", text)])


def _data_field(data: np.ndarray, width: float, height: float, x0: float, y0: float, unit: str) -> bytes:
    rows, cols = data.shape
    return _object("GwyDataField", [
        _component("xres", "i", cols), _component("yres", "i", rows),
        _component("xreal", "d", width), _component("yreal", "d", height),
        _component("xoff", "d", x0), _component("yoff", "d", y0),
        _component("si_unit_xy", "o", _unit("m")), _component("si_unit_z", "o", _unit(unit)),
        _component("data", "D", data),
    ])


def write_gwy(path: Path, frame: xr.Dataset, metadata: dict[str, Any]) -> None:
    """Every image of ``frame`` (see :func:`frame_dataset`) as one channel of a ``.gwy`` file, titled
    with its ``long_name``, north up; lines not scanned (NaN) are masked and hold the channel's mean, so
    the colour scale stays that of the data. ``metadata`` goes in as JSON under ``/meta/twin``."""
    x, y = frame.x.values, frame.y.values
    px, py = abs(x[1] - x[0]) if len(x) > 1 else 1.0, abs(y[1] - y[0]) if len(y) > 1 else 1.0
    components = []
    for index, image in enumerate(frame.data_vars.values()):
        data = image.values.astype(np.float64)
        if len(y) > 1 and y[1] > y[0]:
            data = data[::-1]  # top row first
        missing = ~np.isfinite(data)
        fill = float(np.mean(data[~missing])) if (~missing).any() else 0.0
        origin = (float(x.min() - px / 2), float(y.min() - py / 2))
        unit = image.attrs.get("units", "")
        components.append(_component(f"/{index}/data", "o", _data_field(
            np.where(missing, fill, data), len(x) * px, len(y) * py, *origin, unit)))
        title = str(image.attrs.get("long_name", image.name))
        components.append(_component(f"/{index}/data/title", "s", title))
        if missing.any():
            components.append(_component(f"/{index}/mask", "o", _data_field(
                missing.astype(np.float64), len(x) * px, len(y) * py, *origin, "")))
    components.append(_component("/meta/twin", "s", json.dumps(metadata, default=float)))
    path.write_bytes(MAGIC + _object("GwyContainer", components))


def frame_dataset(images: dict[str, np.ndarray], units: dict[str, str], x: np.ndarray, y: np.ndarray,
                  metadata: dict[str, Any]) -> xr.Dataset:
    """One frame's images (``name -> [y, x]``, rows along +y) as CF variables (names without spaces,
    the name as ``long_name``, udunits units) with pixel-centre coordinates (m) and the metadata as
    flat global attributes."""
    return xr.Dataset(
        {variable_name(name): (("y", "x"), data, {"long_name": name, "units": cf_units(units[name])})
         for name, data in images.items()},
        coords={"x": spatial_coordinate("x", x), "y": spatial_coordinate("y", y)},
        attrs={"Conventions": CONVENTIONS, "title": "AFM frame (microscope twin)",
               "source": "microscope-twin simulated AFM", "rows": ROWS_IN_ARRAYS,
               **flat_attributes(metadata)},
    )


def write_netcdf(path: Path, frame: xr.Dataset) -> None:
    """``frame`` as a NetCDF (classic) file: lines not scanned are NaN, the channels' fill value;
    coordinates have none (CF)."""
    encoding = {name: {"_FillValue": np.nan} for name in frame.data_vars}
    encoding |= {name: {"_FillValue": None} for name in frame.coords}
    frame.to_netcdf(path, engine="scipy", encoding=encoding)


INDEX = "[INDEX]"  # where a gallery mask wants the file's number


def next_free(directory: Path, mask: str, first: int = 0) -> tuple[Path, int]:
    """The first ``directory/name`` (no suffix) from index ``first`` on whose ``.gwy`` and ``.nc`` do not
    exist yet, and its index: the mask with its ``[INDEX]`` replaced by the number (4 digits), or the
    number after the mask when it has none."""
    directory.mkdir(parents=True, exist_ok=True)
    index = first
    while True:
        number = f"{index:04d}"
        name = mask.replace(INDEX, number) if INDEX in mask else f"{mask}{number}"
        if not (directory / f"{name}.gwy").exists() and not (directory / f"{name}.nc").exists():
            return directory / name, index
        index += 1
