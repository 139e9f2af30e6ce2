"""Detectors: how electrons arriving at a camera or a STEM detector become recorded counts."""

from __future__ import annotations

from collections.abc import Callable

import ducc0
import numpy as np

from twin.common.cache import ArrayCache
from twin.common.fft_threads import FFT_THREADS, WORKERS
from twin.physics import random_draws

UINT16_MAX = np.iinfo(np.uint16).max
TRUNCATE = 4.0  # a Gaussian's taps reach this many widths (scipy.ndimage's default)
SINGLE_PRECISION_RANGE = 1e4  # brightest / median pixel up to which the blur is done in single precision
_TRANSFERS = ArrayCache(64 * 2**20)  # the point spread's transfer function per frame shape and widths


def psf_sigma(sensor_sigma: float, binning: int) -> float:
    """Width (read-out pixels) of a point spread ``sensor_sigma`` sensor pixels wide on a frame read out
    with ``binning``: binning makes the blur relatively smaller."""
    return sensor_sigma / binning


def gaussian_taps(sigma: float) -> np.ndarray:
    """The sampled Gaussian of width ``sigma`` (pixels) as :func:`scipy.ndimage.gaussian_filter` applies it:
    taps out to ``TRUNCATE`` widths, summing to 1; a width under a quarter pixel moves no light to a
    neighbour (weight below e⁻⁸) and is a single tap."""
    if sigma < 0.25:
        return np.ones(1)
    x = np.arange(-int(TRUNCATE * sigma + 0.5), int(TRUNCATE * sigma + 0.5) + 1)
    taps = np.exp(-0.5 * (x / sigma) ** 2)
    return taps / taps.sum()


def spread_profiles(core: float, tail: float = 0.0, tail_fraction: float = 0.0
                    ) -> tuple[tuple[float, np.ndarray], ...]:
    """The point spread (widths in pixels) as separable parts ``(weight, taps along an axis)``: a
    Gaussian ``core`` carrying ``1 - tail_fraction`` of the light and a wide Gaussian ``tail`` carrying
    ``tail_fraction`` (the core convolved with the Gaussian that widens it to ``tail``)."""
    taps = gaussian_taps(core)
    if tail_fraction <= 0.0 or tail < 0.25:
        return ((1.0, taps),)
    extra = np.sqrt(max(tail**2 - core**2, 0.0)) if core >= 0.25 else tail  # core * extra = tail
    return ((1.0 - tail_fraction, taps), (tail_fraction, np.convolve(taps, gaussian_taps(extra))))


def _transfer(shape: tuple[int, int], profiles: tuple[tuple[float, np.ndarray], ...], dtype: np.dtype
              ) -> np.ndarray:
    """The point spread's transform (``dtype``, ``[ky, kx]`` with ``kx`` halved as a real FFT gives it)
    on a periodic frame of ``shape``: the sum over parts of weight x the taps' transforms along y and x."""
    def along(length: int, taps: np.ndarray, half: bool) -> np.ndarray:
        circular = np.zeros(length)
        circular[(np.arange(len(taps)) - len(taps) // 2) % length] = taps
        return (np.fft.rfft(circular) if half else np.fft.fft(circular)).real  # symmetric taps: real

    key = (shape, tuple((w, t.tobytes()) for w, t in profiles), np.dtype(dtype).str)
    return _TRANSFERS.get_or_compute(key, lambda: sum(
        w * np.multiply.outer(along(shape[0], t, False), along(shape[1], t, True)) for w, t in profiles
    ).astype(dtype))


def point_spread(image: np.ndarray, core: float, tail: float = 0.0, tail_fraction: float = 0.0) -> np.ndarray:
    """``image`` blurred by a scintillator's point spread (:func:`spread_profiles`: widths in pixels,
    light and electrons scattered back from the scintillator's support in the tail), as float32. The frame
    is extended by its edge values (as ``mode='nearest'``) and convolved with the taps through one real
    FFT each way: the same sums as filtering along each axis, whatever the widths, without their cost.
    Single precision rounds each row and column of the result by ~1e-7 of its brightest values: nothing
    on an image, but stripes of tens of counts across a diffraction pattern from its direct beam, so a
    frame whose brightest pixel exceeds :data:`SINGLE_PRECISION_RANGE` times its typical one (+1) is
    blurred in double precision (4 times slower)."""
    profiles = spread_profiles(core, tail, tail_fraction)
    reach = max(len(taps) for _, taps in profiles) // 2
    if reach == 0:
        return np.asarray(image, dtype=np.float32)
    height, width = image.shape
    shape = (ducc0.fft.good_size(height + 2 * reach), ducc0.fft.good_size(width + 2 * reach, True))
    extra = ((reach, shape[0] - height - reach), (reach, shape[1] - width - reach))
    image = np.asarray(image)
    typical = float(np.median(image[::8, ::8])) if image.size else 0.0  # a look at every 64th pixel
    wide_range = image.size and float(image.max()) > SINGLE_PRECISION_RANGE * (abs(typical) + 1.0)
    padded = np.pad(image.astype(np.float64 if wide_range else np.float32, copy=False), extra, mode="edge")
    spectrum = ducc0.fft.r2c(padded, axes=(0, 1), nthreads=FFT_THREADS)
    spectrum *= _transfer(shape, profiles, padded.dtype)
    blurred = ducc0.fft.c2r(spectrum, axes=(0, 1), lastsize=shape[1], forward=False, inorm=2,
                            nthreads=FFT_THREADS)
    return blurred[reach : reach + height, reach : reach + width].astype(np.float32)


def modulation_transfer(frequency: np.ndarray | float, core: float, tail: float = 0.0,
                        tail_fraction: float = 0.0) -> np.ndarray:
    """MTF of :func:`point_spread` along a pixel axis at ``frequency`` (cycles per pixel; Nyquist is
    0.5): the transform of the discrete kernel the twin applies. The pixel's own aperture is not part of
    it (the twin samples the image at pixel centres)."""
    kernel = _kernel(core, tail, tail_fraction)
    profile = kernel.sum(axis=0)
    x = np.arange(len(profile)) - len(profile) // 2
    f = np.asarray(frequency, dtype=float)
    return np.sum(profile * np.cos(2 * np.pi * np.multiply.outer(f, x)), axis=-1)


def gain_draw(electrons: np.ndarray, counts_per_electron: float, gain_variance: float,
              rng: np.random.Generator) -> np.ndarray:
    """Counts (float32, before the blur) from ``electrons`` per pixel when each electron's light yield
    fluctuates: gamma-distributed with mean ``counts_per_electron`` and relative variance
    ``gain_variance``, so a pixel's sum of N such yields is one gamma draw of shape ``N / gain_variance``.
    The Swank factor is ``1 / (1 + gain_variance)``; ``gain_variance`` 0 is a noiseless gain."""
    if gain_variance <= 0.0:
        return electrons.astype(np.float32) * np.float32(counts_per_electron)
    shape = np.asarray(electrons, dtype=np.float32) / np.float32(gain_variance)
    scale = np.float32(counts_per_electron * gain_variance)
    return _parallel(rng, shape, lambda g, part: g.standard_gamma(part, dtype=np.float32)) * scale


def scintillator_light(expected: np.ndarray, counts_per_electron: float, gain_variance: float,
                       rng: np.random.Generator) -> np.ndarray:
    """The light (float32 counts, before the blur) of Poisson-distributed electrons of mean ``expected``
    per pixel, each electron's yield fluctuating as in :func:`gain_draw`."""
    if gain_variance > 0.0:
        light = random_draws.scintillator_light(np.clip(expected, 0.0, None), counts_per_electron,
                                                gain_variance, rng)
        if light is not None:
            return light
    return gain_draw(shot_noise(expected, rng), counts_per_electron, gain_variance, rng)


def camera_counts(
    light: np.ndarray,
    sigma: float,
    read_noise: float,
    rng: np.random.Generator,
    *,
    tail: float = 0.0,
    tail_fraction: float = 0.0,
    offset: float = 0.0,
) -> np.ndarray:
    """Recorded uint16 counts of an integrating (scintillator) camera from the ``light`` (counts) the
    arriving electrons give per pixel (:func:`scintillator_light`).

    The scintillator spreads the light over the point spread of core ``sigma`` (and ``tail``, pixels:
    :func:`point_spread`), blurring signal and shot noise alike; then Gaussian read noise (counts) on a
    dark ``offset`` (counts, so the noise is not clipped at zero), rounding, and saturation at 65535.
    """
    counts = point_spread(light, sigma, tail, tail_fraction)
    return random_draws.read_out(counts, read_noise, offset, UINT16_MAX, rng).astype(np.uint16)


def counted_fraction(rate: np.ndarray | float, efficiency: float, dead_time: float) -> np.ndarray:
    """Mean counts per incident electron of a counting detector at ``rate`` incident electrons per
    pixel per second: each electron is detected with probability ``efficiency`` and a pixel that has
    just counted is blind for ``dead_time`` (s), so the counted rate follows the non-paralysable
    dead-time law ``m = n / (1 + n tau)`` of the detected rate ``n = efficiency x rate``."""
    detected = efficiency * np.asarray(rate, dtype=float)
    return efficiency / (1.0 + detected * dead_time)


def counting_counts(expected: np.ndarray, exposure: float, binning: int, efficiency: float, dead_time: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Recorded uint16 counts of a direct electron detector in counting mode from ``expected`` electrons
    per read-out pixel (each of ``binning``² sensor pixels) in ``exposure`` (s): every counted electron
    adds exactly one count, at its pixel (no blur, no read noise, no offset). Counting thins the
    Poisson arrivals by :func:`counted_fraction`, which leaves them Poisson (variance = mean, a flat
    noise power spectrum); the sub-Poisson variance of a dead-time counter near saturation is left out."""
    rate = np.clip(expected, 0.0, None) / (exposure * binning**2)  # per sensor pixel
    counted = shot_noise(expected * counted_fraction(rate, efficiency, dead_time), rng)
    return np.clip(counted, 0, UINT16_MAX).astype(np.uint16)




def _parallel(rng: np.random.Generator, values: np.ndarray,
              draw: Callable[[np.random.Generator, np.ndarray], np.ndarray]) -> np.ndarray:
    """``draw(generator, values)`` (float32), large frames in two halves on the twin's workers (numpy releases
    the GIL while sampling), each from a child of ``rng``, so the result stays a function of the
    generator's state."""
    if values.size < 256 * 256 or values.ndim != 2:
        return draw(rng, values).astype(np.float32)
    halves = (values[: len(values) // 2], values[len(values) // 2 :])
    jobs = zip(rng.spawn(2), halves, strict=True)
    parts = WORKERS.map(lambda job: draw(*job).astype(np.float32), jobs)
    return np.concatenate(list(parts))


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-distributed electron numbers (float32) with the given (non-negative) means."""
    means = np.clip(expected, 0.0, None)
    drawn = random_draws.poisson_by_tables(means, rng)
    return _parallel(rng, means, lambda g, part: g.poisson(part)) if drawn is None else drawn


def _kernel(sigma: float, tail: float, tail_fraction: float) -> np.ndarray:
    """The discrete 2-D kernel of :func:`point_spread` (float64, centred)."""
    profiles = spread_profiles(sigma, tail, tail_fraction)
    half = max(len(taps) for _, taps in profiles) // 2
    kernel = np.zeros((2 * half + 1, 2 * half + 1))
    for weight, taps in profiles:
        centred = np.pad(taps, half - len(taps) // 2)
        kernel += weight * np.multiply.outer(centred, centred)
    return kernel


def noise_power_ratio(sigma: float, tail: float = 0.0, tail_fraction: float = 0.0) -> float:
    """Variance / mean of a flat, shot-noise-limited frame after :func:`point_spread` (core ``sigma``,
    ``tail``, pixels): the sum of the squared (discrete) blur kernel, the noise transfer of the blur."""
    return float(np.sum(_kernel(sigma, tail, tail_fraction) ** 2))
