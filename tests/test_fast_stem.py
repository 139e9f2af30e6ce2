"""The fast exact STEM scan (twin.physics.fast_stem) against abTEM's own probe scan, the reference.

Given abTEM's potential, the fast scan (probe, slices, propagation, detector) equals abTEM's scan on every
built-in sample (mean relative error < 5e-5 here; asserted 1e-3). With its own potential
(twin.physics.fast_multislice: exact structure factors) its HAADF signals are 13-24 % larger than abTEM's on
the same grid (BF within 0.1 %): abTEM deposits atoms bilinearly, which
damps the potential's power by ``sinc^4(k step)`` (see tests/test_fast_multislice.py), 0.5-0.8 at the
angles a HAADF detector sees; abTEM on a grid twice as fine moves most of the way to the fast result
(graphene, 8 x 8 positions: abTEM 21 % below the fast engine on the twin's grid, 5 % below on the finer
one, the fast engine itself 1 % apart on the two grids). Probes run through a window of their reach, not
the whole cell: checked here against the whole cell, and with physics the code under test does not know
(a lone atom's peak, the beam's conservation, vacuum).
"""

from __future__ import annotations

import abtem
import numpy as np
import pytest
from abtem.core.energy import energy2sigma
from ase import Atoms
from scipy.constants import angstrom as ANGSTROM  # m: ASE's and abTEM's unit, defined outside the twin

from twin.digital_twin import DigitalTwin
from twin.physics import fast_stem, tem
from twin.physics.ctf import Aberrations, electron_wavelength
from twin.sample import SAMPLES, Window, build_sample

ENERGY, ALPHA = 80e3, 0.03
HAADF, BF = (0.08, 0.2), (0.0, 0.011)
LENS = Aberrations(C10=-2e-9, C30=1e-6)
CENTRES = {"polycrystalline-graphene": (0.1e-6, 0.05e-6)}  # grains only near the origin
CENTRE = (1e-6, 0.0)  # on every other sample (on the holey carbon film of graphene-on-holey-carbon)
# 8 x 8 probes 0.6 Å apart, 6 pixels of padding; 9 grid points a pixel put 200 mrad inside the band
GRID = tem.SimulationGrid(size=8, pad=6, sampling=0.6 * ANGSTROM, oversampling=9)
# mean relative error and correlation, fast vs abTEM with abTEM's potential (HAADF, BF)
TOLERANCE, CORRELATION = 1e-3, 0.9999


def _atoms(name: str, grid: tem.SimulationGrid = GRID) -> Atoms:
    """The sample's atoms over the grid's cell, in Å from its corner."""
    side = grid.size * grid.sampling
    return build_sample(name, 0).atoms_in_window(
        Window.around(*CENTRES.get(name, CENTRE), side, side).grown(grid.padding))


def _abtem_scan(atoms: Atoms, grid: tem.SimulationGrid) -> tuple[np.ndarray, np.ndarray, float]:
    """abTEM's HAADF and BF scans of the grid's pixel centres, its potential (V Å, ``[slice, y, x]``)
    and its slices' thickness (m)."""
    potential = tem.potential(tem.simulation_cell(atoms, grid), grid).build(lazy=False)
    centres = (grid.pad + np.arange(grid.size) + 0.5) * grid.sampling - grid.step / 2  # abTEM's frame
    x, y = np.meshgrid(centres, centres)
    scan = abtem.CustomScan(np.column_stack([x.ravel(), y.ravel()]) / ANGSTROM)
    probe = abtem.Probe(semiangle_cutoff=ALPHA * 1e3, energy=ENERGY, soft=False, C10=LENS.C10 / ANGSTROM,
                        C30=LENS.C30 / ANGSTROM)
    detectors = [abtem.AnnularDetector(inner * 1e3, outer * 1e3) for inner, outer in (HAADF, BF)]
    measured = probe.scan(potential, scan=scan, detectors=detectors, lazy=False)
    signals = np.stack([np.asarray(m.array, dtype=float).reshape(grid.size, grid.size) for m in measured])
    return signals, np.asarray(potential.array).transpose(0, 2, 1), potential.slice_thickness[0] * ANGSTROM


def _fast_scan(transmission: np.ndarray, thickness: float, grid: tem.SimulationGrid = GRID,
               annuli=(HAADF, BF), lens: Aberrations = LENS, window: int | None = None) -> np.ndarray:
    return fast_stem.annular_scan(transmission, thickness, grid, (grid.size, grid.size), ENERGY, ALPHA, lens,
                                  list(annuli), window)


def _mean_relative_error(mine: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.mean(np.abs(mine - theirs) / theirs))


@pytest.mark.parametrize("name", SAMPLES)
def test_the_scan_equals_abtems(name):
    atoms = _atoms(name)
    theirs, potential, thickness = _abtem_scan(atoms, GRID)
    phases = potential * (energy2sigma(ENERGY))  # rad: abTEM's potential (V Å) times its sigma (1 / (V Å))
    mine = _fast_scan(fast_stem.band_limited_transmissions(phases, len(phases), GRID), thickness)
    for signal, reference in zip(mine, theirs, strict=True):
        assert reference.std() > 1e-3 * reference.mean()  # contrast: the sample is in view
        assert _mean_relative_error(signal, reference) < TOLERANCE
        assert np.corrcoef(signal.ravel(), reference.ravel())[0, 1] > CORRELATION
    # its own potential: the same image, brighter at high angles where abTEM's deposition damps it
    haadf = _fast_scan(*fast_stem.transmissions(atoms.numbers, atoms.positions, GRID, ENERGY))[0]
    assert np.corrcoef(haadf.ravel(), theirs[0].ravel())[0, 1] > 0.99
    assert 1.05 < haadf.mean() / theirs[0].mean() < 1.35


def test_a_window_of_the_probe_reach_gives_the_whole_cell_result():
    """Graphene with a Si dopant, 12 x 12 probes 2 Å apart in a 56 Å cell; detectors up to 80 mrad."""
    sample = build_sample("graphene-defects", 0)
    grid = tem.SimulationGrid(size=12, pad=8, sampling=2 * ANGSTROM, oversampling=12)
    silicon = next(d for d in sample.defects_in_window(Window(0.0, -5e-9, 500e-9, 5e-9)) if d.species == "Si")
    side = grid.size * grid.sampling
    atoms = sample.atoms_in_window(Window.around(silicon.x, silicon.y, side, side).grown(grid.padding))
    transmission, thickness = fast_stem.transmissions(atoms.numbers, atoms.positions, grid, ENERGY)
    annuli = [(0.035, 0.08), BF]
    window = fast_stem.window_points(grid, ENERGY, ALPHA, LENS, thickness * len(transmission), 0.08)
    assert window * grid.step < 0.6 * grid.n * grid.step  # a third of the cell's area
    whole = _fast_scan(transmission, thickness, grid, annuli, window=grid.n)
    cut = _fast_scan(transmission, thickness, grid, annuli, window=window)
    for part, full, tolerance in zip(cut, whole, (0.01, 0.05), strict=True):
        assert np.mean(np.abs(part - full)) < tolerance * full.mean()
        assert np.corrcoef(part.ravel(), full.ravel())[0, 1] > 0.99


def test_a_lone_atom_shines_at_its_position_and_the_beam_is_conserved():
    """A Si atom a third of a pixel off the centre of pixel (5, 2): the HAADF peak there; all the beam
    inside the band where it cannot scatter out of it; vacuum far away (BF the whole beam)."""
    grid = tem.SimulationGrid(size=8, pad=6, sampling=0.6 * ANGSTROM, oversampling=9)
    at = (grid.pad + np.array([2.0, 5.0]) + 0.5 + 1 / 3) * grid.sampling / ANGSTROM
    transmission, thickness = fast_stem.transmissions(np.array([14]), np.array([[*at, 0.0]]), grid, ENERGY)
    band = 2 / 3 * electron_wavelength(ENERGY) / (2 * grid.step) * 0.97  # inside the taper
    haadf, everything, disc = _fast_scan(transmission, thickness, grid, (HAADF, (0.0, band), (0.0, ALPHA)),
                                         Aberrations(C30=1e-6))
    assert np.unravel_index(np.argmax(haadf), haadf.shape) == (5, 2)
    assert haadf.max() > 20 * haadf.min()
    np.testing.assert_allclose(everything, 1.0, atol=2e-3)
    assert disc[5, 2] < 0.995 < disc[0, 7]  # the atom scatters out of the bright-field disc
    vacuum = _fast_scan(np.ones_like(transmission), thickness, grid, (HAADF, (0.0, 1.01 * ALPHA)))
    np.testing.assert_allclose(vacuum[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(vacuum[1], 1.0, rtol=1e-5)


def test_annuli_outside_the_band_are_refused():
    transmission = np.ones((1, GRID.n, GRID.n), dtype=np.complex64)
    with pytest.raises(ValueError, match=r"annulus \(0.08, 0.3\) rad: need 0 <= inner < outer <= 0.2"):
        _fast_scan(transmission, 1e-10, annuli=[(0.08, 0.3)])


def test_the_engine_is_chosen_at_start_recorded_and_a_new_focus_reuses_the_transmissions():
    """Exact ADF 16² scans over 0.5 nm of graphene: the fast engine by default, abTEM's own scan on request,
    each image naming its engine; a new focus on the same scan changes the image, and runs the probes alone
    (the cache serves the transmission functions) unless the probe grows beyond the cached cell."""
    images = {}
    for engine in ("fast", "abtem"):
        tem = DigitalTwin.build(tem_engine=engine).tem
        tem.set("twin.stage_errors", False)
        tem.set("twin.drift", False)
        tem.set("optics.optical_mode", "Stem")
        tem.set("optics.scan_field_of_view", 0.5e-9)
        image = tem.acquire_stem_images(["ADF"], 16, 1e-2, mode="exact")[0]
        assert image["metadata"]["twin"]["tem_engine"] == engine
        images[engine] = image["data"].astype(float)
        if engine == "fast":
            focus = tem.settings.snapshot()["optics.focus"]
            tem.set("optics.focus", focus + 5e-9)  # a wider probe: a cell padded more
            defocused = tem.acquire_stem_images(["ADF"], 16, 1e-2, mode="exact")[0]["data"].astype(float)
            assert abs(defocused.mean() - images[engine].mean()) > 0.05 * images[engine].mean()
            hits = tem.stem.exit_waves.hits
            tem.set("optics.focus", focus)
            tem.acquire_stem_images(["ADF"], 16, 1e-2, mode="exact")
            assert tem.stem.exit_waves.hits == hits + 1
    assert 1.0 < images["fast"].mean() / images["abtem"].mean() < 1.4  # abTEM's deposition (see above)
