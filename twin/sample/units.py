"""Quantities in sample files: a plain number is SI; a string may carry a unit (``"1.2 um"``,
``"0.5 A"``, ``"1.1 deg"``, ``"0.01 nm^-2"``), converted to SI here.

The usual spellings convert by table (exactly as always); any other unit expression of the right kind
is read by pint (``"0.01 1/nm^2"``, ``"0.01 nm-2"``, ``"3 angstrom"``, ``"1.5 micrometer"``). ``A`` is
the ångström here, never the ampere.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

LENGTH = {"m": 1.0, "mm": 1e-3, "um": 1e-6, "µm": 1e-6, "nm": 1e-9, "A": 1e-10, "Å": 1e-10, "pm": 1e-12}
ANGLE = {"rad": 1.0, "deg": 0.017453292519943295, "°": 0.017453292519943295}
DENSITY = {"m^-2": 1.0, "/m2": 1.0, "nm^-2": 1e18, "/nm2": 1e18, "um^-2": 1e12, "/um2": 1e12}
TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "min": 60.0, "h": 3600.0}
AREA = {"m^2": 1.0, "mm^2": 1e-6, "um^2": 1e-12, "µm^2": 1e-12, "nm^2": 1e-18}
VOLTAGE = {"V": 1.0, "kV": 1e3}
UNITS = {"length": LENGTH, "angle": ANGLE, "density": DENSITY, "time": TIME, "voltage": VOLTAGE, "area": AREA,
         "number": {}}
_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
SI = {"length": "m", "angle": "rad", "density": "m^-2", "time": "s", "voltage": "V", "area": "m^2",
      "number": "dimensionless"}
_POWER = re.compile(r"([A-Za-zµÅ°]+)(-?\d+)")  # nm-2, nm2: a unit raised to a power


def quantity(name: str, value: Any, kind: str) -> float:
    """``value`` of the field ``name`` in SI: a number as it is, or a string with a ``kind`` unit."""
    if isinstance(value, bool):
        raise ValueError(f"{name} = {value!r} must be a number or a string with a unit")
    if isinstance(value, (int, float)):
        return float(value)
    units = UNITS[kind]
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    factor = None if match is None else (units.get(match.group(2)) if match.group(2) else 1.0)
    if match is not None and factor is None:
        factor = _pint_factor(match.group(2), kind)
    if factor is None:
        raise ValueError(f"{name} = {value!r} is not a {kind}; give a number (SI) or a number with a unit "
                         f"such as {', '.join(units)}")
    return float(match.group(1)) * factor


def _pint_factor(unit: str, kind: str) -> float | None:
    """The SI value of one ``unit`` of ``kind`` read by pint, or None when it is no such unit."""
    import pint

    text = re.sub(r"\bA\b|Å", "angstrom", _POWER.sub(r"\1**\2", unit.replace("^", "**")))
    try:
        return float(_registry().Quantity(1.0, text).to(SI[kind]).magnitude)
    except (pint.errors.PintError, AttributeError, TypeError, ValueError, AssertionError):
        return None


@lru_cache(maxsize=1)
def _registry():
    import pint

    return pint.UnitRegistry()


def pair(name: str, value: Any, kind: str) -> tuple[float, float]:
    """A two-element list of quantities, e.g. a position ``[x, y]`` or a range ``[lo, hi]``."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ValueError(f"{name} = {value!r} must be a list of two {kind}s")
    return quantity(f"{name}[0]", value[0], kind), quantity(f"{name}[1]", value[1], kind)


def check_keys(where: str, data: Any, keys: tuple[str, ...]) -> None:
    """``data`` is a mapping whose keys are all among ``keys`` (else the error names the strangers)."""
    if not isinstance(data, dict):
        raise ValueError(f"{where} = {data!r} must be a mapping with keys {', '.join(keys)}")
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ValueError(f"{where} has unknown keys {', '.join(map(str, unknown))}; "
                         f"allowed: {', '.join(keys)}")
