"""The channels beside topography and the scanner's own errors, checked against their physics: tapping
phase from dissipation, friction loops, the bias's electrostatic lift, line offsets and piezo creep."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_afm_feedback import _instrument, _shift
from twin.instruments.afm import OperatingMode, ScanChannel
from twin.instruments.afm.materials import PRISTINE, SPECIES_CONTACT
from twin.physics.afm import electrostatic_lift, piezo_creep, tapping_phase
from twin.sample import Window

NM = 1e-9


def _frame_over(afm, x: float, y: float):
    afm.set("Scan.CenterPosX", x)
    afm.set("Scan.CenterPosY", y)
    afm.start_frame_up()
    return afm._frame


def _defect_free(afm, x: float, y: float, size: float = 5.5 * NM) -> tuple[float, float]:
    """A point near ``(x, y)`` (m) with no defect within ``size`` of it."""
    for dx in np.arange(1, 200) * size:
        if not afm.sample.defects_in_window(Window.around(x + dx, y, 2 * size, 2 * size)):
            return x + dx, y
    raise AssertionError("no defect-free spot nearby")


def _pixel_of(frame, x: float, y: float) -> tuple[int, int]:
    return int(np.argmin(np.abs(frame.y - y))), int(np.argmin(np.abs(frame.x - x)))


def test_tapping_phase_is_ninety_degrees_free_and_follows_the_energy_balance():
    assert tapping_phase(10 * NM, 10 * NM, 0.0, 400, 40) == pytest.approx(90.0)
    sine = 0.7 + 400 * 1e-19 / (np.pi * 40 * 7 * NM * 10 * NM)
    assert tapping_phase(7 * NM, 10 * NM, 1e-19, 400, 40) == pytest.approx(180 - np.degrees(np.arcsin(sine)))


def test_phase_shows_a_dopant_by_the_energy_it_dissipates():
    """Dynamic mode, ideal feedback (amplitude at the setpoint everywhere): the lattice's phase is the
    energy balance's for the pristine contact, the Si dopant's peak the one for silicon's adhesion."""
    afm, silicon = _instrument()
    afm.set("twin.ideal_feedback", True)
    afm.set("twin.tip_radius", 1 * NM)
    afm.set("Scan.Points", 128)
    afm.set("Scan.Lines", 128)
    frame = _frame_over(afm, silicon.x, silicon.y)
    phase = frame.data[ScanChannel.Phase, 0].astype(float)
    hw, radius = afm.hardware, 1 * NM

    def expected(contact) -> float:
        return float(tapping_phase(0.7 * hw.free_amplitude, hw.free_amplitude, contact.dissipation(radius),
                                   hw.quality_factor, hw.tapping_spring_constant))

    row, col = _pixel_of(frame, silicon.x, silicon.y)
    assert np.median(phase) == pytest.approx(expected(PRISTINE), abs=0.01)
    dopant = phase[row - 1:row + 2, col - 1:col + 2].mean()  # more dissipation: closer to 90 degrees
    contrast = expected(SPECIES_CONTACT["Si"]) - expected(PRISTINE)
    assert dopant - expected(PRISTINE) == pytest.approx(contrast, rel=0.15)
    assert abs(contrast) > 5 * hw.phase_noise


def test_friction_loops_open_by_twice_the_friction_and_flip_with_direction():
    afm, silicon = _instrument()
    afm.set("OperatingMode.OperatingMode", OperatingMode.LateralForce)
    afm.set("ZController.SetPoint", 0.2)  # V of deflection: 2 nN
    afm.set("twin.ideal_feedback", True)
    frame = _frame_over(afm, *_defect_free(afm, silicon.x, silicon.y))
    forward, backward = (frame.data[ScanChannel.LateralForce, g].astype(float) for g in (0, 1))
    state = afm.settings.snapshot()
    load = 0.2 * 50e-9 * 0.2  # Hooke: 0.2 N/m x 50 nm/V x 0.2 V of deflection (the lever's datasheet)
    adhesion = PRISTINE.hamaker * state["twin.tip_radius"] / (6 * PRISTINE.a0**2)  # sphere on a plane
    half_width = np.median(forward - backward) / 2 * afm.hardware.lateral_sensitivity
    assert half_width == pytest.approx(PRISTINE.friction * (load + adhesion), rel=0.02)
    # the mean of both traces is the slope term: it follows the topography's gradient along the line
    topography = frame.data[ScanChannel.Topography, 0].astype(float)
    slope = np.gradient(topography, frame.x, axis=1)
    crosstalk = (forward + backward) / 2 * afm.hardware.lateral_sensitivity / (load + adhesion)
    assert np.corrcoef(crosstalk[:, 2:-2].ravel(), slope[:, 2:-2].ravel())[0, 1] > 0.8
    on_dopant = _frame_over(afm, silicon.x, silicon.y)
    row, col = _pixel_of(on_dopant, silicon.x, silicon.y)
    loop = (on_dopant.data[ScanChannel.LateralForce, 0] - on_dopant.data[ScanChannel.LateralForce, 1]) / 2
    assert loop[row - 1:row + 2, col - 1:col + 2].max() > 2 * np.median(loop)  # Si: more friction


def test_no_friction_signal_while_tapping():
    afm, silicon = _instrument()
    frame = _frame_over(afm, silicon.x, silicon.y)
    lateral = frame.data[ScanChannel.LateralForce].astype(float)
    assert np.abs(lateral).max() < 6 * afm.hardware.lateral_noise


def test_tip_bias_lifts_a_tapping_tip_by_the_electrostatic_detuning():
    afm, silicon = _instrument()
    afm.set("twin.ideal_feedback", True)
    x, y = _defect_free(afm, silicon.x, silicon.y)
    unbiased = _frame_over(afm, x, y).data[ScanChannel.Topography, 0].astype(float)
    afm.set("ZController.TipVoltage", 8.0)
    biased = _frame_over(afm, x, y).data[ScanChannel.Topography, 0].astype(float)
    hw, radius = afm.hardware, afm.settings.get("twin.tip_radius")
    lift = float(electrostatic_lift(8.0, 0.0, radius, hw.free_amplitude, hw.tapping_spring_constant,
                                    hw.quality_factor))
    assert lift > 0.1 * NM
    assert np.median(biased - unbiased) == pytest.approx(lift, rel=0.02)


def test_the_bias_adds_electrostatic_load_in_contact():
    afm, _ = _instrument()
    afm.set("OperatingMode.OperatingMode", OperatingMode.StaticAFM)
    unbiased = afm.load(afm.settings.snapshot())
    afm.set("ZController.TipVoltage", 5.0)
    radius = afm.settings.get("twin.tip_radius")
    added = np.pi * 8.854e-12 * radius * 25 / PRISTINE.a0
    assert afm.load(afm.settings.snapshot()) - unbiased == pytest.approx(added, rel=1e-3)


def test_line_offsets_have_the_set_rms():
    afm, silicon = _instrument()
    afm.set("twin.ideal_feedback", True)
    afm.set("Scan.Lines", 256)
    clean = _frame_over(afm, silicon.x, silicon.y).data[ScanChannel.Topography, 0].astype(float)
    afm.set("twin.line_offset", 50e-12)
    offset = _frame_over(afm, silicon.x, silicon.y).data[ScanChannel.Topography, 0].astype(float)
    steps = (offset - clean).mean(axis=1)
    assert np.allclose(offset - clean, steps[:, None], atol=1e-13)  # constant along each line
    assert steps.std() == pytest.approx(50e-12, rel=0.15)


def test_piezo_creep_after_an_offset_step_moves_the_image_as_logarithmic_creep_predicts():
    """After a 300 nm step of CenterPosX, two consecutive frames see the scanner still creeping towards
    its target: a feature moves between them by the difference of the creep law at their mid-times."""
    afm, silicon = _instrument()
    afm.set("twin.ideal_feedback", True)
    afm.set("Scan.Lines", 128)
    afm.set("Scan.Scantime", 0.2)
    for name, value in (("Scan.ImageWidth", 12 * NM), ("Scan.ImageHeight", 12 * NM)):
        afm.set(name, value)
    afm.set("twin.piezo_creep", 0.01)
    afm.set("Scan.CenterPosX", silicon.x - 300 * NM)
    afm.set("Scan.CenterPosY", silicon.y)
    afm.clock.advance(1e6)  # long settled there
    afm.set("Scan.CenterPosX", silicon.x)
    stepped = afm.clock.now()
    afm.clock.advance(30.0)
    first = _frame_over(afm, silicon.x, silicon.y)
    second = _frame_over(afm, silicon.x, silicon.y)
    pixel = first.x[1] - first.x[0]
    moved = _shift(second.data[1, 0].astype(float), first.data[1, 0].astype(float), pixel, 0.3 * NM)
    mid = [f.metadata["acquisition"]["instrument_time"] + 64 * 0.2 - stepped for f in (first, second)]
    lag = piezo_creep(np.array(mid), [(0.0, 300 * NM, 0.0)], 0.01, afm.hardware.creep_settling,
                      afm.hardware.creep_onset)
    expected = -(lag[1] - lag[0])  # a feature appears where the lagging scanner reaches it
    assert expected[0] < -3 * pixel
    assert moved == pytest.approx(expected, abs=0.25 * pixel + 0.1 * abs(expected[0]))


def test_continuous_frames_follow_each_other_in_real_time():
    """At time scale 1 a look after several frame times shows the frame running now, started on the
    boundary where it would have, in the direction the alternation gives it."""
    import time

    from twin.instruments.afm import AfmInstrument
    from twin.instruments.clock import Clock
    from twin.sample import build_sample

    afm = AfmInstrument(build_sample("graphene", 1), Clock(1.0), seed=0)
    for name, value in (("Scan.Points", 8), ("Scan.Lines", 4), ("Scan.Scantime", 0.25),
                        ("Scan.ImageWidth", 2 * NM), ("Scan.ImageHeight", 2 * NM)):
        afm.set(name, value)
    afm.motion.start_approach(None)
    time.sleep(afm.hardware.approach_duration + 0.1)
    afm.start()
    first = afm._frame
    time.sleep(2.6)  # 2.6 frames of 1 s
    assert afm.is_scanning()
    now = afm._frame
    assert now.started - first.started == pytest.approx(2.0, abs=1e-9)
    times = [f.metadata["acquisition"]["instrument_time"] for f in (first, now)]
    assert times[1] - times[0] == pytest.approx(2.0, abs=1e-9)
    assert now.metadata["acquisition"]["direction"] == "up"  # up, down, up
    assert afm.current_line() in (2, 3)  # 0.6 s into it
    afm.stop()
    assert not afm.is_scanning()
