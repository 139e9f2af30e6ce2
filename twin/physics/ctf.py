"""Objective-lens contrast transfer for HRTEM, in SI units, with abTEM's sign conventions.

The aberration phase is ``chi(k) = 2 pi / lambda * (alpha^2 / 2 * (C10 + C12 cos 2(phi - phi12))
+ alpha^4 / 4 * C30)`` with ``alpha = lambda k``, and the wave is multiplied by ``exp(-i chi)``.
``C10`` is the defocus as the microscope displays it: negative is underfocus, so Scherzer
imaging with positive ``C30`` uses ``C10 = -sqrt(4/3 C30 lambda)``.
Partial coherence enters as the quasi-coherent temporal and spatial envelopes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import constants


@dataclass(frozen=True)
class Aberrations:
    """Axial aberrations of the objective lens (lengths in m, angles in rad)."""

    C10: float = 0.0  # defocus; negative = underfocus
    C12: float = 0.0  # two-fold astigmatism
    phi12: float = 0.0
    C30: float = 0.0  # spherical aberration Cs


@dataclass(frozen=True)
class Coherence:
    """Partial coherence of the illumination.

    ``focal_spread`` is the 1/e half-width of the defocus spread (m), from chromatic aberration
    and energy spread; ``angular_spread`` is the illumination semi-angle spread (rad).
    """

    focal_spread: float = 0.0
    angular_spread: float = 0.0


def electron_wavelength(energy: float) -> float:
    """Relativistic electron wavelength (m) for a kinetic energy ``energy`` (eV)."""
    e, m, c, h = constants.e, constants.m_e, constants.c, constants.h
    return h / np.sqrt(2 * m * e * energy * (1 + e * energy / (2 * m * c**2)))


def scherzer_defocus(Cs: float, energy: float) -> float:
    """The Scherzer defocus (m) for spherical aberration ``Cs`` (m): negative for Cs > 0."""
    return -np.sign(Cs) * np.sqrt(4.0 / 3.0 * abs(Cs) * electron_wavelength(energy))


def spatial_frequencies(shape: tuple[int, int], sampling: float) -> tuple[np.ndarray, np.ndarray]:
    """``(kx, ky)`` (1/m) for an image of ``shape = (ny, nx)``, in FFT order, broadcastable."""
    ny, nx = shape
    return np.fft.fftfreq(nx, sampling)[None, :], np.fft.fftfreq(ny, sampling)[:, None]


def aberration_phase(kx: np.ndarray, ky: np.ndarray, wavelength: float, ab: Aberrations) -> np.ndarray:
    """The phase ``chi`` (rad) at spatial frequencies ``kx``, ``ky`` (1/m)."""
    alpha2 = wavelength**2 * (kx**2 + ky**2)
    phi = np.arctan2(ky, kx)
    return (2 * np.pi / wavelength) * (
        0.5 * alpha2 * (ab.C10 + ab.C12 * np.cos(2 * (phi - ab.phi12))) + 0.25 * alpha2**2 * ab.C30
    )


def temporal_envelope(kx: np.ndarray, ky: np.ndarray, wavelength: float, focal_spread: float) -> np.ndarray:
    """Damping from the defocus spread: ``exp(-(pi lambda Delta k^2 / 2)^2)``."""
    return np.exp(-((0.5 * np.pi * wavelength * focal_spread * (kx**2 + ky**2)) ** 2))


def spatial_envelope(
    kx: np.ndarray, ky: np.ndarray, wavelength: float, ab: Aberrations, angular_spread: float
) -> np.ndarray:
    """Damping from the illumination's angular spread: ``exp(-(theta/2)^2 |grad_alpha chi|^2)``."""
    alpha = wavelength * np.sqrt(kx**2 + ky**2)
    phi = np.arctan2(ky, kx)
    radial = (2 * np.pi / wavelength) * (
        (ab.C10 + ab.C12 * np.cos(2 * (phi - ab.phi12))) * alpha + ab.C30 * alpha**3
    )
    azimuthal = -(2 * np.pi / wavelength) * ab.C12 * np.sin(2 * (phi - ab.phi12)) * alpha
    return np.exp(-((angular_spread / 2) ** 2) * (radial**2 + azimuthal**2))


def information_limit(energy: float, coherence: Coherence) -> float:
    """Spatial frequency (1/m) where the temporal envelope falls to e⁻²; infinite without spread."""
    if coherence.focal_spread <= 0:
        return np.inf
    wavelength = electron_wavelength(energy)
    return float(np.sqrt(2 * np.sqrt(2) / (np.pi * wavelength * coherence.focal_spread)))


def delocalization(energy: float, ab: Aberrations, coherence: Coherence, sampling: float) -> float:
    """How far (m) the lens spreads the contrast of a point: ``max |grad chi| / 2 pi`` over the
    spatial frequencies that still carry contrast.

    Those end where the simulation's anti-aliasing band (2/3 of Nyquist) or an envelope (at e⁻²)
    ends, whichever comes first: ``lambda |C10| k + Cs lambda^3 k^3``.
    """
    wavelength = electron_wavelength(energy)
    k = min(1.0 / (3.0 * sampling), information_limit(energy, coherence))
    defocus = abs(ab.C10) + abs(ab.C12)
    if coherence.angular_spread > 0 and defocus > 0:
        k = min(k, np.sqrt(2) / (np.pi * coherence.angular_spread * defocus))
    return float(wavelength * defocus * k + abs(ab.C30) * wavelength**3 * k**3)


@dataclass(frozen=True)
class _FrequencyGrid:
    """``k²`` (1/m²), ``cos 2 phi`` and ``sin 2 phi`` of a grid (float32, FFT order)."""

    k2: np.ndarray
    cos2: np.ndarray
    sin2: np.ndarray


@lru_cache(maxsize=4)
def _frequency_grid(shape: tuple[int, int], sampling: float) -> _FrequencyGrid:
    kx, ky = spatial_frequencies(shape, sampling)
    k2 = kx**2 + ky**2
    safe = np.where(k2 > 0, k2, 1.0)
    return _FrequencyGrid(k2.astype(np.float32), ((kx**2 - ky**2) / safe).astype(np.float32),
                          (2 * kx * ky / safe).astype(np.float32))


def transfer_function(
    shape: tuple[int, int], sampling: float, energy: float, ab: Aberrations, coherence: Coherence
) -> np.ndarray:
    """The complex transfer function (complex64, FFT order) multiplying the exit-wave spectrum.

    The same as ``exp(-i chi)`` times :func:`temporal_envelope` and :func:`spatial_envelope`, written
    in ``k²`` and ``cos/sin 2 phi`` (cached per grid), so that a new focus costs three transcendental
    functions per point in single precision.
    """
    g = _frequency_grid(shape, sampling)
    wavelength = electron_wavelength(energy)
    c, s = np.float32(np.cos(2 * ab.phi12)), np.float32(np.sin(2 * ab.phi12))
    astigmatism = np.float32(ab.C12) * (g.cos2 * c + g.sin2 * s)  # C12 cos 2(phi - phi12)
    defocus = np.float32(ab.C10) + astigmatism
    spherical = np.float32(ab.C30 * wavelength**2) * g.k2
    chi = np.float32(np.pi * wavelength) * g.k2 * (defocus + np.float32(0.5) * spherical)
    damping = (np.float32(0.5 * np.pi * wavelength * coherence.focal_spread) * g.k2) ** 2
    if coherence.angular_spread:
        across = np.float32(ab.C12) * (g.sin2 * c - g.cos2 * s)  # C12 sin 2(phi - phi12)
        spread = np.float32((np.pi * coherence.angular_spread) ** 2)
        damping += spread * g.k2 * ((defocus + spherical) ** 2 + across**2)
    kernel = np.empty(shape, dtype=np.complex64)
    kernel.real = np.cos(chi)
    kernel.imag = -np.sin(chi)
    kernel *= np.exp(-damping)
    return kernel
