"""What makes AFM hard, checked against geometry and control theory: double tips, the tip's cone, the
z-loop's lag and ringing, and thermal drift between frames."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.physics.afm import Contact, Feedback, Tip, force_curve, thermal_drift, tip_dilation
from twin.sample import Window, build_sample

NM = 1e-9


def _bump_centroid(profile: np.ndarray, x: np.ndarray) -> float:
    """Centre (m) of a bump on a flat baseline: the weighted mean of what rises above the median."""
    rise = np.clip(profile - np.median(profile), 0.0, None)
    return float(np.sum(rise * x) / np.sum(rise))


def test_a_double_tip_shows_every_feature_twice_at_the_apex_separation():
    pixel, n = 0.1 * NM, 400
    surface = np.zeros((n, n))
    surface[200, 150] = 1 * NM  # one sharp spike
    offset = (12 * NM, -5 * NM)  # second apex, 0.2 nm higher than the first
    image = tip_dilation(surface, pixel, Tip(2 * NM, np.radians(20), ((*offset, 0.2 * NM),)))
    first = np.unravel_index(np.argmax(image), image.shape)
    assert first == (200, 150)
    ghost = image.copy()
    ghost[150:250, 100:200] = 0.0
    second = np.unravel_index(np.argmax(ghost), ghost.shape)
    # with the main apex at r, the second apex touches the spike when r + offset is the spike
    assert second == (200 - round(offset[1] / pixel), 150 - round(offset[0] / pixel))
    assert image[second] == pytest.approx(1 * NM - 0.2 * NM, abs=1e-15)


def test_the_cone_widens_tall_features_beyond_the_paraboloid():
    """A 200 nm pillar seen through R = 5 nm, 20° half-angle: below the cap (19 nm) the flank is the
    cone's, so the width at depth h under the top is 2 (r0 + (h - h0) tan(angle)), r0 = R / tan(angle)."""
    pixel, n = 1 * NM, 301
    surface = np.zeros((n, n))
    surface[150, 150] = 200 * NM
    tip = Tip(5 * NM, np.radians(20))
    image = tip_dilation(surface, pixel, tip)
    r0 = tip.cone_start
    h0 = r0**2 / (2 * tip.radius)
    depth = 180 * NM
    expected = 2 * (r0 + (depth - h0) * np.tan(tip.cone_half_angle))
    measured = np.count_nonzero(image[150] >= 200 * NM - depth) * pixel
    assert measured == pytest.approx(expected, abs=3 * pixel)
    paraboloid_only = 2 * np.sqrt(2 * tip.radius * depth)
    assert measured > 1.3 * paraboloid_only  # the cone, not the apex, sets the width this deep


def test_a_tuned_loop_tracks_a_step_and_a_slow_one_lags_by_speed_over_gain():
    speed, step = 100 * NM, 0.05 * NM  # m/s along the line, m between samples
    x = np.arange(6000) * step
    edge = np.where(x > 100 * NM, 1 * NM, 0.0)
    tuned = Feedback(0.31, 3500.0)
    z = tuned.track(edge[None, :], step / speed)[0]
    settled = x > 100 * NM + 5 * speed / tuned.integral  # five loop time constants after the edge
    assert np.abs(z[settled] - edge[settled]).max() < 0.01 * NM
    assert z.max() < 1.01 * NM  # no overshoot
    slow = Feedback(0.31, 20.0)
    ramp = np.clip(x - 100 * NM, 0.0, None) * 0.05
    lag = (ramp - slow.track(ramp[None, :], step / speed)[0])[-1] / 0.05  # lateral lag on the ramp
    assert lag == pytest.approx(speed / slow.integral, rel=0.01)


def test_high_gains_ring_and_too_high_gains_oscillate():
    step, speed = 0.002 * NM, 100 * NM  # 20 µs between samples: the ringing is resolved
    edge = np.where(np.arange(20000) > 1000, 1 * NM, 0.0)
    overshoot = {}
    for integral in (3500.0, 12000.0):
        z = Feedback(0.0, integral).track(edge[None, :], step / speed)[0]
        overshoot[integral] = z.max() / (1 * NM) - 1
    assert overshoot[3500.0] < 0.1 < overshoot[12000.0]
    unstable = Feedback(0.31, 50_000.0)
    assert not unstable.is_stable()
    z = unstable.track(edge[None, :], step / speed, z_range=2e-6)[0]
    assert np.abs(z).max() == pytest.approx(1e-6)  # the actuator saturates


def _dopant_frame(afm: AfmInstrument, silicon, *, scantime: float = 0.5) -> np.ndarray:
    afm.set("Scan.CenterPosX", silicon.x)
    afm.set("Scan.CenterPosY", silicon.y)
    afm.set("Scan.Scantime", scantime)
    afm.start_frame_up()
    return afm._frame


def _instrument() -> tuple[AfmInstrument, object]:
    sample = build_sample("graphene-defects", 5)
    silicon = next(d for d in sample.defects_in_window(Window(-200 * NM, -200 * NM, 200 * NM, 200 * NM))
                   if d.species == "Si")
    afm = AfmInstrument(sample, Clock(0.0), seed=0)
    afm.set("twin.z_noise", 0.0)
    afm.set("twin.drift_velocity", (0.0, 0.0))
    afm.set("twin.piezo_creep", 0.0)
    afm.set("twin.line_offset", 0.0)
    for name, value in (("Scan.ImageWidth", 6 * NM), ("Scan.ImageHeight", 6 * NM), ("Scan.Points", 128),
                        ("Scan.Lines", 32)):
        afm.set(name, value)
    afm.start_approach()
    return afm, silicon


def _shift(moved: np.ndarray, reference: np.ndarray, pixel: float, smoothing: float, reach: int = 20
           ) -> np.ndarray:
    """How far (m; x, y) ``moved`` is displaced from ``reference``: the best normalised correlation of
    ``moved``'s core with ``reference`` shifted by up to ``reach`` pixels, after smoothing away the
    lattice (``smoothing`` m), refined by a parabola through the best shift on each axis."""
    a, b = (ndimage.gaussian_filter(f, smoothing / pixel) for f in (moved, reference))
    n_rows, n_cols = a.shape
    core = a[reach:n_rows - reach, reach:n_cols - reach]
    core = core - core.mean()
    scores = np.empty((2 * reach + 1, 2 * reach + 1))
    for i, dy in enumerate(range(-reach, reach + 1)):
        for j, dx in enumerate(range(-reach, reach + 1)):
            part = b[reach - dy:n_rows - reach - dy, reach - dx:n_cols - reach - dx]
            part = part - part.mean()
            scores[i, j] = np.sum(core * part) / np.sqrt(np.sum(part**2))
    i, j = np.unravel_index(np.argmax(scores), scores.shape)
    shift = []
    for lo, mid, hi, best in ((scores[i, j - 1], scores[i, j], scores[i, j + 1], j),
                              (scores[i - 1, j], scores[i, j], scores[i + 1, j], i)):
        shift.append(best - reach + 0.5 * (lo - hi) / (lo - 2 * mid + hi))
    return np.array(shift) * pixel


def test_a_low_gain_loop_shifts_forward_and_backward_traces_apart_by_twice_the_lag():
    """The ripples are smooth on the scale of the lag, so the loop's delay of 1/IGain shows as a lateral
    lag v/IGain each way (features much finer than the lag are smeared and delayed less)."""
    afm, silicon = _instrument()
    for name, value in (("Scan.ImageWidth", 30 * NM), ("Scan.ImageHeight", 30 * NM), ("Scan.Points", 256),
                        ("Scan.Lines", 256)):
        afm.set(name, value)
    for gain in (100.0, 3500.0):
        afm.set("ZController.IGain", gain)
        frame = _dopant_frame(afm, silicon, scantime=3.0)  # 0.2 nm of lag at the low gain
        speed = frame.metadata["twin"]["tip_speed"]
        pixel = frame.x[1] - frame.x[0]
        forward, backward = (frame.data[1, g].astype(float) for g in (0, 1))
        dx, dy = _shift(forward, backward, pixel, 2 * NM)
        assert dx == pytest.approx(2 * speed / gain, rel=0.05, abs=0.1 * pixel)
        assert abs(dy) < 0.2 * pixel


def test_drift_moves_a_feature_between_frames_by_drift_times_time():
    afm, silicon = _instrument()
    velocity = (0.05 * NM, -0.025 * NM)  # m/s
    afm.set("twin.drift_velocity", velocity)
    afm.set("twin.ideal_feedback", True)
    for name, value in (("Scan.ImageWidth", 12 * NM), ("Scan.ImageHeight", 12 * NM), ("Scan.Lines", 128)):
        afm.set(name, value)
    first = _dopant_frame(afm, silicon, scantime=0.2)
    second = _dopant_frame(afm, silicon, scantime=0.2)
    started = [f.metadata["acquisition"]["instrument_time"] for f in (first, second)]
    assert started[1] - started[0] == pytest.approx(128 * 0.2)  # one frame of instrument time
    # The feature moves by drift x time; it also lands on another line of the upward scan, which is
    # scanned earlier or later: dy = v_y (T + dy t_line / pitch), then dx = v_x (T + dy t_line / pitch).
    frame_time, line_time, pitch = started[1] - started[0], 0.2, first.y[1] - first.y[0]
    assert np.allclose(thermal_drift(np.array([frame_time]), velocity, afm.hardware.drift_settling),
                       np.array(velocity) * frame_time, rtol=0.01)  # far from settled: still linear
    dy = velocity[1] * frame_time / (1 - velocity[1] * line_time / pitch)
    expected = np.array([velocity[0] * (frame_time + dy * line_time / pitch), dy])
    pixel = first.x[1] - first.x[0]
    moved = _shift(second.data[1, 0].astype(float), first.data[1, 0].astype(float), pixel, 0.3 * NM)
    assert moved == pytest.approx(expected, abs=0.2 * pixel)
    assert np.hypot(*expected) > 1 * NM


def test_the_setpoint_range_follows_the_operating_mode_and_errors_change_nothing():
    afm, _ = _instrument()
    modes = afm.describe()["operating_modes"]
    assert modes["DynamicAFM"] == 3 and modes["LateralForce"] == 9
    with pytest.raises(ValueError, match=r"ZController.SetPoint = 150 is out of range; allowed 0 to 100 %"):
        afm.set("ZController.SetPoint", 150)
    afm.set("OperatingMode.OperatingMode", 2)  # StaticAFM: volts of deflection
    assert afm.settings.get("ZController.SetPoint") == 1.0  # 70 % is no deflection: the mode's default
    afm.set("ZController.SetPoint", -2.0)
    allowed = r"2 \(StaticAFM\), 3 \(DynamicAFM\), 4 \(PhaseContrast\), 9 \(LateralForce\)"
    message = "OperatingMode.OperatingMode = 1 is not simulated here; allowed: " + allowed
    with pytest.raises(ValueError, match=message):
        afm.set("OperatingMode.OperatingMode", 1)
    assert afm.settings.get("OperatingMode.OperatingMode") == 2
    assert afm.settings.get("ZController.SetPoint") == -2.0


def test_force_curves_snap_in_pull_off_at_the_adhesion_and_differ_on_a_dopant():
    """DMT: the retracting tip leaves the surface when the spring's pull matches the adhesion
    H R / (6 a0²); on approach it snaps in where the force gradient first exceeds k."""
    contact, radius, k = Contact(), 10 * NM, 0.2
    z = np.linspace(15 * NM, -2 * NM, 700)
    approach = force_curve(z, contact, radius, k, approaching=True)
    retract = force_curve(z, contact, radius, k, approaching=False)
    adhesion = contact.hamaker * radius / (6 * contact.a0**2)
    assert -retract.min() * k == pytest.approx(adhesion, rel=0.02)
    assert retract.min() < 3 * approach.min()  # hysteresis: it sticks far longer than it snaps in
    gap = z + approach
    snapped = np.flatnonzero(np.diff(approach) < -0.3 * NM)[0]  # the jump to contact
    assert gap[snapped] == pytest.approx((contact.hamaker * radius / (3 * k)) ** (1 / 3), rel=0.1)

    afm, silicon = _instrument()
    afm.spec.add_position(silicon.x, silicon.y)
    afm.spec.add_position(silicon.x + 3 * NM, silicon.y + 3 * NM)  # the pristine lattice nearby
    afm.start_spec()
    assert not afm.spec.is_measuring()  # time off: done at once
    on_dopant, on_lattice = (min(afm.spec.get_line(1, 0, i)) for i in (0, 1))
    assert on_dopant < 1.3 * on_lattice  # more adhesion on the Si (deflection in V, negative)


def test_tips_wear_with_load_and_path_and_break_when_pressed_too_hard():
    afm, silicon = _instrument()
    afm.set("OperatingMode.OperatingMode", 2)  # StaticAFM: the setpoint is a deflection (V)
    afm.set("ZController.SetPoint", 4.0)  # 40 nN
    for name, value in (("Scan.ImageWidth", 1e-6), ("Scan.ImageHeight", 1e-6), ("Scan.Lines", 256)):
        afm.set(name, value)
    before = afm.settings.get("twin.tip_radius")
    frame = _dopant_frame(afm, silicon)
    after = frame.metadata["tip"]["after"]
    load = 0.2 * 50e-9 * 4.0  # Hooke: 0.2 N/m x 50 nm/V x 4 V of deflection (the lever's datasheet)
    overscan = afm.settings.get("Scan.Overscan") / 100  # the scanner turns round beyond each side
    path = 2 * 1e-6 * (1 + 2 * overscan) * 256  # trace and retrace of 256 lines, 1 um and the overscan
    assert after["events"] == [] and after["load"] == pytest.approx(load)
    expected = before + afm.hardware.wear_rate * load * path  # Archard: worn volume ~ load x sliding path
    assert after["radius"] == pytest.approx(expected, rel=0.02)
    assert afm.settings.get("twin.tip_radius") == after["radius"]  # the next frame uses the worn tip
    assert after["radius"] > before + 1 * NM  # a micrometre frame in contact blunts the tip visibly
    afm.set("ZController.SetPoint", 8.0)  # 80 nN: more than the apex takes
    crashed = _dopant_frame(afm, silicon).metadata["tip"]["after"]
    assert crashed["events"][0].startswith("crash") and crashed["radius"] > 2 * after["radius"]
