"""Knock-on (elastic, ballistic) electron-beam damage of 2-D crystals.

A beam electron of kinetic energy E (eV) scattering elastically off a nucleus of mass M transfers at
most ``E_max = 2 E (E + 2 m_e c^2) / (M c^2)``; an atom is displaced (sputtered) when it receives more
than its displacement threshold ``E_d`` (eV). The total displacement cross-section is the
McKinley–Feshbach approximation to the Mott cross-section for a static nucleus, as used for graphene
by Meyer et al., PRL 108, 196102 (2012) and reviewed by Banhart, Rep. Prog. Phys. 62, 1181 (1999).
For a nucleus at rest the onset is sharp: ~105 keV for C in graphene (E_d = 21.14 eV) and ~92 keV for
S in MoS2 (6.9 eV). The twin uses :func:`thermal_cross_section`: the atoms' zero-point and thermal
vibration along the beam (Debye model) spreads the largest transfer, so graphene sputters from ~85 keV
(3e-6 barn at 80 keV, 0.4 barn at 100 keV), as Meyer et al. measured. Damage assisted by electronic
excitation (S in MoS2 below ~90 keV) is not included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers, chemical_symbols
from scipy import constants

from twin.constants import ANGSTROM

DISPLACEMENT_ENERGIES: dict[tuple[str, str], float] = {
    # Meyer et al., PRL 108, 196102 (2012): 21.14 eV fits the measured cross-sections
    # (their fit includes vibrations; here it is the static threshold).
    ("C", "graphene"): 21.14,
    # Assumed close to C: Susi et al., ACS Nano 6, 8837 (2012) find by DFT-MD that substitutional N
    # is not sputtered under 80 kV imaging; 22 eV is our estimate, not a published number.
    ("N", "graphene"): 22.0,
    # Assumed: Si substitutions survive long 60 kV exposures (Susi et al., PRL 113, 115501 (2014));
    # any E_d above E_max(Si, 60 keV) = 5.0 eV reproduces that. 20 eV is our estimate.
    ("Si", "graphene"): 20.0,
    # Kotakoski et al., PRB 82, 113404 (2010), DFT-MD: 19.36 eV for B and 23.06 eV for N.
    ("B", "hBN"): 19.36,
    ("N", "hBN"): 23.06,
    # Assumed equal to C in graphene (C on an N site, three C-B bonds): our estimate.
    ("C", "hBN"): 21.14,
    # Komsa et al., PRL 109, 035503 (2012), DFT-MD: 6.9 eV for S in MoS2.
    ("S", "MoS2"): 6.9,
    # Approximate, after Komsa et al. (2012), where Mo sputtering needs ~560 keV (E_max(Mo) = 20 eV);
    # W on a Mo site is assumed to be bound as Mo is.
    ("Mo", "MoS2"): 20.0,
    ("W", "MoS2"): 20.0,
}
"""Displacement thresholds (eV) keyed by ``(chemical symbol, crystal name)`` (``Crystal2D.name``)."""

DEFAULT_DISPLACEMENT_ENERGY = 20.0
"""Threshold (eV) for pairs not in the table: typical of the strongly bound atoms above."""


def displacement_energy(symbol: str, material: str) -> float:
    """Displacement threshold (eV) of element ``symbol`` in crystal ``material``, else the default."""
    return DISPLACEMENT_ENERGIES.get((symbol, material), DEFAULT_DISPLACEMENT_ENERGY)


def max_transferred_energy(beam_energy: float, mass: float | np.ndarray) -> float | np.ndarray:
    """Largest energy (eV) an electron of ``beam_energy`` (eV) gives a nucleus of ``mass`` (kg).

    Head-on collision of a relativistic electron with a non-relativistic nucleus at rest.
    """
    energy = beam_energy * constants.e
    rest = constants.m_e * constants.c**2
    return 2 * energy * (energy + 2 * rest) / (np.asarray(mass) * constants.c**2) / constants.e


def knock_on_cross_section(
    beam_energy: float,
    atomic_number: int | np.ndarray,
    mass: float | np.ndarray,
    displacement_energy: float | np.ndarray,
) -> float | np.ndarray:
    """Total displacement cross-section (m²) for a ``beam_energy`` (eV) electron; 0 when E_max <= E_d.

    McKinley–Feshbach (Banhart 1999, Eq. 5; Meyer et al. 2012) with ``x = E_max / E_d``::

        sigma = pi (Z r_e)^2 (1 - beta^2) / beta^4
                * [x - 1 - beta^2 ln x + pi alpha Z beta (2 sqrt x - ln x - 2)]

    where ``pi r_e^2 = 4 pi a0^2 E_R^2 / (m_e c^2)^2``. Accurate for Z up to ~28; for heavier atoms
    (Mo, W) it is only an estimate. ``atomic_number``, ``mass`` (kg) and ``displacement_energy`` (eV)
    broadcast against each other, one entry per atom.
    """
    x = np.maximum(max_transferred_energy(beam_energy, mass) / np.asarray(displacement_energy), 1.0)
    return _mckinley_feshbach(beam_energy, atomic_number, x)


def _mckinley_feshbach(beam_energy: float, atomic_number: int | np.ndarray, x: np.ndarray
                       ) -> float | np.ndarray:
    """The McKinley–Feshbach bracket times its prefactor, for ``x = E_max / E_d >= 1``."""
    gamma = 1 + beam_energy * constants.e / (constants.m_e * constants.c**2)
    beta2 = 1 - 1 / gamma**2
    z = np.asarray(atomic_number, dtype=float)
    x = np.asarray(x, dtype=float)
    bracket = x - 1 - beta2 * np.log(x) + np.pi * constants.alpha * z * np.sqrt(beta2) * (
        2 * np.sqrt(x) - np.log(x) - 2
    )
    r_e = constants.physical_constants["classical electron radius"][0]
    sigma = np.pi * (z * r_e) ** 2 * (1 - beta2) / beta2**2 * bracket
    return sigma if sigma.ndim else float(sigma)


def vibration_velocity(mass: float | np.ndarray, debye_temperature: float, temperature: float = 293.0
                       ) -> float | np.ndarray:
    """RMS velocity (m/s) of an atom of ``mass`` (kg) along one axis in a Debye solid of
    ``debye_temperature`` (K) at ``temperature`` (K), zero-point motion included: the kinetic half of
    ``(3/8) k theta + 3 k T (T/theta)^3 integral_0^(theta/T) x^3 / (e^x - 1) dx`` per degree of freedom."""
    upper = debye_temperature / temperature
    x = np.linspace(1e-6, upper, 2001)
    thermal = 3 * temperature * (temperature / debye_temperature) ** 3 * np.trapezoid(x**3 / np.expm1(x), x)
    energy = constants.k * (3 / 8 * debye_temperature + thermal)
    return np.sqrt(energy / np.asarray(mass))


def thermal_cross_section(
    beam_energy: float, atomic_number: int | np.ndarray, mass: float | np.ndarray,
    displacement_energy: float | np.ndarray, velocity_rms: float | np.ndarray,
) -> np.ndarray:
    """Displacement cross-section (m²) of vibrating atoms: the static one averaged over a Gaussian
    velocity ``v`` along the beam (RMS ``velocity_rms``, m/s), which raises the largest transfer to
    ``E_max + 2 p v`` for an electron of momentum ``p`` (Meyer et al. 2012). The onset softens: graphene
    starts to sputter near 85 keV instead of 105 keV."""
    z, mass, e_d, v_rms = np.broadcast_arrays(*(np.atleast_1d(np.asarray(a, dtype=float)) for a in (
        atomic_number, mass, displacement_energy, velocity_rms)))
    u = np.linspace(-8.0, 8.0, 1601)  # velocity in units of its RMS
    weight = np.exp(-(u**2) / 2) / np.sqrt(2 * np.pi)
    rest = constants.m_e * constants.c**2 / constants.e  # eV
    momentum_ev = np.sqrt(beam_energy * (beam_energy + 2 * rest))  # p c, eV
    transfer = (max_transferred_energy(beam_energy, mass)[:, None]
                + 2 * momentum_ev * v_rms[:, None] * u[None, :] / constants.c)
    x = transfer / e_d[:, None]
    sigma = np.where(x > 1.0, _mckinley_feshbach(beam_energy, z[:, None], np.maximum(x, 1.0)), 0.0)
    return np.trapezoid(sigma * weight, u, axis=1)


DEBYE_TEMPERATURES = {"graphene": 1287.0, "hBN": 1287.0, "MoS2": 600.0}
"""Debye temperatures (K) of the out-of-plane vibrations: graphene's as used by Meyer et al. (2012);
hBN's and MoS2's are our assumptions."""


def displaced(
    numbers: np.ndarray, dose: np.ndarray, beam_energy: float, material: str, rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask of the atoms knocked out of crystal ``material`` by a ``beam_energy`` (eV) beam.

    Atom ``i`` (atomic number ``numbers[i]``) receives ``dose[i]`` electrons per m² and is displaced
    independently with probability ``1 - exp(-sigma_i dose_i)``; one uniform draw per atom.
    """
    numbers = np.asarray(numbers)
    probability = -np.expm1(-cross_sections(numbers, material, beam_energy) * np.asarray(dose))
    return rng.random(numbers.shape) < probability


def cross_sections(numbers: np.ndarray, material: str, beam_energy: float) -> np.ndarray:
    """Knock-on cross-section (m², one per atom) of atoms with atomic ``numbers`` in ``material``
    under a ``beam_energy`` (eV) beam."""
    numbers = np.asarray(numbers)
    elements, inverse = np.unique(numbers, return_inverse=True)
    thresholds = [displacement_energy(chemical_symbols[z], material) for z in elements]
    masses = atomic_masses[elements] * constants.atomic_mass
    velocity = vibration_velocity(masses, DEBYE_TEMPERATURES.get(material, 1000.0))
    sigma = thermal_cross_section(beam_energy, elements, masses, np.array(thresholds), velocity)
    return np.asarray(sigma, dtype=np.float64)[inverse.reshape(numbers.shape)]


def largest_cross_section(symbols: Iterable[str], material: str, beam_energy: float) -> float:
    """The largest knock-on cross-section (m²) among ``symbols`` in ``material`` at ``beam_energy`` (eV)."""
    numbers = np.array([atomic_numbers[s] for s in symbols])
    thresholds = np.array([displacement_energy(s, material) for s in symbols])
    masses = atomic_masses[numbers] * constants.atomic_mass
    if not len(numbers):
        return 0.0
    velocity = vibration_velocity(masses, DEBYE_TEMPERATURES.get(material, 1000.0))
    return float(np.max(thermal_cross_section(beam_energy, numbers, masses, thresholds, velocity)))


# --- knock-ons of an exposure ------------------------------------------------------------------------
def displaced_in_area(atoms: Atoms, corner: tuple[float, float], inside: Callable[[Any, Any], Any],
                      dose: float, beam_energy: float, material: str, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of ``atoms`` (Å, relative to ``corner`` in m) knocked out by ``dose`` electrons per
    m² wherever ``inside(x, y)`` holds (m), none elsewhere (:func:`displaced`)."""
    x = corner[0] + atoms.positions[:, 0] * ANGSTROM
    y = corner[1] + atoms.positions[:, 1] * ANGSTROM
    doses = np.where(inside(x, y), dose, 0.0)
    return displaced(atoms.numbers, doses, beam_energy, material, rng)


def sampled_knock_ons(bounds: tuple[float, float, float, float], inside: Callable[[Any, Any], Any],
                      dose: float, beam_energy: float, material: str, sigma: float, atoms_per_area: float,
                      reach: float, atoms_around: Callable[[float, float], Atoms], rng: np.random.Generator,
                      most_hits: int) -> Atoms | None:
    """The atoms knocked out over an area too large to list its atoms (``bounds`` = x_min, y_min, x_max,
    y_max in m, holding ``atoms_per_area`` atoms per m²): displacing collisions fall as a Poisson
    process at the largest species' rate ``sigma dose`` per atom (at most ``most_hits``), each on the
    atom nearest to it, kept with that atom's own cross-section over the largest (thinning). An atom is
    then displaced at least once with probability ``1 - exp(-sigma_i dose)``, as when every atom is
    drawn. ``atoms_around(x, y)`` gives the atoms in the square of side ``2 reach`` (m) around a point
    (Å, relative to its corner). Returns the atoms (Å, relative to the area's corner), or None."""
    x_min, y_min, x_max, y_max = bounds
    hits = rng.poisson(atoms_per_area * (x_max - x_min) * (y_max - y_min) * sigma * dose)
    hits = min(hits, most_hits)
    x = rng.uniform(x_min, x_max, hits)
    y = rng.uniform(y_min, y_max, hits)
    keep = inside(x, y)
    chosen = []
    for px, py in zip(x[keep], y[keep], strict=True):
        near = atoms_around(px, py)
        if len(near):
            nearest = int(np.argmin(np.hypot(*(near.positions[:, :2].T - reach / ANGSTROM))))
            near = near[[nearest]]
            near.positions[:, :2] += (np.array([px, py]) - reach - [x_min, y_min]) / ANGSTROM
            chosen.append(near)
    if not chosen:
        return None
    atoms = chosen[0]
    for more in chosen[1:]:
        atoms.extend(more)
    own = cross_sections(atoms.numbers, material, beam_energy)
    return atoms[rng.random(len(atoms)) < own / sigma]
