"""Detectors: how electrons arriving at a camera or a STEM detector become recorded counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import ndimage

UINT16_MAX = np.iinfo(np.uint16).max


def psf_sigma(sensor_sigma: float, binning: int) -> float:
    """Width (read-out pixels) of the scintillator's Gaussian point spread, ``sensor_sigma`` sensor
    pixels wide, on a frame read out with ``binning``: binning makes the blur relatively smaller."""
    return sensor_sigma / binning


def camera_counts(
    electrons: np.ndarray,
    sigma: float,
    counts_per_electron: float,
    read_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Recorded uint16 counts from arriving ``electrons`` (already Poisson-distributed) per pixel.

    The scintillator spreads each electron's light over a Gaussian of ``sigma`` pixels, blurring
    signal and shot noise alike (an integrating camera); then conversion to counts, Gaussian read
    noise, and saturation at 65535. A spread under a quarter pixel moves no light to a neighbour
    (weight below e⁻⁸) and is skipped.
    """
    blurred = ndimage.gaussian_filter(electrons, sigma, mode="nearest") if sigma >= 0.25 else electrons
    noise = rng.standard_normal(electrons.shape, dtype=np.float32) * np.float32(read_noise)
    counts = blurred * np.float32(counts_per_electron) + noise
    return np.clip(np.rint(counts), 0, UINT16_MAX).astype(np.uint16)


_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shot-noise")


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-distributed electron numbers (float32) with the given (non-negative) means.

    Large frames are drawn in two halves on two threads (numpy releases the GIL while sampling), each
    from a child of ``rng``, so the result stays a function of the generator's state.
    """
    means = np.clip(expected, 0.0, None)
    if means.size < 256 * 256 or means.ndim != 2:
        return rng.poisson(means).astype(np.float32)
    halves = (means[: len(means) // 2], means[len(means) // 2 :])
    jobs = zip(rng.spawn(2), halves, strict=True)
    parts = _POOL.map(lambda job: job[0].poisson(job[1]).astype(np.float32), jobs)
    return np.concatenate(list(parts))


def noise_power_ratio(sigma: float) -> float:
    """Variance / mean of a flat, shot-noise-limited frame after a Gaussian blur of ``sigma`` pixels:
    the sum of the squared (discrete) blur kernel."""
    half = int(np.ceil(5 * sigma)) + 1
    delta = np.zeros((2 * half + 1, 2 * half + 1))
    delta[half, half] = 1.0
    kernel = ndimage.gaussian_filter(delta, sigma, mode="constant") if sigma >= 0.25 else delta
    return float(np.sum(kernel**2))
