"""STEM: a diffraction-limited probe, Z-contrast at the right pixel, agreement with abTEM, exact BF/ABF
vacuum fractions."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from scipy.constants import angstrom as ANGSTROM  # m: the unit of ASE and abTEM, defined outside the twin

from twin.physics import stem, tem
from twin.physics.ctf import Aberrations, aberration_phase, electron_wavelength, spatial_frequencies
from twin.sample import Window, build_sample

ENERGY = 80e3
ALPHA = 0.03  # rad, probe convergence semi-angle
HAADF = (0.08, 0.2)  # rad
LENS = Aberrations(C30=1e-6)


def _fwhm(profile: np.ndarray, sampling: float) -> float:
    """Full width at half maximum (m) of a peak at index 0 of a periodic 1-D ``profile``."""
    half = profile[0] / 2
    i = int(np.argmax(profile < half))  # first sample below half maximum, going outwards
    return 2 * sampling * (i - 1 + (profile[i - 1] - half) / (profile[i - 1] - profile[i]))


def test_probe_is_normalised_and_centred_on_the_origin():
    sampling = 0.05 * ANGSTROM
    for lens in (Aberrations(), Aberrations(C10=-3e-9, C12=1e-9, phi12=0.5, C30=1.2e-6)):
        probe = stem.probe_intensity((256, 320), sampling, ENERGY, ALPHA, lens)
        assert probe.shape == (256, 320)
        assert probe.sum() * sampling**2 == pytest.approx(1.0, rel=1e-12)
    probe = stem.probe_intensity((256, 320), sampling, ENERGY, ALPHA, Aberrations())
    assert np.unravel_index(np.argmax(probe), probe.shape) == (0, 0)
    assert probe[0, 1] == pytest.approx(probe[0, -1]) and probe[1, 0] == pytest.approx(probe[-1, 0])


def test_probe_width_is_diffraction_limited():
    """Airy disc: FWHM = 0.514 lambda / alpha, narrower for larger convergence angles."""
    sampling, n = 0.04 * ANGSTROM, 1024
    wavelength = electron_wavelength(ENERGY)
    widths = []
    for alpha in (0.015, 0.025, 0.035):
        probe = stem.probe_intensity((n, n), sampling, ENERGY, alpha, Aberrations())
        width = _fwhm(probe[0], sampling)
        assert width == pytest.approx(0.514 * wavelength / alpha, rel=0.1)
        assert _fwhm(probe[:, 0], sampling) == pytest.approx(width, rel=0.02)  # round
        widths.append(width)
    assert widths[0] > widths[1] > widths[2]


def test_haadf_cross_section_grows_as_z_to_a_power_between_1_5_and_2():
    sigma_c, sigma_si = stem.annular_cross_section(np.array([6, 14]), ENERGY, *HAADF)
    exponent = np.log(sigma_si / sigma_c) / np.log(14 / 6)
    assert 1.5 <= exponent <= 2.0
    # the whole solid angle: pi (2 gamma Z / (a0 k^2))^2 / theta0^2, about 6e-23 m^2 for C at 80 kV
    total = stem.annular_cross_section(np.array([6]), ENERGY, 0.0, np.inf)[0]
    assert 4e-23 < total < 1e-22 and sigma_c < 0.1 * total


def test_si_images_brighter_than_c_each_at_its_pixel():
    step, shape = 0.25 * ANGSTROM, (64, 64)
    origin = (3 * ANGSTROM, -2 * ANGSTROM)
    pixels = {6: (20, 15), 14: (40, 44)}  # atomic number -> (row, col)
    positions = np.array(
        [
            [origin[0] + (c + 0.5) * step, origin[1] + (r + 0.5) * step, 0.3 * ANGSTROM]
            for r, c in pixels.values()
        ]
    )
    image = stem.incoherent_annular_image(
        positions, np.array(list(pixels)), origin, step, shape, ENERGY, ALPHA, LENS, *HAADF
    )
    assert image.dtype == np.float64 and image.shape == shape
    assert np.unravel_index(np.argmax(image), shape) == pixels[14]
    r, c = pixels[6]
    assert image[r, c] == image[r - 3 : r + 4, c - 3 : c + 4].max()
    assert image[pixels[14]] > 3 * image[r, c]


def test_an_atom_scatters_its_cross_section_and_sits_where_it_is_to_a_fraction_of_a_pixel():
    """sum(image) p^2 = sigma, and the image equals sigma |probe(r - r_atom)|^2 evaluated directly."""
    step, shape, origin = 0.3 * ANGSTROM, (96, 96), (0.0, 0.0)
    atom = np.array([[47.37 * step, 50.81 * step]])  # off the pixel centres
    lens = Aberrations(C10=-2e-9, C12=0.5e-9, phi12=0.3, C30=1e-6)
    image = stem.incoherent_annular_image(
        atom, np.array([14]), origin, step, shape, ENERGY, ALPHA, lens, *HAADF
    )
    sigma = stem.annular_cross_section(np.array([14]), ENERGY, *HAADF)[0]
    assert image.sum() * step**2 == pytest.approx(sigma, rel=0.02)  # ~1 % of the probe lies outside

    # the same probe directly from its spectrum, at arbitrary (continuous) offsets
    wavelength, side, n = electron_wavelength(ENERGY), 6e-9, 256
    kx, ky = spatial_frequencies((n, n), side / n)
    kx, ky = np.broadcast_arrays(kx, ky)
    aperture = wavelength * np.hypot(kx, ky) <= ALPHA
    kx, ky = kx[aperture], ky[aperture]
    spectrum = np.exp(-1j * aberration_phase(kx, ky, wavelength, lens))
    rows, cols = np.mgrid[44:56, 42:54]
    dx = (cols + 0.5) * step - atom[0, 0]
    dy = (rows + 0.5) * step - atom[0, 1]
    wave = np.exp(2j * np.pi * (dx[..., None] * kx + dy[..., None] * ky)) @ spectrum
    expected = sigma * np.abs(wave) ** 2 / (aperture.sum() * side**2)  # Parseval: |probe|^2 integrates to 1
    assert np.abs(image[rows, cols] - expected).max() < 5e-3 * expected.max()


def test_atoms_beyond_the_window_contribute_without_wrapping_around():
    """A window's image is the crop of a larger window's image, atoms outside it included."""
    sample = build_sample("graphene-defects", 3)
    big = Window(0.0, 0.0, 4e-9, 3e-9)
    reach = stem.probe_reach(ENERGY, ALPHA, LENS)
    atoms = sample.atoms_in_window(big.grown(reach))
    positions = atoms.positions * ANGSTROM - reach  # frame of the big window's corner
    step = 0.2 * ANGSTROM

    def image(origin, shape):
        return stem.incoherent_annular_image(
            positions, atoms.numbers, origin, step, shape, ENERGY, ALPHA, LENS, *HAADF
        )

    whole = image((0.0, 0.0), (150, 200))
    part = image((60 * step, 40 * step), (50, 70))  # its atoms extend far beyond its edges
    crop = whole[40:90, 60:130]
    assert np.abs(part - crop).max() < 5e-3 * crop.max()  # the grids differ, and so the probes' tails
    lone = np.array([[-0.3 * ANGSTROM, 10 * ANGSTROM]])  # just left of the window
    edge = stem.incoherent_annular_image(
        lone, np.array([14]), (0.0, 0.0), step, (100, 100), ENERGY, ALPHA, LENS, *HAADF
    )
    assert np.unravel_index(np.argmax(edge), edge.shape)[1] == 0  # brightest at the left edge
    assert edge[:, -1].max() < 1e-3 * edge.max()  # and not wrapped onto the right one


def _si_window(sample, fov: float) -> Window:
    """A window of ``fov`` centred on the first Si dopant along +x."""
    for x in np.arange(0.0, 500e-9, fov):
        for defect in sample.defects_in_window(Window(x, -fov / 2, x + fov, fov / 2)):
            if defect.species == "Si":
                return Window.around(defect.x, defect.y, fov, fov)
    raise AssertionError("no Si dopant found")


@pytest.mark.slow
def test_interactive_haadf_matches_abtem_multislice_and_prism():
    sample = build_sample("graphene-defects", 0)
    fov, size = 1.5e-9, 24
    window = _si_window(sample, fov)
    grid = tem.simulation_grid(
        fov,
        size,
        stem.probe_reach(ENERGY, ALPHA, LENS),
        stem.exact_oversampling(fov / size, ENERGY, HAADF[1]),
    )
    atoms = sample.atoms_in_window(window.grown(grid.padding))
    exact = stem.exact_annular_scan(atoms, grid, ENERGY, ALPHA, LENS, *HAADF)
    interactive = stem.incoherent_annular_image(
        atoms.positions * ANGSTROM,
        atoms.numbers,
        (grid.padding, grid.padding),
        grid.sampling,
        (size, size),
        ENERGY,
        ALPHA,
        LENS,
        *HAADF,
    )
    assert exact.shape == interactive.shape == (size, size)
    assert np.corrcoef(exact.ravel(), interactive.ravel())[0, 1] >= 0.98
    si = np.unravel_index(np.argmax(exact), exact.shape)
    assert si == np.unravel_index(np.argmax(interactive), interactive.shape)
    assert max(abs(si[0] - size / 2 + 0.5), abs(si[1] - size / 2 + 0.5)) <= 1  # the dopant is central
    assert 0.7 < interactive.mean() / exact.mean() < 1.5  # screened Rutherford vs Lobato potentials
    prism = stem.exact_annular_scan(atoms, grid, ENERGY, ALPHA, LENS, *HAADF, interpolation=4)
    assert np.corrcoef(exact.ravel(), prism.ravel())[0, 1] >= 0.995
    assert prism.mean() == pytest.approx(exact.mean(), rel=0.02)


def test_exact_mode_gives_fractions_in_vacuum_and_at_an_edge():
    """Half the window empty: a BF disc detector reads 1 in vacuum, a dark-field annulus 0."""
    fov, size = 1.2e-9, 8
    grid = tem.simulation_grid(fov, size, 0.6e-9, stem.exact_oversampling(fov / size, ENERGY, 3 * ALPHA))
    side = grid.n * grid.step / ANGSTROM
    carbon = [[x, y, 0.0] for x in np.arange(0.5, side / 2, 1.4) for y in np.arange(0.5, side, 1.4)]
    atoms = Atoms(f"C{len(carbon)}", positions=carbon)
    bright = stem.exact_annular_scan(atoms, grid, ENERGY, ALPHA, LENS, 0.0, ALPHA)
    dark = stem.exact_annular_scan(atoms, grid, ENERGY, ALPHA, LENS, ALPHA, 3 * ALPHA)
    assert np.all((bright >= 0) & (bright <= 1 + 1e-5) & (dark >= 0) & (dark <= 1))
    total = bright + dark  # thin carbon scatters next to nothing beyond 3 alpha
    assert np.all((total > 0.999) & (total <= 1 + 1e-5))
    np.testing.assert_allclose(bright[:, -1], 1.0, atol=1e-4)  # the vacuum side
    assert dark[:, -1].max() < 1e-4 and dark[:, 0].min() > 3e-4
    assert bright[:, 0].max() < bright[:, -1].min()


def _vacuum_fraction(n: int, sampling: float, inner: float, outer: float) -> float:
    kx, ky = spatial_frequencies((n, n), sampling)
    angle = electron_wavelength(ENERGY) * np.hypot(kx, ky)
    aperture = angle <= ALPHA
    return np.count_nonzero(aperture & (angle >= inner) & (angle <= outer)) / np.count_nonzero(aperture)


@pytest.mark.parametrize(("inner", "outer", "nominal"), [(0.0, ALPHA / 2, 0.25), (ALPHA / 2, ALPHA, 0.75)])
def test_bright_field_in_vacuum_is_the_detector_fraction(inner, outer, nominal):
    n, sampling = 160, 0.2 * ANGSTROM
    vacuum = tem.spectrum(np.ones((n, n), dtype=np.complex64))
    signal = stem.bright_field_image(vacuum, sampling, ENERGY, ALPHA, LENS, inner, outer)
    assert signal.shape == (n, n)
    np.testing.assert_allclose(signal, _vacuum_fraction(n, sampling, inner, outer), rtol=1e-6)
    assert signal.mean() == pytest.approx(nominal, rel=0.03)


def test_bright_field_equals_the_sum_over_the_detector():
    """The split into vacuum, linear and sampled quadratic terms reproduces the defining sum."""
    n, sampling = 64, 0.2 * ANGSTROM
    rng = np.random.default_rng(2)
    wave = np.exp(
        1j
        * np.fft.ifft2(
            np.fft.fft2(rng.normal(0, 0.5, (n, n)))
            * (np.hypot(*spatial_frequencies((n, n), sampling)) < 1.5e10)
        ).real
    ).astype(np.complex64)
    spectrum = tem.spectrum(wave)
    lens = Aberrations(C10=-4e-9, C30=1e-6)
    wavelength = electron_wavelength(ENERGY)
    kx, ky = spatial_frequencies((n, n), sampling)
    angle = wavelength * np.hypot(kx, ky)
    probe = np.where(angle <= ALPHA, np.exp(-1j * aberration_phase(kx, ky, wavelength, lens)), 0)
    for inner, outer in ((0.0, ALPHA / 2), (ALPHA / 2, ALPHA)):
        direct = sum(
            np.abs(np.fft.ifft2(np.roll(spectrum, (-r, -c), axis=(0, 1)) * probe)) ** 2
            for r, c in zip(*np.nonzero((angle >= inner) & (angle <= outer)), strict=True)
        ) / np.count_nonzero(angle <= ALPHA)
        every = stem.bright_field_image(spectrum, sampling, ENERGY, ALPHA, lens, inner, outer, samples=n * n)
        np.testing.assert_allclose(every, direct, atol=1e-5)
        sampled = stem.bright_field_image(spectrum, sampling, ENERGY, ALPHA, lens, inner, outer, samples=16)
        assert np.sqrt(np.mean((sampled - direct) ** 2)) < 0.05 * direct.std()


def test_bright_field_of_graphene_shows_its_lattice():
    sample = build_sample("graphene", 4)
    fov, size = 2e-9, 96
    grid = tem.simulation_grid(fov, size)
    atoms = sample.atoms_in_window(Window.around(0.0, 0.0, fov, fov).grown(grid.padding))
    spectrum = tem.spectrum(tem.exit_wave(atoms, grid, ENERGY))
    crop = slice(grid.pad, grid.pad + size)
    image = stem.bright_field_image(spectrum, grid.step, ENERGY, ALPHA, LENS, 0.0, ALPHA)[crop, crop]
    assert np.abs(image - 1).max() < 0.02  # vacuum reads 1; the thin crystal barely changes it
    assert image.std() > 1e-3
    power = np.abs(np.fft.fft2(image - image.mean())) ** 2
    kx, ky = spatial_frequencies(image.shape, grid.sampling)
    k = np.hypot(kx, ky)[np.unravel_index(np.argmax(power), power.shape)]
    a = sample.crystal.a * ANGSTROM
    orders = np.array([2 / (np.sqrt(3) * a), 2 / a])  # first and second order: 2.13 Å, 1.23 Å
    assert np.min(np.abs(k - orders)) < 1.5 / fov
