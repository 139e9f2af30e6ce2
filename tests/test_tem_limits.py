"""What the twin refuses, and what it does instead of exploding: every request beyond the simulation's
limits gets a clear error naming the parameter and changes nothing; micrometre views fall back to physics
that scales (a uniform film for STEM, sampled knock-ons for damage)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import constants

from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.instruments.tem.hardware import TemHardware
from twin.physics import damage
from twin.sample import Window, build_sample


def _tem(hardware: TemHardware | None = None, seed: int = 3) -> TemInstrument:
    instrument = TemInstrument(build_sample("graphene", 4), Clock(0.0), seed=seed, hardware=hardware)
    instrument.set("twin.stage_errors", False)
    instrument.set("twin.drift", False)
    return instrument


def _unchanged(instrument: TemInstrument, before: dict) -> None:
    assert instrument.settings.snapshot() == before
    assert instrument.sample.version == 0


def test_hrtem_beyond_the_atom_limit_names_the_sizes_that_work():
    instrument = _tem()
    instrument.set("optics.magnification", 88_000.0)  # 434 nm field of view
    before = instrument.settings.snapshot()
    with pytest.raises(ValueError, match=r"size = 4096 at magnification 88000 resolves the lattice over .* "
                                         r"allowed sizes here: 64, 128, 256, 512, 1024, 2048"):
        instrument.acquire_camera_image("BM-Ceta", 4096, 0.1)
    _unchanged(instrument, before)


def test_a_deep_tilted_view_is_refused_before_anything_changes():
    instrument = _tem()
    instrument.set("optics.magnification", 285_000.0)  # 134 nm: 0.6 rad of tilt makes it ~80 nm deep
    instrument.move_stage({"a": 0.6})
    before = instrument.settings.snapshot()
    with pytest.raises(ValueError, match=r"stage tilt \(a, b\) = \(0.6, 0\) rad .* slices of \d+² points"):
        instrument.acquire_camera_image("BM-Ceta", 4096, 0.1)
    _unchanged(instrument, before)
    assert instrument.acquire_camera_image("BM-Ceta", 256, 0.1)["metadata"]["acquisition"]["frame_index"] == 0


def test_stem_limits_name_the_parameter_and_the_allowed_range():
    instrument = _tem()
    instrument.set("optics.optical_mode", "Stem")
    instrument.set("optics.scan_field_of_view", 4e-9)
    before = instrument.settings.snapshot()
    with pytest.raises(ValueError, match=r"mode = 'exact' at size = 256 runs 65536 probe positions, more "
                                         r"than the twin simulates in this mode \(16384\)"):
        instrument.acquire_stem_images(["HAADF"], 256, 1e-6, mode="exact")
    with pytest.raises(ValueError, match=r"dwell_time = 0.001 s over 1024 x 1024 pixels takes 1049 s per "
                                         r"frame; allowed at most 600 s \(dwell_time <= 0.000572 s"):
        instrument.acquire_stem_images(["HAADF"], 1024, 1e-3)
    instrument.set("optics.scan_field_of_view", 400e-9)  # 0.98 Å steps: the lattice over 6 M atoms
    before = instrument.settings.snapshot()
    with pytest.raises(ValueError, match=r"size = 4096 over scan_field_of_view = 4e-07 m resolves the "
                                         r"lattice over .* atoms"):
        instrument.acquire_stem_images(["HAADF"], 4096, 25e-9)
    _unchanged(instrument, before)


def test_micrometre_stem_scans_see_the_mean_of_the_atom_resolved_image():
    """Over 10 µm the probe cannot resolve the lattice: the crystal is a uniform film whose dark-field
    signal is the mean of the incoherent image, and the bright field loses what the film scatters."""
    instrument = _tem()
    instrument.set("optics.optical_mode", "Stem")
    instrument.set("optics.scan_field_of_view", 3e-9)
    resolved = instrument.stem.signals(*_scan_arguments(instrument, 96), "interactive")
    instrument.set("optics.scan_field_of_view", 10e-6)
    images = instrument.acquire_stem_images(["HAADF", "ADF", "BF"], 512, 1e-6)
    film = instrument.stem.signals(*_scan_arguments(instrument, 512), "continuum")
    assert [i["metadata"]["twin"]["simulation"] for i in images] == ["continuum"] * 3
    for name in ("HAADF", "ADF", "BF"):
        assert film[name].mean() == pytest.approx(resolved[name].mean(), rel=0.05)
    alpha, bf = instrument.get("optics.convergence_angle"), instrument.hardware.detector("BF")
    share = (bf.outer / alpha) ** 2  # of the probe's cone
    assert 0.95 * share < film["BF"].mean() < share
    electrons = instrument.beam_current(instrument.settings.snapshot()) * 1e-6 / constants.e
    assert images[0]["data"].mean() == pytest.approx(film["HAADF"].mean() * electrons, rel=0.05)


def _scan_arguments(instrument: TemInstrument, size: int) -> tuple:
    from twin.instruments.tem.scanning import Scan

    state = instrument.settings.snapshot()
    scan = Scan((0.0, 0.0), state["optics.scan_field_of_view"], 0.0, size)
    detectors = [instrument.hardware.detector(n) for n in ("HAADF", "ADF", "BF")]
    return (scan, state["source.acceleration_voltage"], state["optics.convergence_angle"],
            instrument.aberrations(state), detectors)


def test_sampled_knock_ons_over_a_wide_beam_match_the_atom_by_atom_rate():
    """Beyond ``damage_atom_limit`` atoms in the beam, knock-ons are drawn as a thinned Poisson process;
    the count matches sigma x dose x atoms, and every recorded vacancy is a real, now empty, site."""
    sampled = dataclasses.replace(TemHardware(), damage_atom_limit=1_000)
    instrument = _tem(sampled)
    instrument.set("optics.magnification", 4_000_000.0)
    instrument.set("optics.spot_size_index", 1)
    instrument.set("source.acceleration_voltage", 200e3)
    frame = instrument.acquire_camera_image("BM-Ceta", 64, 5.0)
    removed = frame["metadata"]["twin"]["atoms_knocked_out"]
    dose = frame["metadata"]["optics"]["dose_per_area"]
    atoms_in_beam = instrument.sample.atom_density() * np.pi * (100e-9) ** 2 / 4
    sigma = damage.knock_on_cross_section(200e3, 6, 12.011 * constants.atomic_mass, 21.14)
    expected = atoms_in_beam * -np.expm1(-sigma * dose)
    assert abs(removed - expected) < 5 * np.sqrt(expected)
    window = Window.around(0.0, 0.0, 120e-9, 120e-9)
    vacancies = [d for d in instrument.sample.defects_in_window(window) if d.origin == "beam damage"]
    assert len(vacancies) == removed
    xy = instrument.sample.atoms_in_window(window).positions[:, :2] * 1e-10 + [window.x_min, window.y_min]
    for vacancy in vacancies[:50]:
        assert np.hypot(xy[:, 0] - vacancy.x, xy[:, 1] - vacancy.y).min() > 1e-10


def test_a_low_magnification_exposure_at_300_kv_finishes_and_damages_sparsely():
    instrument = _tem()
    instrument.set("optics.magnification", 1_000.0)  # a 38 µm field, a 54 µm beam: ~1e11 atoms
    instrument.set("source.acceleration_voltage", 300e3)
    instrument.set("optics.spot_size_index", 1)
    instrument.set("detectors.screen_inserted", True)
    current = instrument.screen_current()  # A, as the fluorescent screen reads it
    instrument.set("detectors.screen_inserted", False)
    frame = instrument.acquire_camera_image("BM-Ceta", 256, 1.0)
    assert frame["metadata"]["twin"]["simulation"] == "continuum"
    # sparse damage: each of the I t / e electrons displaces an atom with probability sigma x areal density,
    # whatever the beam's size
    sigma = damage.knock_on_cross_section(300e3, 6, 12.011 * constants.atomic_mass, 21.14)
    expected = instrument.sample.atom_density() * sigma * current * 1.0 / constants.e  # ~6000
    assert abs(frame["metadata"]["twin"]["atoms_knocked_out"] - expected) < 5 * np.sqrt(expected)


def test_an_auto_function_that_fails_leaves_the_optics_as_they_were():
    instrument = _tem()
    instrument.set("optics.magnification", 88_000.0)
    instrument.set("optics.beam_blanked", True)
    before = instrument.settings.snapshot()
    with pytest.raises(ValueError, match="size = 4096"):
        instrument.run_auto_function("beam_tilt_auto_focus",
                                     {"camera": "BM-Ceta", "size": 4096, "exposure_time": 0.1})
    _unchanged(instrument, before)
