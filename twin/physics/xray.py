"""Characteristic X-rays and bremsstrahlung from a thin specimen, and their detection (EDS).

A fast electron ionises an inner shell of an atom with Bethe's cross-section (relativistic form,
Powell's constants); the hole fills by emitting a photon with the shell's fluorescence yield, shared
among the shell's lines by their relative intensities. The continuum is thin-target bremsstrahlung
(Bethe-Heitler, non-relativistic Born approximation, electron-electron emission as ``Z(Z+1)``). A
silicon drift detector absorbs photons in its silicon (after a thin dead layer), spreads each line
into a Gaussian of Fano-limited width plus electronic noise, and counts them as Poisson events.

Line energies, relative intensities, edges and fluorescence yields come from Elam's tables (xraydb);
silicon's absorption too. Energies in eV, lengths in m, cross-sections in m², solid angles in sr.
Coster-Kronig transitions are left out: K lines are good to a few per cent, L and M lines (all shells
share Powell's K-shell constants) to about a factor of two against K lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import xraydb
from scipy import constants, special

ELECTRON_REST_ENERGY = constants.m_e * constants.c**2 / constants.e  # eV
BETHE_CONSTANT = np.pi * (constants.e**2 / (4 * np.pi * constants.epsilon_0)) ** 2 / constants.e**2  # eV² m²
SHELL_ELECTRONS = {"K": 2, "L1": 2, "L2": 2, "L3": 4, "M4": 4, "M5": 6}  # filled subshells
POWELL_B, POWELL_C = 0.9, 0.65  # Bethe's constants for inner shells (Powell)
SILICON_PAIR_ENERGY = 3.76  # eV per electron-hole pair in cooled silicon
SILICON_FANO = 0.115
SILICON_DENSITY = 2.329e3  # kg/m³
MN_K_ALPHA = 5898.75  # eV: where detector resolutions are quoted
LOWEST_LINE = 160.0  # eV: below this the detector's noise peak hides every line
FWHM = 2 * np.sqrt(2 * np.log(2))
CLASSICAL_RADIUS = constants.physical_constants["classical electron radius"][0]  # m


@dataclass(frozen=True)
class Line:
    """One emission line of ``element``: its Siegbahn ``name``, ``energy`` (eV), the ``shell`` it
    fills and ``photons``: photons emitted per incident electron per atom per m⁻² of beam density,
    i.e. the line's X-ray production cross-section (m²)."""

    element: str
    name: str
    energy: float
    shell: str
    photons: float


def ionization_cross_section(edge: float, electrons: int, beam_energy: float) -> float:
    """Bethe's cross-section (m²) for ionising a shell of binding energy ``edge`` (eV) holding
    ``electrons`` electrons by an electron of kinetic energy ``beam_energy`` (eV), with the relativistic
    terms: ``pi e⁴ n b / (E_c T) [ln(c T / E_c) - ln(1 - beta²) - beta²]``, ``T = m v² / 2``."""
    gamma = 1.0 + beam_energy / ELECTRON_REST_ENERGY
    beta2 = 1.0 - 1.0 / gamma**2
    t = ELECTRON_REST_ENERGY * beta2 / 2.0
    if beam_energy <= edge:
        return 0.0
    bracket = np.log(POWELL_C * t / edge) - np.log(1.0 - beta2) - beta2
    return float(BETHE_CONSTANT * electrons * POWELL_B / (edge * t) * max(bracket, 0.0))


@lru_cache(maxsize=512)
def emission_lines(element: str, beam_energy: float) -> tuple[Line, ...]:
    """Every line of ``element`` above :data:`LOWEST_LINE` that a beam of ``beam_energy`` (eV) excites."""
    lines = []
    edges = xraydb.xray_edges(element)
    for shell, electrons in SHELL_ELECTRONS.items():
        edge = edges.get(shell)
        if edge is None or edge.fyield <= 0 or edge.energy >= beam_energy:
            continue
        sigma = ionization_cross_section(edge.energy, electrons, beam_energy) * edge.fyield
        for name, line in xraydb.xray_lines(element, shell).items():
            if line.energy >= LOWEST_LINE and line.intensity > 0:
                lines.append(Line(element, name, float(line.energy), shell, sigma * float(line.intensity)))
    return tuple(lines)


def bremsstrahlung(atomic_number: int, photon_energy: np.ndarray, beam_energy: float) -> np.ndarray:
    """Photons per eV (m²/eV) an atom emits at ``photon_energy`` (eV) per incident electron per m⁻²:
    ``dsigma/dk = (16/3) alpha r_e² Z(Z+1) / (k p0²) ln((p0 + p) / (p0 - p))`` with momenta in m c
    before and after the emission (zero beyond ``beam_energy``)."""
    k = np.asarray(photon_energy, dtype=np.float64)
    m = ELECTRON_REST_ENERGY

    def momentum(kinetic: np.ndarray | float) -> np.ndarray:
        kinetic = np.maximum(kinetic, 0.0)
        return np.sqrt(kinetic * (kinetic + 2 * m)) / m

    p0, p = momentum(beam_energy), momentum(beam_energy - k)
    z = float(atomic_number)
    with np.errstate(divide="ignore", invalid="ignore"):
        log = np.log((p0 + p) / (p0 - p))
        value = (16.0 / 3.0) * constants.alpha * CLASSICAL_RADIUS**2 * z * (z + 1) / (k * p0**2) * log
    return np.where((k > 0) & (k < beam_energy), value, 0.0)


def detector_efficiency(energy: np.ndarray, thickness: float, dead_layer: float) -> np.ndarray:
    """Fraction of photons of ``energy`` (eV) that a silicon crystal of ``thickness`` (m) behind a dead
    layer of ``dead_layer`` (m) absorbs in its active volume (a windowless detector)."""
    e = np.clip(np.asarray(energy, dtype=np.float64), LOWEST_LINE, 4e5)
    mu = np.asarray(xraydb.mu_elam("Si", e)) * 0.1 * SILICON_DENSITY  # cm²/g -> 1/m
    return np.exp(-mu * dead_layer) * (1.0 - np.exp(-mu * thickness))


def resolution(energy: np.ndarray | float, noise: float) -> np.ndarray:
    """FWHM (eV) of a line at ``energy`` (eV): Fano statistics of silicon plus the electronics'
    ``noise`` (eV FWHM), ``sqrt(noise² + 2.355² epsilon F E)``."""
    return np.sqrt(noise**2 + FWHM**2 * SILICON_PAIR_ENERGY * SILICON_FANO * np.asarray(energy, dtype=float))


def channel_energies(channels: int, dispersion: float, offset: float) -> np.ndarray:
    """Centre energy (eV) of each channel: ``offset + i * dispersion``."""
    return offset + dispersion * np.arange(channels)


def spectrum_per_atom(element: str, atomic_number: int, beam_energy: float, channels: int, dispersion: float,
                      offset: float, noise: float, thickness: float, dead_layer: float) -> np.ndarray:
    """Expected counts per channel (float64) per incident electron per atom per m⁻² of beam density and
    per steradian of detector, for one atom of ``element``: its lines as Gaussians of the detector's
    resolution integrated over each channel, plus its bremsstrahlung, both times the efficiency."""
    centres = channel_energies(channels, dispersion, offset)
    edges = np.append(centres - dispersion / 2, centres[-1] + dispersion / 2)
    counts = bremsstrahlung(atomic_number, centres, beam_energy) * dispersion / (4 * np.pi)
    counts *= detector_efficiency(centres, thickness, dead_layer)
    for line in emission_lines(element, float(beam_energy)):
        sigma = float(resolution(line.energy, noise)) / FWHM
        cumulative = special.ndtr((edges - line.energy) / sigma)
        efficiency = float(detector_efficiency(np.array([line.energy]), thickness, dead_layer)[0])
        counts += np.diff(cumulative) * line.photons * efficiency / (4 * np.pi)
    return counts


def paralyzable_throughput(rate: np.ndarray | float, dead_time: float) -> np.ndarray:
    """Fraction of events a pulse processor with ``dead_time`` (s) records at input ``rate`` (1/s):
    ``exp(-rate dead_time)`` (an event arriving while the last is being shaped is lost, and extends it)."""
    return np.exp(-np.asarray(rate, dtype=float) * dead_time)
