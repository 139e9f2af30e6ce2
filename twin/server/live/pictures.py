"""Live images for the page: a frame binned to at most :data:`MAX_SIDE` pixels a side and scaled to 8 bits
(contrast from its own percentiles), sent as a small binary frame (no compression: a few ms, where a
PNG of the same frame takes several times as long on the server the instruments share)."""

from __future__ import annotations

import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable

import numpy as np

LOW, HIGH = 0.5, 99.5  # percentiles mapped to black and white
PERCENTILE_SAMPLES = 65536  # pixels the contrast is taken from (a regular subgrid of larger frames)
MAX_SIDE = 512  # pixels: larger frames are binned down for the page (its panels are narrower)


def binned(data: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
    """``data`` averaged over k x k blocks, k the smallest integer bringing both sides to ``max_side`` or
    less (a block with a NaN is NaN); unchanged if already small enough."""
    k = -(-max(data.shape) // max_side)
    if k <= 1:
        return data
    rows, columns = data.shape[0] // k * k, data.shape[1] // k * k
    total = np.zeros((rows // k, columns // k), dtype=np.float32)
    for i in range(k):  # k² strided sums: faster than a mean over a reshaped view's axes
        for j in range(k):
            total += data[i:rows:k, j:columns:k]
    return total / (k * k)


def grey_levels(data: np.ndarray, logarithmic: bool = False, level_lines: bool = False) -> np.ndarray:
    """``data`` (2-D, NaN where nothing was measured yet), :func:`binned`, as uint8 grey levels: the
    LOW..HIGH percentile range of the finite values stretched over 0..255, NaN as 0. ``logarithmic``: of
    log(1 + data - min) (diffraction patterns); ``level_lines``: each row's median taken off first (AFM
    lines, whose offsets differ)."""
    values = binned(np.asarray(data))
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
    step = max(1, int(np.sqrt(values.size / PERCENTILE_SAMPLES)))
    sample = values[::step, ::step]
    sample = sample[np.isfinite(sample)]
    lo, hi = np.percentile(sample if sample.size else values[finite], (LOW, HIGH))
    scaled = (values - lo) / (hi - lo if hi > lo else 1.0)
    return np.where(finite, np.clip(scaled, 0.0, 1.0) * np.float32(255.0), 0.0).astype(np.uint8)


def grey_frame(levels: np.ndarray) -> bytes:
    """uint8 grey levels (rows top to bottom) as the page reads them: rows and columns (two little-endian
    uint16), then the pixels row by row."""
    rows, columns = levels.shape
    return struct.pack("<HH", rows, columns) + np.ascontiguousarray(levels, dtype=np.uint8).tobytes()


class PictureCache:
    """Encoded frames by key (a channel's version, say): each encoded once, however many pages ask; the newest
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
