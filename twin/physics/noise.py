"""Gaussian noise (AFM height and controller noise), always from a given generator."""

from __future__ import annotations

import numpy as np


def gaussian_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean normal noise of standard deviation ``sigma`` (float32: the frames' precision)."""
    if sigma <= 0:
        return np.zeros(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma)
