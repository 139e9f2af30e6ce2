"""The objective lens: same transfer as abTEM's CTF, and Thon rings where theory puts them."""

from __future__ import annotations

import abtem
import numpy as np
import pytest
from abtem.core.energy import energy2wavelength
from ase import Atoms
from scipy.constants import angstrom as ANGSTROM  # m: the unit of ASE and abTEM, defined outside the twin

from twin.physics import tem
from twin.physics.ctf import (
    Aberrations,
    Coherence,
    electron_wavelength,
    scherzer_defocus,
    transfer_function,
)


@pytest.mark.parametrize("energy", [60e3, 80e3, 200e3, 300e3])
def test_wavelength_matches_abtem(energy):
    assert electron_wavelength(energy) == pytest.approx(energy2wavelength(energy) * ANGSTROM, rel=1e-6)


def test_transfer_function_equals_abtems_ctf():
    n, sampling, energy = 96, 0.1 * ANGSTROM, 80e3
    ab = Aberrations(C10=-12e-9, C12=3e-9, phi12=0.4, C30=1.2e-6)
    coherence = Coherence(focal_spread=3e-9, angular_spread=0.3e-3)
    ours = transfer_function((n, n), sampling, energy, ab, coherence)

    ctf = abtem.CTF(
        energy=energy,
        C10=ab.C10 / ANGSTROM, C12=ab.C12 / ANGSTROM, phi12=ab.phi12, C30=ab.C30 / ANGSTROM,
        focal_spread=coherence.focal_spread / ANGSTROM,
        angular_spread=coherence.angular_spread * 1e3,
    )
    delta = np.zeros((n, n), dtype=np.complex64)
    delta[0, 0] = 1.0  # its spectrum is 1 everywhere, so the output spectrum is the CTF
    waves = abtem.Waves(delta, energy=energy, sampling=sampling / ANGSTROM)
    theirs = np.fft.fft2(waves.apply_ctf(ctf).compute().array).T  # abTEM indexes [x, y]
    assert np.abs(ours - theirs).max() < 2e-4


@pytest.mark.slow
def test_thon_ring_minima_sit_where_chi_is_a_multiple_of_pi():
    """Amorphous film at large underfocus: the diffractogram's zeros are at k_n = sqrt(n / (lambda |C10|))."""
    energy, defocus, size, fov = 80e3, -150e-9, 512, 10e-9
    rng = np.random.default_rng(0)
    grid = tem.simulation_grid(fov, size)
    side = grid.n * grid.step / ANGSTROM
    count = int(0.5 * side**2)  # ~0.5 C atoms per Å² in projection: a thin carbon film
    film = Atoms(f"C{count}", positions=np.column_stack([rng.uniform(0, side, (count, 2)),
                                                         rng.uniform(0, 6.0, count)]))
    spectrum = tem.spectrum(tem.exit_wave(film, grid, energy))
    lens = transfer_function((grid.n, grid.n), grid.step, energy, Aberrations(C10=defocus), Coherence())
    image = tem.hrtem_intensity(spectrum, lens, grid)

    power = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean()))) ** 2
    k = np.hypot(*np.meshgrid(*(np.fft.fftshift(np.fft.fftfreq(size, fov / size)),) * 2))
    dk = 1 / fov
    bins = np.arange(0, k.max(), dk)
    radial = np.bincount(np.digitize(k.ravel(), bins), power.ravel()) / np.maximum(
        np.bincount(np.digitize(k.ravel(), bins)), 1
    )
    centres = np.concatenate([[0.0], bins[:-1] + dk / 2, [bins[-1] + dk / 2]])
    wavelength = electron_wavelength(energy)
    for n in (1, 2, 3, 4):
        expected, lo, hi = (np.sqrt(m / (wavelength * abs(defocus))) for m in (n, n - 0.5, n + 0.5))
        window = (centres > lo) & (centres < hi)  # between the neighbouring maxima
        found = centres[window][np.argmin(radial[window])]
        assert abs(found - expected) <= 1.5 * dk, (n, found, expected)


def test_scherzer_defocus_is_underfocus_for_positive_cs():
    cs, energy = 1e-6, 80e3
    expected = -np.sqrt(4 / 3 * cs * electron_wavelength(energy))
    assert scherzer_defocus(cs, energy) == pytest.approx(expected)
    assert scherzer_defocus(cs, energy) < 0
