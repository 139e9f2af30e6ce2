"""Smooth out-of-plane ripples: a seeded sum of plane waves, defined everywhere, stored as a few numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class RippleField:
    """Height field ``z(x, y) = sum_k A cos(q_k . r + phase_k)`` with a given RMS height.

    Lengths in Å. Wavelengths are drawn log-uniformly in ``[wavelength_min, wavelength_max]``
    and directions uniformly, so the field is isotropic and smooth on the scale of the lattice.
    """

    rms: float = 0.0
    wavelength_min: float = 50.0
    wavelength_max: float = 200.0
    modes: int = 12
    seed: int = 0
    _waves: tuple[np.ndarray, np.ndarray, float] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng([self.seed, 0x5249_5050])  # stream tag: ripples
        wavelengths = np.exp(
            rng.uniform(np.log(self.wavelength_min), np.log(self.wavelength_max), self.modes)
        )
        directions = rng.uniform(0.0, 2.0 * np.pi, self.modes)
        q = (2.0 * np.pi / wavelengths)[:, None] * np.column_stack(
            [np.cos(directions), np.sin(directions)]
        )
        phases = rng.uniform(0.0, 2.0 * np.pi, self.modes)
        amplitude = self.rms * np.sqrt(2.0 / self.modes) if self.modes else 0.0
        object.__setattr__(self, "_waves", (q, phases, amplitude))

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Height (Å) at positions ``x``, ``y`` (Å); arrays broadcast together."""
        x, y = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        if self.rms == 0.0:
            return np.zeros(x.shape)
        q, phases, amplitude = self._waves
        z = np.zeros(x.shape)
        for (qx, qy), phase in zip(q, phases, strict=True):
            z += np.cos(qx * x + qy * y + phase)
        return amplitude * z
