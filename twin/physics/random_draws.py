"""Exact Poisson, gamma and normal draws for whole camera frames, several times faster than NumPy's.

Poisson: a mean ``λ = (m + f) Δ`` (``m`` whole, ``0 ≤ f < 1``, a step ``Δ`` of 1/8 or more chosen per
frame) is drawn as ``Poisson(mΔ) + Binomial(Poisson(Δ), f)``, which is exactly Poisson(λ): the first by
inverting Poisson(mΔ)'s cumulative distribution, tabulated once per ``mΔ`` with a guide table (Chen and
Asau) so that a draw costs one uniform number and about one comparison; the second by thinning a
Poisson(Δ) count, each of its electrons kept with probability ``f``. Frames whose means spread too
wide for tables (a diffraction pattern) are drawn by NumPy. Gamma: Marsaglia and Tsang's method;
normal: Marsaglia and Tsang's ziggurat (128 layers, 32-bit).

Every pixel draws from its own stream, the SplitMix64 sequence started at a hash of the frame's key and
the pixel's index, so a frame is a function of the key alone, whatever the number of threads. Compiled
by numba (abTEM's dependency) on first use and cached on disk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numba import njit
from scipy import special

from twin.common.cache import ArrayCache
from twin.common.fft_threads import FFT_THREADS, WORKERS

STEPS = (0.125, 0.25, 0.5, 1.0, 2.0)  # the table steps Δ (electrons), finest first
MOST_TABLES = 256  # tables a frame may need to be drawn by tables
MOST_TABLE_ENTRIES = 2**20  # entries of all a frame's tables together
TAIL = 1e-30  # the probability a table leaves out below and above
_STEP_COUNTS = 64  # counts tabulated of Poisson(step), the thinned part
GUIDE = 4  # guide entries per table entry
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_UNIT = 2.0**-53
_PARALLEL_FROM = 128 * 128  # pixels: smaller frames are drawn on the calling thread
_TABLES = ArrayCache(64 * 2**20)  # cumulative distribution and guide per tabulated mean
_ZIG_EDGE = 3.442619855899  # where the normal ziggurat's base layer ends


def _ziggurat() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 128-layer ziggurat of the standard normal density for 32-bit draws: each layer's bound
    (``k``), width per unit draw (``w``) and density at its edge (``f``)."""
    edge = tail = _ZIG_EDGE
    area = 9.91256303526217e-3
    scale = 2.0**31
    k, w, f = np.zeros(128), np.zeros(128), np.zeros(128)
    q = area / math.exp(-0.5 * edge * edge)
    k[0], w[0], w[127] = edge / q * scale, q / scale, edge / scale
    f[0], f[127] = 1.0, math.exp(-0.5 * edge * edge)
    for i in range(126, 0, -1):
        edge = math.sqrt(-2.0 * math.log(area / edge + math.exp(-0.5 * edge * edge)))
        k[i + 1] = edge / tail * scale
        tail = edge
        f[i], w[i] = math.exp(-0.5 * edge * edge), edge / scale
    return k, w, f


_ZIG_K, _ZIG_W, _ZIG_F = _ziggurat()


@njit(inline="always")
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(inline="always")
def _start(key: np.uint64, pixel: int) -> np.uint64:
    return _mix(key ^ (np.uint64(pixel) * _GOLDEN + _MIX2))


@njit(inline="always")
def _bits(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The next state of a SplitMix64 stream and its 64 random bits."""
    state = state + _GOLDEN
    return state, _mix(state)


@njit(inline="always")
def _uniform(state: np.uint64) -> tuple[np.uint64, float]:
    """The next state and a uniform draw in (0, 1)."""
    state, bits = _bits(state)
    return state, ((bits >> np.uint64(11)) + 0.5) * _UNIT


@njit(inline="always")
def _normal(state: np.uint64, k: np.ndarray, w: np.ndarray, f: np.ndarray) -> tuple[np.uint64, float]:
    """The next state and a standard normal draw (the ziggurat ``k``, ``w``, ``f``)."""
    while True:
        state, bits = _bits(state)
        hz = np.int64(np.int32(bits & np.uint64(0xFFFFFFFF)))
        layer = int((bits >> np.uint64(32)) & np.uint64(127))
        if abs(hz) < k[layer]:
            return state, hz * w[layer]
        x = hz * w[layer]
        if layer == 0:  # beyond the base layer: the tail by Marsaglia's method
            while True:
                state, u = _uniform(state)
                state, v = _uniform(state)
                x = -math.log(u) / _ZIG_EDGE
                if -2.0 * math.log(v) >= x * x:
                    return state, _ZIG_EDGE + x if hz > 0 else -_ZIG_EDGE - x
        state, u = _uniform(state)
        if f[layer] + u * (f[layer - 1] - f[layer]) < math.exp(-0.5 * x * x):
            return state, x


@njit(inline="always")
def _gamma(state: np.uint64, shape: float, k: np.ndarray, w: np.ndarray, f: np.ndarray
           ) -> tuple[np.uint64, float]:
    """The next state and a standard gamma draw (scale 1) of ``shape`` (0 for a shape of 0)."""
    if not shape > 0.0:
        return state, 0.0
    boost = 1.0
    if shape < 1.0:  # Gamma(a) = Gamma(a + 1) U^(1/a)
        state, u = _uniform(state)
        boost = u ** (1.0 / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    state, value = _gamma_above_one(state, d, 1.0 / math.sqrt(9.0 * d), k, w, f)
    return state, value * boost


@njit(inline="always")
def _gamma_above_one(state: np.uint64, d: float, c: float, k: np.ndarray, w: np.ndarray, f: np.ndarray
                     ) -> tuple[np.uint64, float]:
    """The next state and a standard gamma draw of shape ``d + 1/3`` (≥ 1), ``c`` = 1 / sqrt(9 ``d``)."""
    while True:
        state, x = _normal(state, k, w, f)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        state, u = _uniform(state)
        x2 = x * x
        if u < 1.0 - 0.0331 * x2 * x2 or math.log(u) < 0.5 * x2 + d * (1.0 - v + math.log(v)):
            return state, d * v


@njit(inline="always")
def _poisson(state: np.uint64, mean: float, step: float, base: int, cdfs: np.ndarray, cdf_starts: np.ndarray,
             guides: np.ndarray, guide_starts: np.ndarray, lows: np.ndarray, step_cdf: np.ndarray
             ) -> tuple[np.uint64, int]:
    """The next state and a Poisson draw of ``mean``: its whole steps ``base + l`` by table ``l`` (its
    cumulative distribution from count ``lows[l]``, its guide), the fraction of a step by thinning
    Poisson(``step``) (cumulative distribution ``step_cdf``)."""
    scaled = mean / step
    level = int(scaled) - base
    state, u = _uniform(state)
    guide_start = guide_starts[level]
    index = guides[guide_start + int(u * (guide_starts[level + 1] - guide_start))]
    cdf_start = cdf_starts[level]
    while cdfs[cdf_start + index] < u:
        index += 1
    count = lows[level] + index
    state, u = _uniform(state)
    if u > step_cdf[0]:
        fraction = scaled - (level + base)
        extra = 1
        while step_cdf[extra] < u:
            extra += 1
        for _ in range(extra):
            state, u = _uniform(state)
            count += u < fraction
    return state, count


@njit(nogil=True, cache=True)
def _poisson_rows(means: np.ndarray, out: np.ndarray, key: np.uint64, first: int, last: int, step: float,
                  base: int, cdfs: np.ndarray, cdf_starts: np.ndarray, guides: np.ndarray,
                  guide_starts: np.ndarray, lows: np.ndarray, step_cdf: np.ndarray) -> None:
    width = means.shape[1]
    for i in range(first, last):
        for j in range(width):
            state = _start(key, i * width + j)
            out[i, j] = _poisson(state, means[i, j], step, base, cdfs, cdf_starts, guides, guide_starts, lows,
                                 step_cdf)[1]


@njit(nogil=True, cache=True)
def _light_rows(means: np.ndarray, out: np.ndarray, key: np.uint64, first: int, last: int, step: float,
                base: int, cdfs: np.ndarray, cdf_starts: np.ndarray, guides: np.ndarray,
                guide_starts: np.ndarray, lows: np.ndarray, step_cdf: np.ndarray, shape_per_electron: float,
                scale: float, fewest: int, roots: np.ndarray, k: np.ndarray, w: np.ndarray, f: np.ndarray
                ) -> None:
    """The light of a Poisson number of electrons of ``means`` per pixel, each electron's yield a gamma
    draw of ``shape_per_electron`` and ``scale``: their sum is one gamma draw of shape ``electrons x
    shape_per_electron`` (``roots[count - fewest]``: Marsaglia and Tsang's constant of each count the
    tables can give)."""
    width = means.shape[1]
    for i in range(first, last):
        for j in range(width):
            state, count = _poisson(_start(key, i * width + j), means[i, j], step, base, cdfs, cdf_starts,
                                    guides, guide_starts, lows, step_cdf)
            shape = count * shape_per_electron
            if count == 0:
                out[i, j] = 0.0
            elif shape >= 1.0:  # Marsaglia and Tsang's constants by count: no root per pixel
                root = roots[count - fewest]
                out[i, j] = _gamma_above_one(state, shape - 1.0 / 3.0, root, k, w, f)[1] * scale
            else:
                out[i, j] = _gamma(state, shape, k, w, f)[1] * scale


@njit(nogil=True, cache=True)
def _readout_rows(signal: np.ndarray, out: np.ndarray, key: np.uint64, first: int, last: int,
                  read_noise: float, offset: float, most: float, k: np.ndarray, w: np.ndarray,
                  f: np.ndarray) -> None:
    width = signal.shape[1]
    for i in range(first, last):
        for j in range(width):
            noise = _normal(_start(key, i * width + j), k, w, f)[1]
            out[i, j] = min(max(np.rint(signal[i, j] + offset + read_noise * noise), 0.0), most)


def _by_rows(kernel: Callable[..., None], values: np.ndarray, out: np.ndarray, rng: np.random.Generator,
             *args: object) -> np.ndarray:
    """``kernel`` over the rows of ``values`` (2-D) into ``out`` with a key drawn from ``rng``, large
    frames split among the threads."""
    key = np.uint64(rng.integers(2**63))
    rows = len(values)
    if values.size < _PARALLEL_FROM:
        kernel(values, out, key, 0, rows, *args)
        return out
    bounds = np.linspace(0, rows, FFT_THREADS + 1).astype(int)
    jobs = [WORKERS.submit(kernel, values, out, key, int(a), int(b), *args)
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for job in jobs:
        job.result()
    return out


def _table(mean: float) -> np.ndarray:
    """Poisson(``mean``)'s table over the counts that hold all but :data:`TAIL` of the probability below
    and above (the lowest folded into the first): row 0 its first count, row 1 the cumulative
    distribution (the last entry 1), row 2 the guide (:data:`GUIDE` entries per count: for a uniform
    draw ``u``, the entry to search from is at ``floor(u × length)``), rows 0 and 1 padded to its length."""
    reach = 15.0 * math.sqrt(mean) + 30.0
    counts = np.arange(max(0, int(mean - reach)), int(mean + reach))
    cdf = special.pdtr(counts, mean)
    first, last = np.searchsorted(cdf, TAIL), np.searchsorted(cdf, 1.0 - TAIL)
    counts, cdf = counts[first : last + 1], cdf[first : last + 1]
    cdf[-1] = 1.0
    guide = np.searchsorted(cdf, np.arange(GUIDE * len(cdf)) / (GUIDE * len(cdf)), side="left")
    table = np.zeros((3, len(guide)))
    table[0, 0], table[1, : len(cdf)], table[2] = counts[0], cdf, guide
    return table


def _tables(means: np.ndarray) -> tuple | None:
    """The arguments after ``last`` of :func:`_poisson_rows` that draw ``means`` (finite, ≥ 0): the step,
    first level, packed tables and the step's Poisson distribution; ``None`` when they spread too wide."""
    low, high = float(means.min()), float(means.max())
    if not (math.isfinite(high) and low >= 0.0):
        return None
    for step in STEPS:
        base, top = int(low / step), int(high / step)
        entries = (top - base + 1) * (15.0 * math.sqrt(top * step) + 60.0)
        if top - base < MOST_TABLES and entries <= MOST_TABLE_ENTRIES:
            break
    else:
        return None
    tables = [_TABLES.get_or_compute(level * step, lambda m=level * step: _table(m))
              for level in range(base, top + 1)]
    lengths = [t.shape[1] // GUIDE for t in tables]
    cdfs = np.concatenate([t[1, :n] for t, n in zip(tables, lengths, strict=True)])
    guides = np.concatenate([t[2] for t in tables]).astype(np.int32)
    cdf_starts = np.cumsum([0, *lengths])
    guide_starts = np.cumsum([0, *(t.shape[1] for t in tables)])
    lows = np.array([int(t[0, 0]) for t in tables])
    step_cdf = special.pdtr(np.arange(_STEP_COUNTS), step)
    step_cdf[-1] = 1.0  # the search for a uniform draw ends inside the table
    return step, base, cdfs, cdf_starts, guides, guide_starts, lows, step_cdf


def _rows(values: np.ndarray) -> np.ndarray:
    """``values`` as a C-contiguous 2-D array of rows (a view where possible)."""
    return np.ascontiguousarray(values.reshape(-1, values.shape[-1] if values.ndim else 1))


def poisson_by_tables(means: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """Poisson draws (float32) of ``means`` (≥ 0), a function of ``rng``'s state, or ``None`` (``rng``
    untouched) when the means spread too wide for tables."""
    rows = _rows(means)
    packed = _tables(rows) if rows.size else None
    if packed is None:
        return None
    out = np.empty(rows.shape, np.float32)
    return _by_rows(_poisson_rows, rows, out, rng, *packed).reshape(means.shape)


def scintillator_light(means: np.ndarray, counts_per_electron: float, gain_variance: float,
                       rng: np.random.Generator) -> np.ndarray | None:
    """The light (float32 counts) of Poisson-distributed electrons of ``means`` per pixel, each
    electron's yield gamma-distributed with mean ``counts_per_electron`` and relative variance
    ``gain_variance`` (> 0), a function of ``rng``'s state; ``None`` (``rng`` untouched) when the means
    spread too wide for tables."""
    rows = _rows(means)
    packed = _tables(rows) if rows.size else None
    if packed is None:
        return None
    lows, cdf_starts = packed[6], packed[3]
    fewest, most = int(lows.min()), int(np.max(lows + np.diff(cdf_starts))) + _STEP_COUNTS
    shapes = np.arange(fewest, most + 1) / gain_variance  # only the counts the tables can give
    roots = 1.0 / np.sqrt(9.0 * np.clip(shapes - 1.0 / 3.0, 1.0 / 3.0, None))
    out = np.empty(rows.shape, np.float32)
    _by_rows(_light_rows, rows, out, rng, *packed, 1.0 / gain_variance, counts_per_electron * gain_variance,
             fewest, roots, _ZIG_K, _ZIG_W, _ZIG_F)
    return out.reshape(means.shape)


def read_out(signal: np.ndarray, read_noise: float, offset: float, most: int, rng: np.random.Generator
             ) -> np.ndarray:
    """``signal`` plus ``offset`` and Gaussian noise of ``read_noise`` rms, rounded to the nearest
    whole number and clipped to [0, ``most``] (float32)."""
    rows = _rows(signal)
    out = np.empty(rows.shape, np.float32)
    _by_rows(_readout_rows, rows, out, rng, float(read_noise), float(offset), float(most),
             _ZIG_K, _ZIG_W, _ZIG_F)
    return out.reshape(signal.shape)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel, on a small frame."""
    rng = np.random.default_rng(0)
    means = np.full((2, 2), 1.5, np.float32)
    poisson_by_tables(means, rng)
    scintillator_light(means, 1.0, 0.5, rng)
    read_out(means, 1.0, 0.0, 1, rng)
