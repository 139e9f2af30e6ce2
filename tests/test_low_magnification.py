"""Imaging where the pixels cannot resolve the lattice: the amorphous film keeps its Thon rings, a hole's
edge its Fresnel fringe, and an objective aperture gives the film its mass-thickness contrast.

References: the rings' zeros from chi(k) = n pi; the film's scattering beyond the aperture from an abTEM
multislice of the film's atoms (a brute-force reference for the projected-mass model); the model's
film structure factor against the atoms it stands for.
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.physics import tem as tem_physics
from twin.physics.ctf import electron_wavelength
from twin.sample import build_sample
from twin.sample.coarse import K_S, S0
from twin.sample.support import HoleyCarbon

NM, ENERGY = 1e-9, 80e3


@pytest.fixture(scope="module")
def holey() -> TemInstrument:
    tem = TemInstrument(build_sample("graphene-on-holey-carbon", 0), Clock(0.0), seed=3)
    tem.set("twin.stage_errors", False)
    return tem


def _radial(image: np.ndarray, pixel: float) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum: bin centres (1/m) and mean power."""
    size = image.shape[0]
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size, pixel), np.fft.fftfreq(size, pixel)))
    dk = 1 / (size * pixel)
    index = np.rint(k / dk).astype(int).ravel()
    counts = np.bincount(index)
    return np.arange(len(counts)) * dk, np.bincount(index, power.ravel()) / np.maximum(counts, 1)


def test_thon_rings_at_640kx_sit_where_chi_is_a_multiple_of_pi(holey):
    """640 kx, 512² (1.2 Å pixels, the lattice's 2.13 Å beyond reach), 1 µm underfocus on the film: the
    diffractogram's zeros at k_n = sqrt(n / (lambda |C10|)) (Cs negligible this far in)."""
    holey.stage.move({"x": 1.0e-6, "y": 0.0})
    holey.set("optics.magnification", 640e3)
    holey.set("optics.defocus", -1e-6)
    frame = holey.acquire_camera_image("BM-Ceta", 512, 0.2)
    assert frame["metadata"]["twin"]["simulation"] == "continuum"
    assert frame["data"].max() < 65535  # nothing saturated
    pixel = frame["metadata"]["binary_result"]["pixel_size"]["x"]
    k, radial = _radial(frame["data"].astype(float), pixel)
    wavelength, dk = electron_wavelength(ENERGY), k[1]
    for n in (1, 2, 3, 4):
        expected, lo, hi = (np.sqrt(m / (wavelength * 1e-6)) for m in (n, n - 0.5, n + 0.5))
        between = (k > lo) & (k < hi)
        found = k[between][np.argmin(radial[between])]
        assert abs(found - expected) <= 1.5 * dk, (n, found, expected)
        maxima = radial[between].max()
        assert maxima > 3 * radial[between].min()  # the rings stand out of the shot noise


def test_a_hole_edge_shows_its_fresnel_fringe_at_57kx(holey):
    """57 kx, 5 µm underfocus, across the edge of the hole centred on the origin (radius 0.6 µm): the
    strongest contrast in the profile lies at the edge, within a few pixels."""
    holey.stage.move({"x": 0.6e-6, "y": 0.0})
    holey.set("optics.magnification", 57e3)
    holey.set("optics.defocus", -5e-6)
    frame = holey.acquire_camera_image("BM-Ceta", 1024, 0.5)
    window = frame["metadata"]["twin"]["window"]
    pixel = frame["metadata"]["binary_result"]["pixel_size"]["x"]
    rows = slice(412, 612)  # near y = 0 the edge is a vertical line to within a pixel
    profile = frame["data"][rows].astype(float).mean(axis=0)
    x = window["x_min"] + (np.arange(1024) + 0.5) * pixel
    strongest = x[np.argmax(np.abs(profile - np.median(profile)))]
    assert strongest == pytest.approx(0.6e-6, abs=4 * pixel)


def test_an_objective_aperture_darkens_the_film_as_much_as_a_multislice_of_its_atoms_scatters(holey):
    """In focus with the 40 µm objective aperture (11.8 mrad), the film transmits what does not scatter
    beyond the aperture: compared with the fraction an abTEM multislice of the film's own atoms sends
    beyond 11.8 mrad (the film over the hole-free area; a few per cent for 3 nm of carbon)."""
    holey.stage.move({"x": 0.6e-6, "y": 0.0})
    holey.set("optics.magnification", 57e3)
    holey.set("optics.defocus", 0.0)
    holey.set("apertures.Objective.inserted", True)
    holey.set("apertures.Objective.aperture", "40")
    try:
        frame = holey.acquire_camera_image("BM-Ceta", 512, 0.2)
    finally:
        holey.set("apertures.Objective.inserted", False)
    window = frame["metadata"]["twin"]["window"]
    pixel = frame["metadata"]["binary_result"]["pixel_size"]["x"]
    x = window["x_min"] + (np.arange(512) + 0.5) * pixel
    data = frame["data"][192:320].astype(float)
    assert data.max() < 65535  # nothing saturated
    hole, film = data[:, x < 0.6e-6 - 30 * NM].mean(), data[:, x > 0.6e-6 + 30 * NM].mean()

    film_model = build_sample("graphene-on-holey-carbon", 0).film
    atoms = _film_patch(film_model, 5 * NM)
    grid = tem_physics.SimulationGrid(size=512, pad=0, sampling=5 * NM / 512)
    wave = np.fft.fft2(tem_physics.exit_wave(atoms, grid, ENERGY))
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(512, grid.step), np.fft.fftfreq(512, grid.step)))
    intensity = np.abs(wave) ** 2
    beyond = intensity[k * electron_wavelength(ENERGY) > 11.8e-3].sum() / intensity.sum()
    assert 0.005 < beyond < 0.05
    assert 1 - film / hole == pytest.approx(beyond, rel=0.3)


def _film_patch(film: HoleyCarbon, side: float):
    """The film's atoms over a hole-free ``side`` (m) square, positions from its corner (Å)."""
    from ase import Atoms

    x0 = film.pitch / 2  # halfway between holes
    positions, _ = film.atoms(x0, x0, x0 + side / 1e-10, x0 + side / 1e-10)
    positions = positions - [x0, x0, 0.0]
    return Atoms(f"C{len(positions)}", positions=positions)


def test_the_films_coarse_structure_factor_is_that_of_its_atoms():
    """The projected-mass model's S(k) for the film against the film's atoms binned and Fourier
    transformed (a 40 nm patch): within 30 % from 0.05 to 0.5 1/Å."""
    film = HoleyCarbon(top=-3.35, thickness=30.0, hole_diameter=12000.0, pitch=20000.0, seed=5)
    side, n = 400.0, 512
    positions, _ = film.atoms(5000.0, 5000.0, 5000.0 + side, 5000.0 + side)
    counts, _, _ = np.histogram2d(positions[:, 1] - 5000.0, positions[:, 0] - 5000.0, bins=n,
                                  range=[[0, side], [0, side]])
    structure = np.abs(np.fft.fft2(counts - counts.mean())) ** 2 / len(positions)
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(n, side / n), np.fft.fftfreq(n, side / n)))
    for lo, hi in ((0.05, 0.08), (0.08, 0.12), (0.12, 0.2), (0.2, 0.3), (0.3, 0.5)):
        ring = (k >= lo) & (k < hi)
        middle = np.sqrt(lo * hi)
        model = S0 + (1 - S0) * (1 - np.exp(-(middle / K_S) ** 2))
        assert structure[ring].mean() == pytest.approx(model, rel=0.3), (lo, hi)


def test_the_film_images_alike_on_either_side_of_the_crossover_to_projected_mass(holey):
    """Just below the lattice's Nyquist limit the film's image comes from an abTEM multislice of its
    atoms, just above from its projected mass: their power spectra at 200 nm underfocus agree, band by
    band (the multislice's 2 x 2 oversampled pixels average away some of the highest frequencies)."""
    from twin.physics.ctf import Aberrations

    size, bands = 192, ((0.1e9, 0.4e9), (0.4e9, 1.2e9), (1.2e9, 4e9))

    def band_powers(pixel: float) -> tuple[str, np.ndarray]:
        found = []
        for centre in ((1.0e-6, 0.0), (1.0e-6, 40e-9)):
            view = holey.hrtem.view(centre, pixel * size, size, ENERGY, Aberrations(C10=-200e-9, C30=1e-6))
            image = holey.hrtem.intensity(view)
            power = np.abs(np.fft.fft2(image - image.mean())) ** 2 / image.size
            k = np.hypot(*np.meshgrid(np.fft.fftfreq(size, pixel), np.fft.fftfreq(size, pixel)))
            found.append([power[(k >= lo) & (k < hi)].mean() for lo, hi in bands])
        return view.method, np.mean(found, axis=0)

    (below, atoms), (above, mass) = band_powers(1.03e-10), band_powers(1.10e-10)
    assert (below, above) == ("multislice", "continuum")
    ratio = mass / atoms
    assert np.all((ratio[:2] > 0.7) & (ratio[:2] < 1.45)), ratio
    assert 0.7 < ratio[2] < 2.0, ratio


def test_a_micrometre_haadf_scan_finds_the_holes_by_the_carbon_they_lack(holey):
    """A 4 µm HAADF scan over the hole centred on the origin: all of it carbon, so the dark-field signal
    goes as the carbon atoms per area, graphene alone over the hole (2 / 5.24 Å² = 0.38 Å⁻²), graphene
    and 3 nm of film at 0.1 Å⁻³ beside it (3.38 Å⁻²): a ratio of 8.9."""
    from twin.instruments.tem.scanning import Scan

    holey.set("optics.optical_mode", "Stem")
    try:
        state = holey.settings.snapshot()
        scan = Scan((0.0, 0.0), 4e-6, 0.0, 128)
        detector = holey.hardware.detector("HAADF")
        arguments = (scan, state["source.acceleration_voltage"], state["optics.convergence_angle"],
                     holey.aberrations(state), [detector])
        assert holey.stem.method(*arguments, "interactive") == "continuum"
        haadf = holey.stem.signals(*arguments, "continuum")["HAADF"]
    finally:
        holey.set("optics.optical_mode", "Tem")
    u, v = scan.scan_coordinates()
    r = np.hypot(*np.meshgrid(u, v))
    graphene = 2 / (2.46**2 * np.sqrt(3) / 2)
    expected = (graphene + 0.1 * 30) / graphene
    film = (r > 0.8e-6) & (r < 1.2e-6)  # the next holes begin 1.4 µm from the centre
    assert haadf[film].mean() / haadf[r < 0.4e-6].mean() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize("step", [2.0, 15.0])
def test_projected_mass_keeps_the_atom_count_of_a_featured_sheet(step):
    """graphene-features (pores, multivacancies, dopants, contamination) over 60 nm: the carbon per Å²
    averages graphene's 2 / (a² sqrt(3) / 2) = 0.382 within 2 % (the features are sparse), and no pixel
    holds an absurd amount (a pore's or a dome's atoms are spread, not piled up)."""
    from twin.sample.coarse import CoarseGrid, areal_densities
    from twin.sample.frames import FramedSample, InstrumentFrame

    sample = build_sample("graphene-features", 0)
    side = int(600 / step)
    carbon = areal_densities(FramedSample(sample, InstrumentFrame()), CoarseGrid(-side // 2, -side // 2, step,
                                                                                 (side, side)))["C"]
    graphene = 2 / (2.46**2 * np.sqrt(3) / 2)
    assert carbon.mean() == pytest.approx(graphene, rel=0.02)
    assert np.isfinite(carbon).all() and carbon.max() < 5 * graphene and carbon.min() > -5 * graphene


def test_a_micrometre_scans_memory_is_within_what_its_cost_declares(holey):
    """The server's limits admit work by its declared cost: a turned 512² continuum scan's measured peak
    (tracemalloc) stays below the bytes :meth:`cost` declares, so no scan allocates past the limits."""
    import tracemalloc

    from twin.instruments.tem.scanning import Scan

    holey.set("optics.optical_mode", "Stem")
    try:
        state = holey.settings.snapshot()
        haadf = [holey.hardware.detector("HAADF")]
        arguments = (Scan((0.0, 0.0), 4e-6, 0.6, 512), state["source.acceleration_voltage"],
                     state["optics.convergence_angle"], holey.aberrations(state), haadf)
        declared = holey.stem.cost(*arguments, "continuum").bytes
        tracemalloc.start()
        holey.stem.signals(*arguments, "continuum")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        holey.set("optics.optical_mode", "Tem")
    assert peak < declared < 4 * peak
