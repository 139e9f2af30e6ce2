"""STEM on the instrument: detectors, dose from dwell time, scan geometry, modes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import constants

from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.sample import Window, build_sample


def _stem(fov: float = 4e-9) -> tuple[TemInstrument, object]:
    """An exact stage in STEM mode over an isolated Si dopant."""
    instrument = TemInstrument(build_sample("graphene-defects", 7), Clock(0.0), seed=0)
    instrument.set("twin.stage_errors", False)
    instrument.set("twin.drift", False)
    silicon = next(d for d in instrument.sample.defects_in_window(Window(-300e-9, -300e-9, 300e-9, 300e-9))
                   if d.species == "Si")
    instrument.move_stage({"x": silicon.x, "y": silicon.y})
    instrument.set("optics.optical_mode", "Stem")
    instrument.set("optics.scan_field_of_view", fov)
    return instrument, silicon


def test_haadf_shows_the_heavier_dopant_brightest_at_its_pixel():
    instrument, silicon = _stem()
    image = instrument.acquire_stem_images(["HAADF"], 128, 20e-6)[0]
    counts = image["data"].astype(float)
    row, col = np.unravel_index(np.argmax(counts), counts.shape)
    window = image["metadata"]["twin"]["window"]
    step = image["metadata"]["binary_result"]["pixel_size"]["x"]
    assert abs(window["x_min"] + (col + 0.5) * step - silicon.x) <= step
    assert abs(window["y_min"] + (row + 0.5) * step - silicon.y) <= step


def test_dwell_time_sets_the_dose_per_pixel():
    instrument, _ = _stem()
    means = []
    for dwell in (1e-6, 4e-6):
        image = instrument.acquire_stem_images(["BF"], 64, dwell)[0]
        electrons = instrument.beam_current(instrument.settings.snapshot()) * dwell / constants.e
        assert image["metadata"]["optics"]["electrons_per_pixel"] == pytest.approx(electrons)
        means.append(image["data"].mean())
    assert means[1] / means[0] == pytest.approx(4.0, rel=0.02)


def test_scan_rotation_and_field_of_view_are_obeyed():
    instrument, _ = _stem(fov=3e-9)
    upright = instrument.acquire_stem_images(["HAADF"], 96, 50e-6, mode="interactive")[0]
    assert upright["metadata"]["binary_result"]["pixel_size"]["x"] == pytest.approx(3e-9 / 96)
    instrument.set("optics.scan_rotation", np.pi / 2)
    turned = instrument.acquire_stem_images(["HAADF"], 96, 50e-6)[0]
    # a scan turned by +90° sees the sample turned by -90°: in array order (rows along +y) rot90(k=-1)
    a, b = upright["data"].astype(float), np.rot90(turned["data"].astype(float), k=-1)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def test_a_region_scan_is_the_matching_part_of_the_full_frame():
    instrument, _ = _stem()
    full = instrument.stem.signals  # compare noise-free signals
    state = instrument.settings.snapshot()
    from twin.instruments.tem.scanning import Scan

    centre, fov, args = (0.0, 0.0), 4e-9, (80e3, 30e-3, instrument.aberrations(state))
    detector = [instrument.hardware.detector("HAADF")]
    whole = full(Scan(centre, fov, 0.0, 64), *args, detector, "interactive")["HAADF"]
    part = full(Scan(centre, fov, 0.0, 64, (0.25, 0.5, 0.5, 0.25)), *args, detector, "interactive")["HAADF"]
    assert part.shape == (16, 32)
    # top 0.5 from the image's top edge: rows 16..31 of 64 counted from the bottom (rows grow with v)
    assert np.allclose(part, whole[16:32, 16:48], rtol=0.02, atol=1e-3 * whole.max())


@pytest.mark.slow
def test_interactive_and_exact_haadf_agree():
    """The smallest scan, 16², at 0.75 A steps (the lattice resolved) over the Si dopant and its
    neighbours: exact multislice costs per probe position (tests/test_stem_physics.py compares the
    two models, and PRISM, over a larger window)."""
    instrument, _ = _stem(fov=1.2e-9)
    dwell = 5e-3  # plenty of electrons, and still below the detector's 16-bit saturation
    fast = instrument.acquire_stem_images(["HAADF"], 16, dwell, mode="interactive")[0]["data"].astype(float)
    slow = instrument.acquire_stem_images(["HAADF"], 16, dwell, mode="exact")[0]["data"].astype(float)
    assert fast.max() < 65535 and slow.max() < 65535
    assert np.corrcoef(fast.ravel(), slow.ravel())[0, 1] > 0.97


def test_stem_calls_are_refused_in_tem_mode_and_for_unknown_or_retracted_detectors():
    instrument, _ = _stem()
    with pytest.raises(ValueError, match="detector = 'DF4' is not allowed; allowed values: 'HAADF'"):
        instrument.acquire_stem_images(["DF4"], 64, 1e-6)
    with pytest.raises(ValueError, match="mode = 'fast' is not allowed; allowed values: 'interactive'"):
        instrument.acquire_stem_images(["HAADF"], 64, 1e-6, mode="fast")
    with pytest.raises(ValueError, match="region width = 0.8 is out of range; allowed more than 0 up to 0.5"):
        instrument.acquire_stem_images(["HAADF"], 64, 1e-6, region=(0.5, 0.0, 0.8, 0.5))
    instrument.set("detectors.BF.inserted", False)
    with pytest.raises(RuntimeError, match="detector BF is retracted"):
        instrument.acquire_stem_images(["HAADF", "BF"], 64, 1e-6)
    instrument.set("optics.optical_mode", "Tem")
    with pytest.raises(RuntimeError, match="STEM acquisitions need optics.optical_mode 'Stem'"):
        instrument.acquire_stem_images(["HAADF"], 64, 1e-6)
    assert instrument._frames == 0  # every refusal came before anything happened


def test_a_blanked_beam_leaves_read_noise_only():
    instrument, _ = _stem()
    instrument.set("optics.beam_blanked", True)
    dark = instrument.acquire_stem_images(["HAADF"], 64, 1e-5)[0]["data"].astype(float)
    assert dark.mean() < 0.5 and 0 < dark.std() < 1.0


def test_a_single_tilt_holder_has_no_beta():
    from twin.digital_twin import DigitalTwin

    tem = DigitalTwin.build(holder="SingleTilt").tem
    assert tem.stage.position()["b"] is None and tem.describe()["holder_type"] == "SingleTilt"
    tem.move_stage({"a": 0.1})
    message = "stage axis = 'b' is not allowed; allowed values: 'x', 'y', 'z', 'a'"
    with pytest.raises(ValueError, match=message):
        tem.move_stage({"b": 0.1})
    assert tem.acquire_camera_image("BM-Ceta", 64, 0.1)["data"].shape == (64, 64)
