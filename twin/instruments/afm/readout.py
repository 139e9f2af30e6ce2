"""Line read-out as the vendor delivers it: an optional line filter, then physical values or integers."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin import validation
from twin.common.afm_vocabulary import DataConversion, DataFilter

CONVERSIONS = (DataConversion.Binary16, DataConversion.Physical, DataConversion.Binary32)


def checked_filter_and_conversion(data_filter: Any, conversion: Any) -> tuple[int, int]:
    """``filter`` and ``conversion`` arguments, validated by name and range."""
    data_filter = validation.integer("filter", data_filter, DataFilter.RAW, DataFilter.PolynomialFit)
    return data_filter, validation.one_of("conversion", conversion, CONVERSIONS)


def filtered(values: np.ndarray, x: np.ndarray, data_filter: int) -> np.ndarray:
    """The vendor's line filters: subtract a fit of degree 0/1/2/3 over ``x``, or differentiate."""
    values = np.asarray(values, dtype=np.float64)
    if data_filter == DataFilter.RAW:
        return values
    if data_filter == DataFilter.DerivedData:
        return np.gradient(values, x)
    degree = {DataFilter.MeanFit: 0, DataFilter.LineFit: 1, DataFilter.ParabolaFit: 2,
              DataFilter.PolynomialFit: 3}[data_filter]
    t = (x - x.mean()) / max(np.ptp(x), 1e-30)
    return values - np.polyval(np.polyfit(t, values, degree), t)


def converted(values: np.ndarray, conversion: int, full_range: float) -> list[float] | list[int]:
    """Physical values, or signed integers of 16 or 32 bits spanning ``full_range``."""
    if conversion == DataConversion.Physical:
        return [float(v) for v in values]
    bits = 16 if conversion == DataConversion.Binary16 else 32
    limit = 2 ** (bits - 1) - 1
    return [int(v) for v in np.clip(np.rint(values / (full_range / 2**bits)), -limit - 1, limit)]
