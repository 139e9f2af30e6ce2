"""The specimen as a thin phase-and-amplitude object built from projected atom densities, for pixels
too coarse to resolve the lattice (low and medium magnification).

A crystal then contributes only its mean potential, but everything that varies on the pixels' scale
stays: the amorphous film's density fluctuations (its Thon rings), the step in mean potential at a
hole's or a flake's edge (Fresnel fringes under defocus), and the mass-thickness contrast of electrons
scattered outside the objective aperture. The projected potential of each element is its density
convolved with its projected atomic potential, ``V(k) = (h² / 2 pi m0 e) f_e(k)``, from abTEM's Lobato
parametrisation, the same as the multislice path uses; ``phase = sigma V``.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
from scipy import constants

from twin.constants import ANGSTROM
from twin.physics.ctf import electron_wavelength

_K_MAX = 12.0  # 1/Å: scattering factors are negligible beyond


@lru_cache(maxsize=32)
def _form_factor(symbol: str):
    from abtem.parametrizations import LobatoParametrization  # here: importing abTEM takes seconds

    return LobatoParametrization().projected_scattering_factor(symbol)


def projected_form_factor(symbol: str, k2: np.ndarray) -> np.ndarray:
    """Fourier transform (V Å³) of one atom's projected potential at ``k2`` (1/Å²)."""
    return np.asarray(_form_factor(symbol)(k2), dtype=float)


@lru_cache(maxsize=256)
def scattered_beyond(symbol: str, energy: float, angle: float) -> float:
    """Cross-section (Å²) for elastic scattering by one atom of ``symbol`` to angles above ``angle``
    (rad) at ``energy`` (eV): ``2 pi lambda² gamma² int_{angle/lambda} |f_e(k)|² k dk``, small angles."""
    wavelength = electron_wavelength(energy) / ANGSTROM
    gamma = 1 + constants.e * energy / (constants.m_e * constants.c**2)
    from abtem.parametrizations import LobatoParametrization  # here: importing abTEM takes seconds

    scattering = LobatoParametrization().scattering_factor(symbol)
    k = np.linspace(angle / wavelength, _K_MAX, 4001)
    integrand = np.asarray(scattering(k**2), dtype=float) ** 2 * k
    return float(2 * np.pi * wavelength**2 * gamma**2 * np.trapezoid(integrand, k))


def transmission(densities: dict[str, np.ndarray], step: float, energy: float,
                 aperture: float | None = None, stretch: float = 1.0) -> np.ndarray:
    """Transmission function (complex64, the densities' shape) of a thin specimen with ``densities``
    (atoms per Å² of each element over pixels of ``step`` Å): the phase ``sigma V`` of its projected
    potential, and with an objective aperture of semi-angle ``aperture`` (rad) the amplitude
    ``exp(-sum n sigma_beyond / 2)`` of the electrons it lets through. ``stretch``: the path length
    through the specimen over its thickness (a tilted specimen projects more atoms)."""
    shape = next(iter(densities.values())).shape
    ky = scipy.fft.fftfreq(shape[0], step)[:, None]
    kx = scipy.fft.fftfreq(shape[1], step)[None, :]
    k2 = kx**2 + ky**2
    potential = np.zeros(shape, dtype=complex)
    lost = np.zeros(shape)
    for symbol, density in densities.items():
        potential += scipy.fft.fft2(density, workers=-1) * projected_form_factor(symbol, k2)
        if aperture is not None:
            lost += density * scattered_beyond(symbol, energy, aperture)
    from abtem.core.energy import energy2sigma

    phase = energy2sigma(energy) * stretch * scipy.fft.ifft2(potential, workers=-1).real
    wave = np.exp(1j * phase - 0.5 * stretch * lost)
    return wave.astype(np.complex64)
