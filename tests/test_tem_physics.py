"""HRTEM images: lattice where the crystal is, atoms at the right pixel, shot noise from the dose."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy import constants

from clients.tem.structures import AdornedImage
from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.instruments.tem.imaging import exit_wave_spectrum
from twin.physics import damage, tem
from twin.physics.ctf import Aberrations, Coherence, electron_wavelength, scherzer_defocus, transfer_function
from twin.physics.detectors import noise_power_ratio, psf_sigma
from twin.sample import Window, build_sample

ENERGY = 80e3


COHERENT = Coherence()


def _lens(grid, aberrations: Aberrations, coherence: Coherence = COHERENT) -> np.ndarray:
    return transfer_function((grid.n, grid.n), grid.step, ENERGY, aberrations, coherence)


def _ideal_image(
    sample, window: Window, size: int, defocus: float, padding: float = tem.PAD_MIN
) -> np.ndarray:
    grid = tem.simulation_grid(window.width, size, padding)
    atoms = sample.atoms_in_window(window.grown(grid.padding))
    spectrum = tem.spectrum(tem.exit_wave(atoms, grid, ENERGY))
    return tem.hrtem_intensity(spectrum, _lens(grid, Aberrations(C10=defocus, C30=1e-6)), grid)


def test_graphene_lattice_spacing_and_orientation_from_the_fft():
    sample = build_sample("graphene", 4)
    fov, size = 6e-9, 512
    image = _ideal_image(sample, Window.around(0.0, 0.0, fov, fov), size, scherzer_defocus(1e-6, ENERGY))
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    kx, ky = np.meshgrid(np.fft.fftfreq(size, fov / size), np.fft.fftfreq(size, fov / size))
    k = np.hypot(kx, ky)
    d100 = sample.crystal.a * constants.angstrom * np.sqrt(3) / 2  # 2.13 Å, the first-order spacing
    ring = np.abs(k - 1 / d100) < 3 / fov
    peaks = np.argsort(power[ring])[-6:]
    radii = k[ring][peaks]
    assert np.allclose(radii, 1 / d100, atol=1.5 / fov)
    angles = np.degrees(np.arctan2(ky[ring][peaks], kx[ring][peaks]))
    # first-order reflections of a lattice rotated by θ point at θ + 30° + n·60°
    expected = (np.degrees(sample.rotation) + 30.0) % 60.0
    offset = (angles - expected + 30.0) % 60.0 - 30.0
    assert np.all(np.abs(offset) < 2.0), angles


def test_a_single_atom_appears_at_its_pixel():
    fov, size = 4e-9, 128
    grid = tem.simulation_grid(fov, size)
    pixel = fov / size
    col, row = 37, 90  # pixel (row, col) is centred at ((col + 1/2) p, (row + 1/2) p)
    x = (grid.pad + col + 0.5) * pixel / constants.angstrom
    y = (grid.pad + row + 0.5) * pixel / constants.angstrom
    atom = Atoms("U", positions=[[x, y, 0.0]])
    spectrum = tem.spectrum(tem.exit_wave(atom, grid, ENERGY))
    image = tem.hrtem_intensity(spectrum, _lens(grid, Aberrations(C10=-5e-9)), grid)
    assert np.unravel_index(np.argmin(image), image.shape) == (row, col)


def test_camera_counts_follow_the_dose_with_poisson_statistics():
    """At low magnification the film is uniform: (counts - offset) / gain is the dose's electrons, and
    the variance is the shot noise times the gain, its excess noise and the point spread's noise
    transfer (sum of the squared kernel), plus read noise."""
    instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=1)
    instrument.settings.set("optics.magnification", 20_000.0)
    camera, size = instrument.hardware.camera("BM-Ceta"), 512
    binning = camera.pixels // size
    means = []
    for exposure in (0.05, 0.2):  # 760 and 3000 electrons per (8 x 8 binned) pixel, below saturation
        frame = instrument.acquire_camera_image("BM-Ceta", size, exposure)
        assert frame["metadata"]["twin"]["simulation"] == "continuum"
        result = frame["metadata"]["binary_result"]
        fov = instrument.field_of_view()
        diameter = max(instrument.hardware.min_beam_diameter, np.sqrt(2) * fov)
        current = instrument.hardware.beam_current(instrument.settings.get("optics.spot_size_index"))
        expected = current * exposure / constants.e / (np.pi * diameter**2 / 4) * (fov / size) ** 2
        counts = frame["data"].astype(float)
        electrons = (counts - result["offset"]) / result["counts_per_electron"]
        excess = 1 + camera.gain_variance
        assert electrons.mean() == pytest.approx(expected, rel=5 * np.sqrt(excess / (counts.size * expected)))
        ratio = noise_power_ratio(psf_sigma(camera.psf_sigma, binning), psf_sigma(camera.psf_tail, binning),
                                  camera.psf_tail_fraction)
        signal = counts.mean() - result["offset"]
        assert counts.var() == pytest.approx(signal * result["counts_per_electron"] * excess * ratio
                                             + camera.read_noise**2, rel=0.03)
        means.append(signal)
    assert means[1] / means[0] == pytest.approx(4.0, rel=0.01)


def test_dark_frames_when_the_beam_cannot_reach_the_camera():
    """No electrons: the dark offset (100 counts) with the read noise on it, never clipped at 0."""
    instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=1)
    camera = instrument.hardware.camera("BM-Ceta")
    for name, value in (("optics.beam_blanked", True), ("vacuum.column_valves_open", False),
                        ("detectors.screen_inserted", True)):
        instrument.set(name, value)
        dark = instrument.acquire_camera_image("BM-Ceta", 256, 1.0)["data"].astype(float)
        assert dark.mean() == pytest.approx(camera.offset, abs=0.2)
        assert dark.std() == pytest.approx(camera.read_noise, rel=0.05) and dark.min() > 0
        instrument.set(name, not value)
    assert instrument.acquire_camera_image("BM-Ceta", 256, 0.01)["data"].mean() > camera.offset + 100


def test_same_seed_and_calls_give_the_same_image_and_other_seeds_differ():
    def frame(seed: int) -> np.ndarray:
        instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=seed)
        instrument.settings.set("optics.magnification", 4_000_000.0)
        return instrument.acquire_camera_image("BM-Ceta", 256, 0.1)["data"]

    assert np.array_equal(frame(3), frame(3))
    assert not np.array_equal(frame(3), frame(4))


def test_exit_waves_are_cached_per_window_and_reused_across_defocus():
    instrument = TemInstrument(build_sample("graphene-defects", 0), Clock(0.0), seed=1)
    instrument.settings.set("optics.magnification", 4_000_000.0)
    cache = instrument.hrtem.exit_waves
    for defocus in (-2e-9, -5e-9, -2e-9):
        instrument.set("optics.defocus", defocus)
        instrument.acquire_camera_image("BM-Ceta", 256, 0.1)
    assert (cache.misses, cache.hits) == (1, 2)
    instrument.move_stage({"x": 1e-9}, relative=True)
    instrument.acquire_camera_image("BM-Ceta", 256, 0.1)
    assert cache.misses == 2


def _instrument(magnification: float) -> TemInstrument:
    instrument = TemInstrument(build_sample("graphene", 4), Clock(0.0), seed=1)
    instrument.settings.set("optics.magnification", magnification)
    return instrument


def test_padding_grows_with_defocus_so_nothing_wraps_around():
    """At 100 nm underfocus the lens spreads contrast over nanometres; the padding follows it."""
    instrument = _instrument(2_550_000.0)
    instrument.set("optics.defocus", -100e-9)
    frame = instrument.acquire_camera_image("BM-Ceta", 256, 1.0)
    padding = frame["metadata"]["twin"]["padding"]
    assert padding >= 1.2 * 3.5e-9  # λ |C10| k_info ≈ 3.7 nm at 80 kV
    fov = instrument.field_of_view()
    sample, window = instrument.sample, Window.around(0.0, 0.0, fov, fov)
    chosen = _ideal_image(sample, window, 256, -100e-9, padding)
    generous = _ideal_image(sample, window, 256, -100e-9, 3 * padding)
    assert np.abs(chosen - generous).max() < 0.1 * generous.std()
    cramped = _ideal_image(sample, window, 256, -100e-9, tem.PAD_MIN)
    assert np.abs(cramped - generous).max() > 0.5 * generous.std()  # what the padding prevents


def test_fringes_near_the_cameras_nyquist_frequency_are_recorded():
    """A 0.91 Å pixel still records graphene's 2.13 Å fringes: the simulation is oversampled."""
    instrument = _instrument(1_650_000.0)  # 23 nm field of view
    fov = instrument.field_of_view()
    size = next(s for s in sorted(instrument.hardware.camera("BM-Ceta").sizes)
                if instrument.sample.lattice_spacing / 3 < fov / s < instrument.sample.lattice_spacing / 2)
    instrument.set("optics.defocus", scherzer_defocus(1e-6, ENERGY))
    frame = instrument.acquire_camera_image("BM-Ceta", size, 0.5)  # ~3000 e per pixel, ~33000 counts
    assert frame["metadata"]["twin"]["oversampling"] == 2
    image = frame["data"].astype(float)
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size, fov / size), np.fft.fftfreq(size, fov / size)))
    ring = np.abs(k - 1 / instrument.sample.lattice_spacing) < 2 / fov
    background = np.median(power[(k > 0.3 / instrument.sample.lattice_spacing) & ~ring])
    assert power[ring].max() > 50 * background


def test_a_lattice_beyond_the_cameras_nyquist_frequency_images_as_a_uniform_film():
    instrument = _instrument(1_300_000.0)
    size = next(s for s in sorted(instrument.hardware.camera("BM-Ceta").sizes, reverse=True)
                if instrument.field_of_view() / s >= instrument.sample.lattice_spacing / 2)
    frame = instrument.acquire_camera_image("BM-Ceta", size, 1.0)
    assert frame["metadata"]["twin"]["simulation"] == "continuum"


def test_views_beyond_the_simulation_limit_are_refused_with_the_sizes_that_work():
    instrument = _instrument(88_000.0)  # 434 nm field of view
    with pytest.raises(ValueError, match=r"size = 4096 at magnification 88000 resolves the lattice over "
                                         r".* atoms, more than the twin simulates .*allowed sizes here: "
                                         r"64, 128, 256, 512, 1024, 2048"):
        instrument.acquire_camera_image("BM-Ceta", 4096, 1.0)
    assert instrument._frames == 0  # refused before anything happened


def test_a_cached_exit_wave_moved_in_fourier_space_equals_a_fresh_one():
    """Drift re-uses the exit wave of a nearby anchored window, moved in Fourier space. A move by
    whole grid steps must be exact; a sub-step move agrees to the multislice's own sampling error."""
    instrument = _instrument(4_000_000.0)
    fov, energy = instrument.field_of_view(), 80e3
    aberrations = Aberrations(C10=scherzer_defocus(1e-6, energy), C30=1e-6)
    simulator = instrument.hrtem
    grid = simulator.view((0.0, 0.0), fov, 256, energy, aberrations).grid
    step = grid.padding / 4  # the anchor lattice
    x_min, y_min = 300 * step + grid.padding, -170 * step + grid.padding  # padded corner on the lattice
    simulator.intensity(simulator.view((x_min + fov / 2, y_min + fov / 2), fov, 256, energy, aberrations))
    for dx, dy, tolerance in ((3 * grid.step, -2 * grid.step, 0.01), (0.37 * step, -0.21 * step, 0.05)):
        moved = simulator.view((x_min + dx + fov / 2, y_min + dy + fov / 2), fov, 256, energy, aberrations)
        hits = simulator.exit_waves.hits
        via_cache = simulator.intensity(moved)
        assert simulator.exit_waves.hits == hits + 1
        atoms = instrument.sample.atoms_in_window(moved.window.grown(grid.padding))
        back = -tem.refocus_distance(atoms, instrument.sample.mean_plane)
        spectrum = exit_wave_spectrum(atoms, grid, energy, simulator.hardware.tem_engine, back)
        direct = tem.hrtem_intensity(spectrum, _lens(grid, aberrations, moved.coherence), grid)
        assert np.abs(via_cache - direct).mean() < tolerance * direct.std()


def test_knock_on_damage_spares_graphene_at_60_kv_and_empties_sites_at_200_kv():
    """The same dose (16 nA for 5 s over a 100 nm disk) at two high tensions, on the shared sample."""
    removed = {}
    for kilovolts in (60, 200):
        instrument = _instrument(4_000_000.0)
        instrument.set("optics.spot_size_index", 1)
        instrument.set("source.acceleration_voltage", kilovolts * 1e3)
        sample, version = instrument.sample, instrument.sample.version
        frame = instrument.acquire_camera_image("BM-Ceta", 64, 5.0)
        removed[kilovolts] = frame["metadata"]["twin"]["atoms_knocked_out"]
        assert (sample.version > version) == (removed[kilovolts] > 0)
    assert removed[60] == 0
    dose = frame["metadata"]["optics"]["dose_per_area"]
    atoms_in_beam = instrument.sample.atom_density() * np.pi * (100e-9) ** 2 / 4
    sigma = damage.knock_on_cross_section(200e3, 6, 12.011 * constants.atomic_mass, 21.14)
    expected = atoms_in_beam * -np.expm1(-sigma * dose)
    assert abs(removed[200] - expected) < 5 * np.sqrt(expected)

    fov = instrument.field_of_view()
    window = Window.around(0.0, 0.0, fov, fov)
    vacancies = [d for d in instrument.sample.defects_in_window(window) if d.origin == "beam damage"]
    assert vacancies and all(d.kind == "vacancy" and d.host in ("C", "N", "Si") for d in vacancies)
    xy = instrument.sample.atoms_in_window(window).positions[:, :2] * 1e-10 + [window.x_min, window.y_min]
    for vacancy in vacancies:
        assert np.hypot(xy[:, 0] - vacancy.x, xy[:, 1] - vacancy.y).min() > 1e-10  # the atom is gone


@pytest.mark.slow
@pytest.mark.parametrize(("camera_length", "size", "binning", "aperture"), [
    (0.115, 512, 2, False),  # coarse camera pixels: a small periodic area, binned
    (0.46, 512, 1, False),  # one reciprocal-space sample per camera pixel
    (0.46, 2048, 1, True),  # fine pixels: the selected area is smaller than the pattern's period
])
def test_diffraction_spots_sit_at_lambda_over_d_for_the_camera_length(camera_length, size, binning, aperture):
    instrument = _instrument(4_000_000.0)
    instrument.set("optics.projector_mode", "Diffraction")
    instrument.set("optics.camera_length", camera_length)
    instrument.set("optics.spot_size_index", 11)
    pixel_angle = 14e-6 * (4096 // size) / camera_length
    geometry = instrument.hrtem.diffraction_geometry(size, pixel_angle, ENERGY)
    assert geometry.binning == binning and (geometry.area_points < geometry.points) == aperture
    frame = instrument.acquire_camera_image("BM-Ceta", size, 0.1)
    pattern = frame["data"].astype(float)
    pixel_angle = frame["metadata"]["optics"]["pixel_angle"]
    rows, cols = np.indices(pattern.shape) - size // 2
    radius = np.hypot(rows, cols) * pixel_angle
    expected = electron_wavelength(ENERGY) / instrument.sample.lattice_spacing
    assert pattern[size // 2, size // 2] == 65535  # the direct beam saturates, as on the instrument
    annulus = np.abs(radius - expected) < 0.3 * expected  # away from the direct beam's blur
    background = np.median(pattern[annulus])
    spots = np.argsort(np.where(annulus, pattern, 0).ravel())[-6:]
    assert np.all(np.abs(radius.ravel()[spots] - expected) < 1.5 * pixel_angle)
    assert np.all(pattern.ravel()[spots] > 20 * background)
    angles = np.sort(np.degrees(np.arctan2(rows.ravel()[spots], cols.ravel()[spots])) % 360)
    assert np.allclose(np.diff(angles), 60.0, atol=5.0)  # six-fold
    assert frame["metadata"]["binary_result"]["pixel_size_unit"] == "1/m"
    pattern = AdornedImage(frame["data"], frame["metadata"]).to_xarray()
    assert pattern.dims == ("ky", "kx") and pattern.kx.values[size // 2] == 0.0
    step = pixel_angle / electron_wavelength(ENERGY)  # 1/m per camera pixel
    assert pattern.kx.values[1] - pattern.kx.values[0] == pytest.approx(step)


def test_the_beta_tilt_rides_on_the_alpha_tilt():
    """A double-tilt holder: beta turns the specimen about the holder's axis, and alpha then turns the
    holder: x -> -z under beta = 90°, and alpha = 90° then turns -z into +y."""
    x_axis = np.array([[1.0, 0.0, 0.0]])
    turned = tem.tilted(x_axis, np.pi / 2, np.pi / 2, np.zeros(3))
    assert np.allclose(turned, [[0.0, 1.0, 0.0]])
    assert np.allclose(tem.tilted(x_axis, 0.0, np.pi / 2, np.zeros(3)), [[0.0, 0.0, -1.0]])


@pytest.mark.parametrize("oversampling", [7, 22, 0])
def test_a_grid_with_no_fast_size_is_refused_not_searched_forever(oversampling):
    """7 x (size + 2 pad) is never a product of 2s, 3s and 5s, whatever the padding."""
    with pytest.raises(ValueError, match=f"oversampling = {oversampling}"):
        tem.simulation_grid(0.9e-9, 6, 1.42e-9, oversampling)
