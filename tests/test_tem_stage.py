"""The TEM stage: landing errors, backlash, move times and drift, against the hardware's numbers."""

import numpy as np
import pytest

from twin.instruments.clock import Clock
from twin.instruments.tem.hardware import TemHardware
from twin.instruments.tem.stage import Stage


def _landing_errors(step: float, moves: int = 400) -> np.ndarray:
    """Where the specimen ends up minus where it was, less the commanded step, for forward moves."""
    stage, errors = Stage(TemHardware(), Clock(), seed=3), []
    stage.move({"x": -0.9e-3})
    stage.move({"x": -0.89e-3})  # the axis has moved forward: no backlash from here on
    for _ in range(moves):
        before = stage.specimen_offset(drift=False)[0]
        stage.move({"x": step}, relative=True)
        errors.append(stage.specimen_offset(drift=False)[0] - before)
    return np.array(errors)


def test_long_moves_land_with_the_rms_error_and_jogs_with_a_proportional_one() -> None:
    hardware = TemHardware()
    # a fresh error each time: the difference of two consecutive errors has sqrt(2) sigma
    assert np.std(_landing_errors(4e-6)) == pytest.approx(np.sqrt(2) * hardware.stage_error, rel=0.15)
    jog = 2e-9  # a 2 nm jog adds 2e-9 / 1e-6 of the RMS error: sub-angstrom
    assert np.std(_landing_errors(jog)) == pytest.approx(hardware.stage_error * jog / 1e-6, rel=0.15)


def test_reversing_loses_the_backlash_but_never_moves_backwards() -> None:
    hardware = TemHardware()
    stage = Stage(hardware, Clock(), seed=1)
    stage.move({"x": 5e-6})
    before = stage.specimen_offset(drift=False)[0] + 5e-6
    stage.move({"x": -5e-9}, relative=True)  # a 5 nm reversal, smaller than the 50 nm backlash
    after = stage.specimen_offset(drift=False)[0] + stage.position()["x"]
    jog_error = hardware.stage_error * 5e-9 / 1e-6
    assert abs(after - before) < 5 * jog_error  # the slack is taken up; the specimen stays put
    stage.move({"x": 0.0})  # a long reversal back: falls short by the full backlash
    landed = stage.specimen_offset(drift=False)[0]
    assert landed == pytest.approx(hardware.stage_backlash, abs=5 * hardware.stage_error)


def test_a_safe_move_tilts_out_translates_and_tilts_in() -> None:
    hardware = TemHardware()
    clock = Clock()
    stage = Stage(hardware, clock, seed=0)
    stage.move({"a": 0.2})
    start = clock.now()
    stage.move({"x": 50e-6, "a": 0.3}, safe=True)
    xy_speed, tilt_speed = hardware.stage_speeds[0], hardware.stage_speeds[3]
    assert clock.now() - start == pytest.approx(0.2 / tilt_speed + 50e-6 / xy_speed + 0.3 / tilt_speed)
    start = clock.now()
    stage.move({"x": 0.0, "a": 0.0})  # axes move together: the slowest decides
    assert clock.now() - start == pytest.approx(max(50e-6 / xy_speed, 0.3 / tilt_speed))


def test_the_specimen_drifts_at_the_hardware_rate() -> None:
    hardware, clock = TemHardware(), Clock()
    stage = Stage(hardware, clock, seed=5)
    clock.advance(60.0)
    assert np.hypot(*stage.specimen_offset(errors=False)) == pytest.approx(60.0 * hardware.drift_rate)


def test_a_jog_moves_with_instrument_time_and_each_frame_sees_its_own_tilt() -> None:
    """A continuous-tilt series: alpha turns at 1.5 deg/s; camera frames of 0.5 s each are taken at tilts
    1.5 deg/s x 0.5 s apart (the stage reading at each frame's start), and a move waits for the stop."""
    from twin.digital_twin import DigitalTwin

    tem = DigitalTwin.build("graphene", 3).tem
    tem.set("optics.magnification", 285_000.0)
    rate = np.radians(1.5)  # rad/s
    tem.stage.start_jogging({"a": rate})
    assert tem.stage.is_moving
    tilts, times = [], []
    for _ in range(4):
        times.append(tem.clock.now())
        metadata = tem.acquire_camera_image("BM-Ceta", 256, 0.5)["metadata"]
        tilts.append(metadata["stage_settings"]["stage_position"]["a"])
    assert np.allclose(np.diff(tilts), rate * 0.5, rtol=1e-9)
    assert np.allclose(tilts, rate * (np.array(times) - times[0]), atol=1e-12)
    with pytest.raises(RuntimeError, match="the stage is jogging; stop_jogging"):
        tem.move_stage({"x": 1e-6})
    tem.stage.stop_jogging()
    stopped = tem.stage.position()["a"]
    tem.acquire_camera_image("BM-Ceta", 256, 0.5)
    assert tem.stage.position()["a"] == stopped and not tem.stage.is_moving
    tem.stage.start_jogging({"a": 0.087})  # the fastest: it reaches the limit and stops there
    tem.clock.advance(60.0)
    assert tem.stage.position()["a"] == pytest.approx(tem.stage.limits("a")[1]) and not tem.stage.is_moving
    too_fast = r"velocity a = 1\.0 is out of range; allowed -0\.087 to 0\.087 rad/s"
    with pytest.raises(ValueError, match=too_fast):
        tem.stage.start_jogging({"a": 1.0})
