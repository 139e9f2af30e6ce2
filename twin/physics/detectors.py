"""Detectors: how electrons arriving at a camera or a STEM detector become recorded counts."""

from __future__ import annotations

import numpy as np

UINT16_MAX = np.iinfo(np.uint16).max


def camera_mtf(size: int, binning: int, mtf_half: float) -> np.ndarray:
    """Modulation transfer (FFT order, ``size``²) of a scintillator camera read out with ``binning``.

    The pixel's own box gives ``sinc``; the scintillator's light spread, fixed on the sensor, gives
    ``1 / (1 + (f / f_half)²)`` with ``f`` in units of the full-frame Nyquist frequency, so binning
    makes it less visible.
    """
    f = 2.0 * np.fft.fftfreq(size)  # in units of the read-out Nyquist frequency
    fx, fy = f[None, :], f[:, None]
    box = np.sinc(fx / 2.0) * np.sinc(fy / 2.0)
    spread = 1.0 / (1.0 + ((fx**2 + fy**2) / binning**2) / mtf_half**2)
    return box * spread


def camera_counts(
    electrons: np.ndarray,
    mtf: np.ndarray,
    counts_per_electron: float,
    read_noise: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Recorded uint16 counts from arriving ``electrons`` (already Poisson-distributed) per pixel.

    The camera blurs signal and shot noise alike (an integrating camera), converts to counts, adds
    Gaussian read noise and saturates at 65535.
    """
    blurred = np.fft.ifft2(np.fft.fft2(electrons) * mtf).real
    counts = blurred * counts_per_electron + rng.normal(0.0, read_noise, electrons.shape)
    return np.clip(np.rint(counts), 0, UINT16_MAX).astype(np.uint16)


def shot_noise(expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-distributed electron numbers with the given (non-negative) means."""
    return rng.poisson(np.clip(expected, 0.0, None)).astype(np.float64)


def noise_power_ratio(mtf: np.ndarray) -> float:
    """Variance / mean of a flat, shot-noise-limited frame after the camera's blur (Parseval)."""
    return float(np.mean(np.abs(mtf) ** 2))
