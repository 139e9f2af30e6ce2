"""The Nanosurf scripting members the vendor's demos and lab scripts use: spectroscopy set-up (repetition
order, pauses, start offset, an empty list measuring where the tip is, free air before approach,
refusals of what is not simulated), the stage (reference, zero, speed, lock, stop), gallery numbering
with [INDEX], the optical camera and the System node."""

from __future__ import annotations

import time

import numpy as np
import pytest
from matplotlib import image as mpl_image

from twin.digital_twin import DigitalTwin
from twin.instruments.afm.vocabulary import SpecGroupNo, SpecRepetitionMode


def approached(seed: int = 1) -> DigitalTwin:
    twin = DigitalTwin.build("graphene-defects", seed=seed)
    twin.afm.set("Spec.FwdModDataPoints", 64)
    twin.afm.set("Spec.BwdModDataPoints", 64)
    twin.afm.start_approach()
    return twin


def curve(afm, line: int, group: int = SpecGroupNo.Forward, channel: int = 1) -> np.ndarray:
    return np.array(afm.spec.get_line(group, channel, line))


@pytest.mark.parametrize(("mode", "order"), [(SpecRepetitionMode.Position, [0, 0, 1, 1]),
                                             (SpecRepetitionMode.List, [0, 1, 0, 1])])
def test_repetition_measures_positions_in_the_vendor_s_order(mode, order) -> None:
    afm = approached().afm
    afm.spec.add_position(0.0, 0.0)
    afm.spec.add_position(30e-9, 20e-9)
    afm.set("Spec.Repetition", 2)
    afm.set("Spec.RepetitionMode", mode)
    afm.start_spec()
    assert afm.spec.current_line() == 4
    z = [curve(afm, k) for k in range(4)]  # z (m): the contact height of each position plus the travel
    for a in range(4):
        for b in range(4):
            assert np.array_equal(z[a], z[b]) == (order[a] == order[b]), (a, b)


def test_an_empty_list_measures_at_the_frame_centre_and_the_offset_lifts_the_curve() -> None:
    afm = approached().afm
    afm.set("Scan.CenterPosX", 12e-9)
    afm.start_spec()  # no position: where the tip rests, the frame's centre
    here = curve(afm, 0)
    afm.spec.add_position(12e-9, 0.0)
    afm.set("Spec.StartOffset", 40e-9)
    afm.start_spec()
    assert np.allclose(curve(afm, 0), here + 40e-9, rtol=0, atol=1e-15)


def test_pauses_record_their_points_and_a_missing_pause_says_so() -> None:
    afm = approached().afm
    afm.set("Spec.FwdPauseDataPoints", 10)
    afm.set("Spec.FwdPauseTime", 0.2)
    afm.start_spec()
    pause = curve(afm, 0, SpecGroupNo.ForwardPause, 0)
    assert len(pause) == 10 and np.all(pause == curve(afm, 0, SpecGroupNo.Forward, 0)[-1])  # z held
    with pytest.raises(ValueError, match="BwdPauseDataPoints was 0"):
        curve(afm, 0, SpecGroupNo.BackwardPause)


def test_before_approach_curves_and_frames_are_measured_in_free_air() -> None:
    afm = DigitalTwin.build("graphene-defects", seed=1).afm
    afm.start_spec()
    assert np.all(curve(afm, 0, SpecGroupNo.Forward, 0) == 0.0)  # no contact: the lever never bends
    afm.set("Scan.Points", 32)
    afm.set("Scan.Lines", 8)
    afm.start_frame_up()
    frame = afm.get_frame(0, 1)
    assert frame["metadata"]["twin"]["simulation"] == "free air"
    assert np.allclose(frame["data"], -afm.hardware.z_range / 2, atol=1e-10)  # the piezo at its limit
    amplitude = afm.get_frame(0, 0)["data"]
    assert abs(float(np.mean(amplitude)) - 100.0) < 0.5  # dynamic mode: the free amplitude, 100 %


def test_what_the_spectroscopy_does_not_simulate_is_refused_by_name() -> None:
    afm = approached().afm
    afm.set("Spec.ModulatedOutput", 1)
    with pytest.raises(ValueError, match=r"allowed: 0 \(ZAxis\)"):
        afm.start_spec()
    afm.set("Spec.ModulatedOutput", 0)
    afm.set("Spec.FwdModulationMode", 1)
    with pytest.raises(ValueError, match="StopByValue is not simulated"):
        afm.start_spec()


def test_stage_reference_zero_speed_and_lock() -> None:
    afm = DigitalTwin.build("graphene", seed=1).afm
    motion = afm.motion
    motion.append_to_move_transaction(0, 100e-6, True)
    motion.commit_move_transaction()
    motion.set_axis_zero(0)
    assert motion.axis_position(0) == 0.0 and motion.axis_zero(0) == pytest.approx(100e-6)
    motion.set_speed_percent(25)
    started = afm.clock.now()
    motion.append_to_move_transaction(0, 50e-6, False)  # absolute: 50 µm from the new zero
    motion.commit_move_transaction()
    assert afm.clock.now() - started == pytest.approx(50e-6 / (afm.hardware.stage_speed * 0.25))
    assert motion.axis_position(0) == pytest.approx(50e-6)
    motion.set_locked(True)
    with pytest.raises(RuntimeError, match="locked"):
        motion.commit_move_transaction()
    motion.set_locked(False)
    motion.reference_search()
    assert motion.axis_position(0) == 0.0 and motion.axis_zero(0) == 0.0 and motion.is_referenced()


def test_stop_halts_a_stage_move_part_way() -> None:
    twin = DigitalTwin.build("graphene", seed=1, time_scale=0.01)  # an instrument second: 10 ms
    motion = twin.afm.motion
    motion.set_speed_percent(1)  # 1 mm: 100 s of instrument time, 1 s of wall
    motion.append_to_move_transaction(0, 1e-3, True)
    motion.commit_move_transaction()
    time.sleep(0.3)
    motion.stop_stage()
    assert 0.1e-3 < motion.axis_position(0) < 0.9e-3
    assert motion.stage_state() == 2  # Idle


def test_gallery_numbers_video_and_system_through_the_client(spm, server_files) -> None:
    app = spm.application
    app.SetGalleryHistoryDirectoryPath("numbered")
    app.SetGalleryHistoryFilenameMask("run_[INDEX]_topo")
    app.SetGalleryHistoryFilenameIndex(7)
    app.Approach.StartApproach()
    scan = app.Scan
    scan.Points = scan.Lines = 16
    scan.AutoCapture = False  # whatever an earlier script on the shared server left
    scan.StartFrameUp()
    paths = scan.StartCapture()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["run_0007_topo.gwy", "run_0007_topo.nc"]
    app.SetGalleryHistoryFilenameIndex(0)  # as the next script on the shared server expects
    assert app.GetGalleryHistoryDirectoryPath == "numbered" == app.GetGalleryHistoryDirectoryPath()
    app.Video.VideoSource = spm.VideoSource.TopView
    assert app.Video.SaveFrame("camera/top.png") is True
    written = list(server_files.rglob("camera/top.png"))
    assert len(written) == 1 and mpl_image.imread(written[0]).shape[:2] == (480, 640)
    with pytest.raises(ValueError, match="allowed suffixes"):
        app.Video.SaveFrame("top.exe")
    app.System.SystemStateIdleZAxisMode = spm.SystemZAxisIdleMode.RetractTip
    assert app.System.SystemStateIdleZAxisMode == 1
    app.System.SystemStateIdleZAxisMode = spm.SystemZAxisIdleMode.ZControllerActive
    app.System.MotorStop()
    with pytest.raises(ValueError, match="not simulated"):
        app.System.GetMotorPosition(spm.SystemMotorID.Approach)
    stage = app.Stage
    assert stage.GetAxisName(1) == "Y" and stage.GetAxisUnit(0) == "m" and stage.GetAxisRange(0) == 2e-3
    assert stage.GetState == spm.StageState.Idle == stage.GetState()


@pytest.mark.parametrize(("resonance", "quality"), [(190e3, 400.0), (72e3, 150.0)])
def test_a_frequency_sweep_shows_the_resonance_and_q_that_were_set(spm, resonance, quality) -> None:
    """Through Studio's ``probe.frequency_sweep``: the amplitude peaks at the set resonance (to the step),
    its half-power width is f0/Q (the set Q within 5 %), and the phase passes -90 deg there."""
    from clients.afm import Studio

    spm.twin._afm.set("twin.resonance_frequency", resonance)
    spm.twin._afm.set("twin.quality_factor", quality)
    try:
        spm.application.Approach.StartWithdraw()  # a sweep measures the free lever
        session = Studio("127.0.0.1", spm._connected.port).select_measurement_session()
        sweep = session.workflow.probe.frequency_sweep
        width = resonance / quality
        sweep.sweep_frequency_lower_bound = resonance - 10 * width
        sweep.sweep_frequency_upper_bound = resonance + 10 * width
        sweep.sweep_frequency_step = width / 50
        sweep.run()
        assert sweep.new_excitation_frequency == pytest.approx(resonance, abs=sweep.sweep_frequency_step)
        power = sweep.amplitude**2
        band = sweep.frequencies[power >= power.max() / 2]
        assert (band[-1] - band[0]) == pytest.approx(width, rel=0.05)
        assert np.interp(resonance, sweep.frequencies, sweep.phase) == pytest.approx(-90.0, abs=2.0)
    finally:
        spm.twin._afm.set("twin.resonance_frequency", 190e3)
        spm.twin._afm.set("twin.quality_factor", 400.0)
