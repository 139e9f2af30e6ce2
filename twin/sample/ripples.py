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

    @property
    def bound(self) -> float:
        """No height (Å) of the field exceeds this."""
        return self._waves[2] * self.modes


@dataclass(frozen=True)
class DisplacementField:
    """Smooth in-plane displacements (a non-uniform strain field): two independent seeded fields like
    :class:`RippleField`, one per direction, ``rms`` (Å) the RMS length of the displacement."""

    rms: float
    wavelength_min: float = 50.0
    wavelength_max: float = 200.0
    seed: int = 0
    _parts: tuple[RippleField, RippleField] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        parts = tuple(RippleField(self.rms / np.sqrt(2), self.wavelength_min, self.wavelength_max,
                                  seed=self.seed * 2 + k + 1) for k in (0, 1))
        object.__setattr__(self, "_parts", parts)

    def at(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Displacement (Å) along x and y at ``x``, ``y`` (Å)."""
        return self._parts[0].height(x, y), self._parts[1].height(x, y)

    @property
    def bound(self) -> float:
        """No displacement component (Å) exceeds this."""
        return self._parts[0].bound
