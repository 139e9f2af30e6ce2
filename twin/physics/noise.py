"""Gaussian noise (AFM height and controller noise), always from a given generator."""

from __future__ import annotations

import numpy as np


def gaussian_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean normal noise of standard deviation ``sigma`` (float64)."""
    return rng.normal(0.0, sigma, shape) if sigma > 0 else np.zeros(shape)
