"""Auto functions work from images (never the hidden state) and converge as the instrument's do."""

from __future__ import annotations

import numpy as np
import pytest

from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.instruments.tem.autofunctions import image_shift
from twin.sample import build_sample


def _true_aberrations(instrument: TemInstrument):
    return instrument.aberrations(instrument.settings.snapshot())


def test_image_shift_is_unbiased_at_sub_pixel_shifts():
    rng = np.random.default_rng(0)
    scene = np.fft.ifft2(np.fft.fft2(rng.random((128, 128))) * np.exp(-np.hypot(*np.meshgrid(
        np.fft.fftfreq(128), np.fft.fftfreq(128))) ** 2 / 0.02)).real
    k = np.fft.fftfreq(128)
    for dx, dy in ((0.3, -0.2), (1.7, 0.45)):
        ramp = np.exp(-2j * np.pi * (k[None, :] * dx + k[:, None] * dy))
        moved = np.fft.ifft2(np.fft.fft2(scene) * ramp).real
        assert image_shift(moved, scene, 1.0, 3.0) == pytest.approx([dx, dy], abs=0.02)


@pytest.mark.slow
def test_beam_tilt_autofocus_and_stigmation_converge_from_100_nm_off():
    instrument = TemInstrument(build_sample("graphene-defects", 3), Clock(0.0), seed=0)
    instrument.set("twin.focus_offset", -100e-9)  # the specimen is 100 nm out of focus
    instrument.set("twin.objective_astigmatism", (8e-9, -5e-9))
    settings = {"camera": "BM-Ceta", "size": 512, "exposure_time": 1.0, "auto_stigmate": True}
    result = instrument.run_auto_function("beam_tilt_auto_focus", settings)
    truth = _true_aberrations(instrument)
    assert abs(truth.C10) < 5e-9 and truth.C12 < 2e-9
    assert np.hypot(*result["drift"]) == pytest.approx(instrument.hardware.drift_rate, rel=0.2)


@pytest.mark.slow
def test_stem_autofocus_converges_from_100_nm_off():
    instrument = TemInstrument(build_sample("graphene-defects", 3), Clock(0.0), seed=0)
    instrument.set("optics.optical_mode", "Stem")
    instrument.set("optics.scan_field_of_view", 6e-9)
    instrument.set("twin.focus_offset", -100e-9)
    instrument.run_auto_function("stem_auto_focus", {"detector": "HAADF", "size": 128, "dwell_time": 4e-6})
    assert abs(_true_aberrations(instrument).C10) < 5e-9


def test_auto_function_settings_are_checked_first():
    instrument = TemInstrument(build_sample("graphene-defects", 3), Clock(0.0), seed=0)
    with pytest.raises(ValueError, match="stem_auto_focus setting = 'dwell' is not allowed; allowed values: "
                                         "'detector', 'size', 'dwell_time'"):
        instrument.run_auto_function("stem_auto_focus", {"detector": "HAADF", "size": 64, "dwell": 1e-6})
    with pytest.raises(ValueError, match="auto function = 'coma' is not allowed"):
        instrument.run_auto_function("coma", {})
    assert instrument._frames == 0
