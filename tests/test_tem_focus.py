"""Where the TEM's zero defocus lies: at the specimen's mean plane.

The reference is built outside the twin's imaging path: each layer's transmission function from its
projected potential (for the abTEM engine abTEM's own; for the fast engine the exact one, abTEM's Lobato
scattering factors times structure factors summed atom by atom), placed at the layer's true height,
free-space propagation between layers and back to the layers' mean plane, then the lens's chi(k) with the
displayed defocus (the transfer function is tested equal to abTEM's CTF in test_ctf.py). A focus series of
the twin's images must match it with no defocus offset; before this was fixed, the exit surface was taken
as the focal plane (an offset of 0.1–0.5 nm, as found by a focus series of contrast reversals).
"""

from __future__ import annotations

import abtem
import numpy as np
import pytest
from abtem.core.energy import energy2sigma
from scipy.constants import angstrom as ANGSTROM  # m: the unit of ASE and abTEM, defined outside the twin

from twin.instruments.clock import Clock
from twin.instruments.tem import TemHardware, TemInstrument
from twin.physics import tem as tem_physics
from twin.physics.ctf import Aberrations, electron_wavelength, transfer_function
from twin.sample import Window
from twin.sample.recipe import build, from_dict

ENERGY, CS, NM = 80e3, 1e-6, 1e-9
BERNAL_SHIFT = ["1.23 A", f"{2.46 * np.sqrt(3) / 6:.6f} A"]


def _flat(layers: list[dict]) -> object:
    return build(from_dict({"name": "flat", "rotation": "0 deg", "layers": layers}), seed=0)


def _fresnel(n: int, step: float, distance: float) -> np.ndarray:
    k = np.fft.fftfreq(n, step)
    return np.exp(-1j * np.pi * electron_wavelength(ENERGY) * distance * (k[:, None] ** 2 + k[None, :] ** 2))


def _exact_projected(cell, grid) -> np.ndarray:
    """The projected potential (eV/e Å, ``[y, x]``) of the atoms of a simulation cell on the grid's points:
    abTEM's Lobato scattering factors times each species' structure factor, summed atom by atom."""
    parametrization = abtem.parametrizations.LobatoParametrization()
    sampling = grid.step / ANGSTROM
    k = np.fft.fftfreq(grid.n, sampling)
    spectrum = np.zeros((grid.n, grid.n), dtype=complex)
    for number in np.unique(cell.numbers):
        positions = cell.positions[cell.numbers == number]
        ex = np.exp(-2j * np.pi * np.outer(positions[:, 0], k))
        ey = np.exp(-2j * np.pi * np.outer(k, positions[:, 1]))
        form = parametrization.projected_scattering_factor(cell[cell.numbers == number][0].symbol)
        spectrum += form((k[:, None] ** 2 + k[None, :] ** 2).astype(np.float32)) * (ey @ ex)
    return np.fft.ifft2(spectrum).real / sampling**2


def _reference_spectrum(sample, grid, side: float, engine: str) -> np.ndarray:
    """The specimen's wave at its layers' mean plane: transmission functions of each layer at its height,
    free flight between them (beam along +z), then back to the mean plane."""
    atoms = sample.atoms_in_window(Window(0.0, 0.0, side, side))
    wave, height = np.ones((grid.n, grid.n), dtype=complex), None
    for layer in range(len(sample.layers)):
        mine = atoms[atoms.arrays["site"][:, 0] == layer]
        z = float(np.mean(mine.positions[:, 2]))
        cell = tem_physics.simulation_cell(mine, grid)
        if engine == "abtem":
            projected = abtem.Potential(cell, gpts=grid.n, slice_thickness=np.ptp(cell.positions[:, 2]) + 1.0,
                                        projection="infinite", parametrization="lobato").build().compute()
            projected = projected.array.sum(axis=0).T
        else:
            projected = _exact_projected(cell, grid)
        transmission = np.exp(1j * energy2sigma(ENERGY) * projected)
        if height is not None:
            wave = np.fft.ifft2(np.fft.fft2(wave) * _fresnel(grid.n, grid.step, (z - height) * ANGSTROM))
        wave, height = wave * transmission, z
    back = (sample.mean_plane - height) * ANGSTROM
    return np.fft.fft2(wave) * _fresnel(grid.n, grid.step, back)


def _defocus_offset(sample, engine: str, fov: float = 3 * NM, size: int = 96) -> tuple[float, float]:
    """The defocus shift (m) that best matches the twin's focus series (exit waves by ``engine``) to the
    reference's, and how much worse (a factor) a shift 1 Å away from it matches."""
    tem = TemInstrument(sample, Clock(0.0), seed=0, hardware=TemHardware(tem_engine=engine))
    probe = tem.hrtem.view((0.0, 0.0), fov, size, ENERGY, Aberrations(C30=CS))
    grid = probe.grid
    centre = grid.padding + fov / 2  # the padded window starts at the origin: no sub-cell move
    reference = _reference_spectrum(sample, grid, grid.n * grid.step, engine)
    defoci = np.linspace(-6, 6, 5) * NM
    images = [tem.hrtem.intensity(tem.hrtem.view((centre, centre), fov, size, ENERGY,
                                                  Aberrations(C10=d, C30=CS))) for d in defoci]
    coherence = tem.hardware.coherence(ENERGY)
    shifts = np.linspace(-1.5, 1.5, 61) * ANGSTROM

    def misfit(shift: float) -> float:
        total = 0.0
        for defocus, image in zip(defoci, images, strict=True):
            lens = transfer_function((grid.n, grid.n), grid.step, ENERGY,
                                     Aberrations(C10=defocus + shift, C30=CS), coherence)
            expected = tem_physics.hrtem_intensity(reference.astype(np.complex64), lens, grid)
            total += float(np.sum((image - expected) ** 2))
        return total

    misfits = np.array([misfit(s) for s in shifts])
    best = int(np.argmin(misfits))
    neighbours = min(misfits[max(best - 20, 0)], misfits[min(best + 20, 60)])
    return float(shifts[best]), float(neighbours / misfits[best])


@pytest.mark.parametrize("engine", ["fast", "abtem"])
def test_a_monolayers_zero_defocus_is_its_plane(engine):
    """Flat graphene at z = 0: the twin's images equal the reference's at the same displayed defocus."""
    offset, worse_at_1_angstrom = _defocus_offset(_flat([{"material": "graphene"}]), engine)
    assert offset == pytest.approx(0.0, abs=0.1 * ANGSTROM)
    assert worse_at_1_angstrom > 10  # the comparison tells an offset of 1 Å


@pytest.mark.parametrize("engine", ["fast", "abtem"])
def test_a_bilayers_zero_defocus_is_its_mean_plane(engine):
    """AB-stacked bilayer at 0 and 3.35 Å: zero defocus lies at 1.675 Å, between the layers (the
    multislice's 2 Å slices place the layers to a few tenths of an Å)."""
    sample = _flat([{"material": "graphene"}, {"material": "graphene", "z": "3.35 A", "shift": BERNAL_SHIFT}])
    assert sample.mean_plane == pytest.approx(1.675)
    assert _defocus_offset(sample, engine)[0] == pytest.approx(0.0, abs=0.3 * ANGSTROM)
