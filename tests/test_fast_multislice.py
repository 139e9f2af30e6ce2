"""The fast HRTEM engine (twin.physics.fast_multislice) against abTEM, the reference.

Its parts are checked against abTEM's own functions (scattering factors, interaction parameter, aperture,
propagator, slicing) and its structure factors against sums over the atoms done here. Its exit waves and
images are compared with abTEM's on the same atoms and grid for every built-in sample.

The tolerances: abTEM deposits each atom bilinearly on its four nearest grid points and divides the
spectrum by ``sin(x) / x`` of ``x = |k| step`` (cycles per point, not radians), which leaves the potential's
power damped by about ``sinc^4(k step)``: 0.8 at a sixth of the sampling frequency, 0.5 at the band's edge
(a third). The fast engine's structure factors are exact there, so its images carry ~5 % more power in the
lattice frequencies, and its exit-wave intensities differ from abTEM's by up to 1.4 % (WS2, where tungsten's
sharp cores hold the most power at high frequencies), its images (through the twin's lens, whose
information limit cuts the highest frequencies) by at most 0.5 %. That the difference is abTEM's: on a grid
4 times finer abTEM's damping all but vanishes, and within the band it converges to the fast engine's
result (``test_abtem_on_a_finer_grid_converges_to_the_fast_engine``).
"""

from __future__ import annotations

import abtem
import numpy as np
import pytest
import scipy.fft
from abtem.antialias import antialias_aperture
from abtem.core.energy import energy2sigma
from abtem.multislice import _fresnel_propagator_array
from scipy.constants import angstrom as ANGSTROM  # m: ASE's and abTEM's unit, defined outside the twin

from twin.digital_twin import DigitalTwin
from twin.instruments.tem import TemHardware
from twin.instruments.tem.imaging import HrtemSimulator, exit_wave_spectrum
from twin.physics import fast_multislice as fast
from twin.physics import tem
from twin.physics.ctf import Aberrations, electron_wavelength, scherzer_defocus
from twin.sample import SAMPLES, build_sample

ENERGY, CS = 80e3, 1e-6
FIELD_OF_VIEW, SIZE = 3.75e-9, 256  # the default 1024² view's sampling (0.146 Å), a quarter of its field
CENTRES = {"polycrystalline-graphene": (0.1e-6, 0.05e-6)}  # grains only near the origin
CENTRE = (1e-6, 0.0)  # on every other sample (on the holey carbon film of graphene-on-holey-carbon)
SPECIES = ("H", "B", "C", "N", "O", "Si", "S", "Mo", "W", "Pt")

# mean relative error of the exit wave's intensity and of the image's, fast vs abTEM (see the docstring)
EXIT_TOLERANCE, IMAGE_TOLERANCE = 0.02, 0.01
POWER_RATIO = (0.95, 1.15)  # image power, fast / abTEM, in each band of spatial frequency


@pytest.mark.parametrize("symbol", SPECIES)
def test_scattering_factors_are_abtems(symbol):
    k = np.linspace(0.0, 8.0, 81)  # 1/Å
    theirs = abtem.parametrizations.LobatoParametrization().projected_scattering_factor(symbol)(
        (k**2).astype(np.float32))  # V Å³
    mine = fast.projected_scattering_factor(k**2 / ANGSTROM**2, symbol) / ANGSTROM**3
    np.testing.assert_allclose(mine, theirs, rtol=1e-4)  # abTEM sums in float32, with cancellations


@pytest.mark.parametrize("energy", [30e3, 80e3, 300e3])
def test_the_interaction_parameter_is_abtems(energy):
    assert fast.interaction_parameter(energy) * ANGSTROM == pytest.approx(energy2sigma(energy), rel=1e-7)


@pytest.mark.parametrize("n", [96, 257, 384])
def test_aperture_and_propagator_are_abtems(n):
    step, thickness = 0.146 * ANGSTROM, 1.62 * ANGSTROM
    aperture = antialias_aperture((n, n), (step / ANGSTROM,) * 2, np)
    np.testing.assert_allclose(fast.antialias_aperture(n, step), aperture, atol=1e-5)  # abTEM's float32
    theirs = _fresnel_propagator_array(thickness / ANGSTROM, (n, n), (step / ANGSTROM,) * 2, ENERGY, "cpu")
    np.testing.assert_allclose(fast.propagator(n, step, ENERGY, thickness), theirs * aperture, atol=1e-5)
    np.testing.assert_allclose(fast.propagator(n, step, ENERGY, thickness, aperture=False), theirs, atol=2e-6)


def _setup(name: str, size: int = SIZE, field_of_view: float = FIELD_OF_VIEW):
    """The sample, the twin's view of ``size``² pixels over ``field_of_view`` and the atoms it simulates."""
    sample = build_sample(name, 0)
    simulator = HrtemSimulator(sample, TemHardware())
    aberrations = Aberrations(C10=scherzer_defocus(CS, ENERGY), C30=CS)
    view = simulator.view(CENTRES.get(name, CENTRE), field_of_view, size, ENERGY, aberrations)
    atoms = simulator.atoms(view.window.grown(view.grid.padding), (0.0, 0.0))
    return sample, view, atoms


def test_slices_are_abtems():
    """Rippled graphene with buckled Si dopants: two or three slices, each atom where abTEM puts it."""
    _, view, atoms = _setup("graphene-defects", 512, 2 * FIELD_OF_VIEW)
    grid = view.grid
    sliced = tem.potential(tem.simulation_cell(atoms, grid), grid).get_sliced_atoms()
    index, count, thickness = fast.slices_of(atoms.positions[:, 2])
    assert count == len(sliced.slice_thickness) > 1
    assert thickness / ANGSTROM == pytest.approx(sliced.slice_thickness[0], rel=1e-9)
    for j in range(count):
        theirs = sliced.get_atoms_in_slices(j)
        assert sorted(atoms.numbers[index == j]) == sorted(theirs.numbers)
        assert np.sort(atoms.positions[index == j, 0]) == pytest.approx(np.sort(theirs.positions[:, 0]) + (
            grid.step / 2 / ANGSTROM), abs=1e-6)  # the simulation cell moved them half a grid step


def _structure_factor(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """``sum exp(-2 pi i (kx u + ky v) / n)`` over the atoms, on the full spectrum (complex128, [ky, kx]),
    at the Nyquist frequency (even ``n``) the mean of its two signs."""
    k = np.fft.fftfreq(n, 1.0 / n)
    along_y, along_x = np.exp(-2j * np.pi / n * np.outer(k, v)), np.exp(-2j * np.pi / n * np.outer(u, k))
    if n % 2 == 0:
        along_y[n // 2], along_x[:, n // 2] = np.cos(np.pi * v), np.cos(np.pi * u)
    return along_y @ along_x


def test_structure_factors_are_exact_within_the_band():
    """Spread atoms, one FFT, the kernel divided out: within 1e-5 of the atom-by-atom sum (per atom)
    inside the band (a third of the sampling frequency), 1e-2 up to 0.4 of it; the direct sum exact."""
    n, atoms = 160, 400
    rng = np.random.default_rng(3)
    u, v = rng.uniform(-5.0, n + 5.0, atoms), rng.uniform(0.0, n, atoms)  # some beyond the periodic edge
    exact = _structure_factor(u, v, n)
    exact[n // 2], exact[:, n // 2] = 0.0, 0.0  # the real spread array's FFT holds both signs there
    kernel = fast.spreading_kernel_transform(np.fft.fftfreq(n))
    spread = np.fft.fft2(fast.spread(u, v, n)) / np.outer(kernel, kernel)
    xi = np.abs(np.fft.fftfreq(n))
    widest = np.maximum(xi[:, None], xi[None, :])
    error = np.abs(spread - exact) / atoms
    assert error[widest <= 1 / 3].max() < 1e-5
    assert error[widest <= 0.4].max() < 1e-2
    half = fast.direct_structure_factor(u[:7], v[:7], n)
    np.testing.assert_allclose(half, _structure_factor(u[:7], v[:7], n)[:, : n // 2 + 1], atol=2e-5)


def _images(name: str):
    """Exit-wave intensities and images (the twin's lens, Scherzer focus) by abTEM and by the fast engine."""
    sample, view, _ = _setup(name)
    out = {}
    for engine in ("abtem", "fast"):
        simulator = HrtemSimulator(sample, TemHardware(tem_engine=engine))
        image = simulator.intensity(view)
        (spectrum,) = simulator.exit_waves._entries.values()
        out[engine] = np.abs(scipy.fft.ifft2(spectrum)) ** 2, image
    return out["abtem"], out["fast"], view


def _radial_power(image: np.ndarray, bands: int = 6) -> np.ndarray:
    """The image's power (mean removed) in ``bands`` rings of spatial frequency up to Nyquist."""
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(image.shape[1]), np.fft.fftfreq(image.shape[0])))
    edges = np.linspace(0.0, 0.5, bands + 1)
    return np.array([power[(k >= lo) & (k < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:], strict=True)])


@pytest.mark.parametrize("name", SAMPLES)
def test_exit_waves_and_images_equal_abtems(name):
    (exit_abtem, image_abtem), (exit_fast, image_fast), view = _images(name)
    assert image_abtem.std() > 0.01  # the sample is in view, with contrast
    assert np.mean(np.abs(exit_fast - exit_abtem) / exit_abtem) < EXIT_TOLERANCE
    assert np.mean(np.abs(image_fast - image_abtem) / image_abtem) < IMAGE_TOLERANCE
    ratio = _radial_power(image_fast) / _radial_power(image_abtem)
    assert POWER_RATIO[0] < ratio.min() and ratio.max() < POWER_RATIO[1]


def _band_intensity(spectrum: np.ndarray, n: int, step: float) -> np.ndarray:
    """The intensity on an ``n``² grid of ``step`` of the part of a (possibly finer) grid's spectrum
    inside that grid's band."""
    fine = spectrum.shape[0]
    index = np.fft.fftfreq(n, 1.0 / n).astype(int) % fine
    cropped = spectrum[np.ix_(index, index)] * (n / fine) ** 2 * fast.antialias_aperture(n, step)
    return np.abs(np.fft.ifft2(cropped)) ** 2


@pytest.mark.slow
@pytest.mark.parametrize("name", ["graphene-defects", "ws2-defects"])
def test_abtem_on_a_finer_grid_converges_to_the_fast_engine(name):
    """abTEM 4 times finer (its deposition error a 16th), cropped to the band of the twin's grid, is
    closer to the fast engine on the twin's grid than abTEM on the twin's grid is."""
    _, view, atoms = _setup(name, 128, FIELD_OF_VIEW / 2)
    grid, m = view.grid, 4
    finer = tem.SimulationGrid(size=grid.size * m, pad=grid.pad * m, sampling=grid.sampling / m)
    moved = atoms.copy()  # the fine grid's point m i + (m - 1) / 2 on the coarse grid's point i
    moved.positions[:, :2] -= (m - 1) / 2 * finer.step / ANGSTROM
    reference = _band_intensity(exit_wave_spectrum(moved, finer, ENERGY, "abtem"), grid.n, grid.step)
    abtem_error, fast_error = (
        np.mean(np.abs(_band_intensity(exit_wave_spectrum(atoms, grid, ENERGY, e), grid.n, grid.step)
                       - reference) / reference) for e in ("abtem", "fast"))
    assert fast_error < 0.8 * abtem_error


def test_the_engine_is_chosen_at_start_and_recorded():
    for engine in ("fast", "abtem"):
        twin = DigitalTwin.build(tem_engine=engine)
        frame = twin.tem.acquire_camera_image("BM-Ceta", 256, 0.1)  # 0.6 Å pixels: a multislice
        assert frame["metadata"]["twin"]["tem_engine"] == engine
    with pytest.raises(ValueError, match="tem_engine"):
        DigitalTwin.build(tem_engine="magic")


def test_diffraction_patterns_equal_abtems():
    """Selected-area diffraction of graphene (256² camera pixels of 1.95 mrad): the same direct beam and
    first-order spots (at 0.47 /Å, where both engines' potentials are exact) within 0.5 %."""
    sample = build_sample("graphene-defects", 0)
    patterns = [HrtemSimulator(sample, TemHardware(tem_engine=engine)).diffraction_pattern(
        CENTRE, 256, 1.95e-3, ENERGY)[0] for engine in ("abtem", "fast")]
    centre = 128
    rows, columns = np.indices(patterns[0].shape)
    radius = np.hypot(rows - centre, columns - centre) * 1.95e-3 / electron_wavelength(ENERGY)  # 1/m
    first_order = np.abs(radius - 1 / (2.13 * ANGSTROM)) < 0.1 / ANGSTROM
    for region in (radius < 0.05 / ANGSTROM, first_order):
        theirs, mine = (p[region].sum() for p in patterns)
        assert mine == pytest.approx(theirs, rel=5e-3)
    assert patterns[1][first_order].sum() > 3e-4  # the spots are there (0.08 % of the beam)


def test_twin_serve_and_run_take_the_engine():
    from twin.cli import parser

    assert parser().parse_args(["serve"]).tem_engine == "fast"
    assert parser().parse_args(["serve", "--tem-engine", "abtem"]).tem_engine == "abtem"
    assert parser().parse_args(["run", "--serve", "--tem-engine", "abtem", "x.py"]).tem_engine == "abtem"
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--tem-engine", "magic"])


def test_stem_bright_field_equals_abtems():
    """Scanned bright field (by reciprocity: the plane-wave exit wave seen through the probe's aperture)
    of graphene with defects at 80 kV, 30 mrad, a 0-15 mrad detector, 5 nm underfocus: the same image
    through either engine's exit wave, within 0.5 % per pixel on average (the image tolerance above) and
    0.99 correlated in its contrast (measured 0.998)."""
    from twin.physics import stem

    _, view, atoms = _setup("graphene-defects", 64, 2e-9)
    grid, lens = view.grid, Aberrations(C10=-5e-9, C30=CS)
    images = [stem.bright_field_image(exit_wave_spectrum(atoms, grid, ENERGY, engine), grid.step, ENERGY,
                                      30e-3, lens, 0.0, 15e-3) for engine in ("abtem", "fast")]
    assert images[0].std() > 1e-3  # contrast to compare
    assert np.mean(np.abs(images[1] - images[0]) / images[0]) < 5e-3  # measured 0.26 %
    assert np.corrcoef(images[0].ravel(), images[1].ravel())[0, 1] > 0.99
