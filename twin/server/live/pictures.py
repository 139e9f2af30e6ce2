"""Live images as PNG: a frame scaled to 8 bits for the page (contrast from its own percentiles)."""

from __future__ import annotations

import io
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

LOW, HIGH = 0.5, 99.5  # percentiles mapped to black and white


def grey_levels(data: np.ndarray, logarithmic: bool = False, level_lines: bool = False) -> np.ndarray:
    """``data`` (2-D, NaN where nothing was measured yet) as uint8 grey levels: the LOW..HIGH percentile
    range of the finite values stretched over 0..255, NaN as 0. ``logarithmic``: of log(1 + data - min)
    (diffraction patterns); ``level_lines``: each row's median taken off first (AFM lines, whose offsets
    differ)."""
    values = np.asarray(data, dtype=np.float64)
    finite = np.isfinite(values)
    if level_lines:
        rows = finite.any(axis=1)
        medians = np.zeros(values.shape[0])
        medians[rows] = np.nanmedian(values[rows], axis=1)
        values = values - medians[:, None]
    if logarithmic and finite.any():
        values = np.log1p(values - values[finite].min())
    if not finite.any():
        return np.zeros(values.shape, dtype=np.uint8)
    lo, hi = np.percentile(values[finite], (LOW, HIGH))
    scaled = (values - lo) / (hi - lo if hi > lo else 1.0)
    return np.where(finite, np.clip(scaled, 0.0, 1.0) * 255.0, 0.0).astype(np.uint8)


def png(levels: np.ndarray) -> bytes:
    """uint8 grey levels (rows top to bottom) as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(levels, mode="L").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


class PictureCache:
    """PNGs by key (a channel's version, say): each encoded once, however many pages ask; the newest
    ``size`` kept."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._pictures: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()  # one encoding at a time (the web server's, never an instrument's)

    def get(self, key: Hashable, encode: Callable[[], bytes]) -> bytes:
        with self._lock:
            if key not in self._pictures:
                self._pictures[key] = encode()
                while len(self._pictures) > self._size:
                    self._pictures.popitem(last=False)
            self._pictures.move_to_end(key)
            return self._pictures[key]
