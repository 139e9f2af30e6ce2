"""What every array the twin hands out or writes carries so that NetCDF, Zarr and their readers take it
as it is: flat attributes (CF-1.10), coordinate variables that say which axis they are, and one row
order.

Row order: arrays in Python are ``[row, column]`` with rows along +y (row 0 at the field's bottom edge),
as the coordinates say; files are written north up (row 0 at the top), as every viewer and the
instruments' own software show them. ``ROWS_IN_FILES`` names the convention in each file's metadata.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np

CONVENTIONS = "CF-1.10"
ROWS_IN_ARRAYS = "row 0 at the bottom (y increasing with the row)"
ROWS_IN_FILES = "row 0 at the top (north up: y decreasing with the row)"


def flat_attributes(metadata: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested ``metadata`` as attributes NetCDF and Zarr keep: keys joined with ``.``
    (``twin.window.x_min``), numbers and strings as they are, lists of numbers as arrays, flags as 0/1,
    ``None`` as an empty string, anything else (lists of records) as JSON text."""
    flat: dict[str, Any] = {}
    for key, value in metadata.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flat_attributes(value, f"{name}."))
        elif value is None:
            flat[name] = ""
        elif isinstance(value, (bool, np.bool_)):
            flat[name] = int(value)
        elif isinstance(value, (int, float, str, np.integer, np.floating)):
            flat[name] = value
        elif isinstance(value, (list, tuple, np.ndarray)) and len(value) and all(map(_number, value)):
            flat[name] = np.asarray(value, dtype=float)
        else:
            flat[name] = json.dumps(value, default=str)
    return flat


def _number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def nested_attributes(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The nested form of :func:`flat_attributes`' keys (values as stored)."""
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        node = nested
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value.tolist() if isinstance(value, np.ndarray) else value
    return nested


def spatial_coordinate(axis: str, values: np.ndarray, units: str = "m") -> tuple[str, np.ndarray, dict]:
    """A coordinate variable for ``axis`` (``"x"`` or ``"y"``): pixel centres in the sample frame."""
    return (axis, np.asarray(values, dtype=float), {
        "units": units, "axis": axis.upper(), "standard_name": f"projection_{axis}_coordinate",
        "long_name": f"{axis} of the pixel centre in the sample frame",
    })


def frequency_coordinate(axis: str, values: np.ndarray) -> tuple[str, np.ndarray, dict]:
    """A coordinate variable for a diffraction pattern's spatial frequency along ``axis`` (``kx``, ``ky``)."""
    return (axis, np.asarray(values, dtype=float), {
        "units": "m-1", "axis": axis[-1].upper(), "long_name": f"spatial frequency {axis}, direct beam at 0",
    })


def variable_name(text: str) -> str:
    """``text`` as a NetCDF/CF variable name: letters, digits and underscores, starting with a letter."""
    name = re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_") or "data"
    return name if name[0].isalpha() else f"v_{name}"


_UDUNITS = {"deg": "degree", "counts": "count", "1/m": "m-1"}  # spellings udunits does not take as they are


def cf_units(unit: str) -> str:
    """``unit`` as udunits (and so CF) spells it: ``deg`` -> ``degree``."""
    return _UDUNITS.get(unit, unit)
