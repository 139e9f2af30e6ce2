"""Detector statistics: electron shot noise and Gaussian read/z noise, always from a given generator."""

from __future__ import annotations

import numpy as np

UINT16_MAX = np.iinfo(np.uint16).max


def shot_noise_counts(
    intensity: np.ndarray, electrons_per_pixel: float, rng: np.random.Generator
) -> np.ndarray:
    """Poisson-distributed electron counts (uint16, saturating at 65535).

    ``intensity`` is relative to vacuum (1 = unscattered beam); the mean count of a pixel is
    ``intensity * electrons_per_pixel``.
    """
    expected = np.clip(intensity, 0.0, None) * electrons_per_pixel
    counts = rng.poisson(expected)
    return np.minimum(counts, UINT16_MAX).astype(np.uint16)


def gaussian_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean normal noise of standard deviation ``sigma`` (float64)."""
    return rng.normal(0.0, sigma, shape) if sigma > 0 else np.zeros(shape)
