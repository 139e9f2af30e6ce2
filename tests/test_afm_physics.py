"""AFM topography: exact tip dilation, widths from tip geometry, vdW surfaces from atoms."""

from __future__ import annotations

import numpy as np
import pytest

from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.physics.afm import paraboloid_dilation, vdw_height_map
from twin.sample import Window, build_sample

NM = 1e-9


def test_separable_dilation_equals_brute_force_2d_dilation():
    rng = np.random.default_rng(2)
    surface = rng.random((31, 37)) * 3e-10
    pixel, radius = 0.4e-10, 3e-10
    rows, cols = np.mgrid[0:31, 0:37]
    brute = np.empty_like(surface)
    for r in range(31):
        for c in range(37):
            reach = ((rows - r) ** 2 + (cols - c) ** 2) * pixel**2 / (2 * radius)
            brute[r, c] = np.max(surface - reach)
    assert np.abs(paraboloid_dilation(surface, pixel, radius) - brute).max() < 1e-20


@pytest.mark.parametrize("radius", [1 * NM, 2 * NM, 5 * NM, 20 * NM])
def test_a_sharp_bump_images_as_the_tip_profile(radius):
    """A needle of height h images as h - d²/(2R): full width at half height 2 sqrt(R h)."""
    pixel, height, n = 0.1e-10, 2e-10, 801
    surface = np.zeros((n, n))
    surface[n // 2, n // 2] = height
    image = paraboloid_dilation(surface, pixel, radius)
    d = (np.arange(n) - n // 2) * pixel
    assert np.allclose(image[n // 2], np.maximum(height - d**2 / (2 * radius), 0.0), atol=1e-22)
    fwhm = np.count_nonzero(image[n // 2] >= height / 2) * pixel
    assert fwhm == pytest.approx(2 * np.sqrt(radius * height), abs=2 * pixel)


def test_cell_maximum_of_a_sphere():
    z, r, pixel = 1e-10, 1.7e-10, 0.5e-10
    centre = np.array([[2.25e-10, 2.25e-10, z]])  # the centre of pixel (4, 4)
    height = vdw_height_map(centre, np.array([r]), (0.0, 0.0), pixel, (9, 9), floor=-1.0)
    assert height[4, 4] == pytest.approx(z + r)
    nearest = 0.25e-10 + pixel  # from the centre to the near edge of pixel (4, 6)
    assert height[4, 6] == pytest.approx(z + np.sqrt(r**2 - nearest**2))
    assert height[0, 0] == -1.0  # out of reach: the floor


def test_an_adatom_looks_wider_through_a_blunter_tip():
    """The apparent width of a Si dopant grows like sqrt(R), as the dilation geometry predicts."""
    sample = build_sample("graphene-defects", 5)
    si = next(d for d in sample.defects_in_window(Window(-200 * NM, -200 * NM, 200 * NM, 200 * NM))
              if d.species == "Si")
    afm = AfmInstrument(sample, Clock(0.0), seed=0)
    window = Window.around(si.x, si.y, 8 * NM, 8 * NM)
    widths = {}
    for radius in (2 * NM, 8 * NM):
        apex, method, _ = afm.topography(window, 256, 256, radius)
        assert method == "atoms"
        profile = apex[128] - np.median(apex)
        assert np.argmax(profile) in range(126, 131)  # the bump sits on the dopant
        widths[radius] = np.count_nonzero(profile > profile.max() / 2)
    assert widths[8 * NM] / widths[2 * NM] == pytest.approx(2.0, rel=0.2)


def test_topography_never_goes_below_the_surface_and_follows_the_ripples():
    sample = build_sample("graphene", 0)
    afm = AfmInstrument(sample, Clock(0.0), seed=0)
    window = Window.around(0.0, 0.0, 30 * NM, 30 * NM)
    apex, method, _ = afm.topography(window, 128, 128, 2 * NM)
    x = window.x_min + (np.arange(128) + 0.5) * window.width / 128
    y = window.y_min + (np.arange(128) + 0.5) * window.height / 128
    continuum = sample.surface_height(x[None, :], y[:, None])
    assert method == "atoms"
    assert np.all(apex >= continuum - 0.3e-10)
    assert np.corrcoef(apex.ravel(), continuum.ravel())[0, 1] > 0.95


def test_large_frames_use_the_continuum_surface_and_stay_fast(monkeypatch):
    """A 20 um frame holds ~10^10 atoms: it must be computed without making a single one, on a grid no
    finer than its pixels (the work of 256² pixels), and still lie on the sample's surface."""
    sample = build_sample("graphene-defects", 0)
    afm = AfmInstrument(sample, Clock(0.0), seed=0)

    def no_atoms(window):
        raise AssertionError(f"atoms were made for {window}")

    monkeypatch.setattr(sample, "atoms_in_window", no_atoms)
    window = Window.around(0.0, 0.0, 20e-6, 20e-6)
    apex, _, step = afm.topography(window, 256, 256, 2 * NM)
    assert step >= window.width / 256
    x = window.x_min + (np.arange(256) + 0.5) * window.width / 256
    y = window.y_min + (np.arange(256) + 0.5) * window.height / 256
    off = apex - sample.surface_height(x[None, :], y[:, None])
    assert abs(np.median(off)) < 0.05 * NM and np.abs(off).max() < 0.5 * NM  # a 2 nm tip on a flat sheet


def test_vacancies_made_by_the_tem_beam_show_in_the_afm_topography():
    """TEM and AFM share the sample: after a damaging exposure the AFM scans the emptied sites."""
    from twin.instruments.tem import TemInstrument

    sample = build_sample("graphene", 2)
    clock = Clock(0.0)
    tem, afm = TemInstrument(sample, clock, seed=0), AfmInstrument(sample, clock, seed=0)
    tem.set("twin.stage_errors", False)
    tem.set("optics.spot_size_index", 1)
    tem.set("source.acceleration_voltage", 200e3)
    window = Window.around(0.0, 0.0, 4 * NM, 4 * NM)
    before, _, _ = afm.topography(window, 128, 128, 0.5 * NM)
    tem.acquire_camera_image("BM-Ceta", 64, 5.0)
    made = [d for d in sample.defects_in_window(window) if d.origin == "beam damage"]
    assert made, "a 5 s exposure at 16 nA and 200 kV empties sites in a 4 nm window"
    after, _, _ = afm.topography(window, 128, 128, 0.5 * NM)
    pixel = 4 * NM / 128
    checked = 0
    for vacancy in made:
        col, row = int((vacancy.x - window.x_min) / pixel), int((vacancy.y - window.y_min) / pixel)
        if 2 <= row < 126 and 2 <= col < 126:  # away from the frame's edge (the dilation's margin)
            around = np.s_[row - 1:row + 2, col - 1:col + 2]
            assert after[around].min() < before[around].min()
            checked += 1
    assert checked >= 0.9 * len(made)  # the edge strip is 3 % of the window: nearly all are checked


def test_the_driven_lever_peaks_at_its_resonance_over_a_width_f0_over_q() -> None:
    """A damped harmonic oscillator: amplitude maximum at f0 sqrt(1 - 1/(2Q²)), Q times the static
    response there, half-power width f0/Q, phase -90 deg at f0 (textbook)."""
    from twin.physics.afm import driven_response

    f0, q = 190e3, 400.0
    f = np.linspace(f0 - 5e3, f0 + 5e3, 200_001)
    response = driven_response(f, f0, q)
    amplitude = np.abs(response)
    assert f[np.argmax(amplitude)] == pytest.approx(f0 * np.sqrt(1 - 1 / (2 * q**2)), abs=0.1)
    assert amplitude.max() == pytest.approx(q, rel=1e-5)
    half_power = f[amplitude**2 >= amplitude.max() ** 2 / 2]
    assert half_power[-1] - half_power[0] == pytest.approx(f0 / q, rel=1e-3)
    assert np.degrees(np.angle(driven_response(np.array([f0]), f0, q)))[0] == pytest.approx(-90.0)
