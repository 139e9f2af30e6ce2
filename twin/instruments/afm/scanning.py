"""How the AFM scans a frame: where the z-loop samples every line (scan rotation, overscan, thermal
drift and piezo creep), how it follows the apex height forward and backward, and what each channel
records along the line (topography, deflection or amplitude, phase, lateral force), with its noise.

The instrument (:mod:`twin.instruments.afm.instrument`) decides when a frame is scanned, counts frames
and passes instrument time; everything here is a function of the settings, the sample and a seeded
random stream, so the same seed gives the same frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.materials import MaterialMap
from twin.instruments.afm.surface import ApexMap, finest_step
from twin.instruments.afm.tip import load
from twin.instruments.afm.vocabulary import CHANNELS, STATIC_MODES, ScanChannel, ScanGroupID
from twin.instruments.clock import Clock
from twin.instruments.metadata import provenance
from twin.physics.afm import (
    Feedback,
    Tip,
    electrostatic_lift,
    lateral_channel,
    loop_input,
    phase_channel,
    piezo_creep,
    thermal_drift,
)
from twin.physics.noise import gaussian_noise
from twin.sample import Window
from twin.sample.frames import FramedSample

STREAM_SCAN = 0x53434E  # random stream tag for scan noise
FREE_AIR = "free air"  # the simulation of a frame scanned with the tip withdrawn
_MOST_LOOP_SAMPLES_PER_PIXEL = 9  # z-loop samples along a line per pixel (finer only to see atoms)


@dataclass
class Frame:
    """One scanned frame: forward/backward traces of each channel, revealed over time."""

    data: np.ndarray  # [channel, group, line, point], float32
    x: np.ndarray
    y: np.ndarray
    line_time: float
    started: float
    metadata: dict[str, Any]
    stopped_after: int | None = None
    seen_complete: bool = False
    lines: int = field(init=False)

    def __post_init__(self) -> None:
        self.lines = self.data.shape[2]

    def lines_done(self, clock: Clock) -> int:
        if self.stopped_after is not None:
            return self.stopped_after
        elapsed = clock.elapsed(self.started)
        if math.isinf(elapsed):
            return self.lines
        return min(self.lines, int(elapsed // self.line_time))


@dataclass(frozen=True)
class ScanPath:
    """Where the z-loop samples every line of a frame, ``(lines, samples)`` in scan order, overscan
    included: ``u``, ``v`` in the scan frame (m, relative to the frame centre), ``x``, ``y`` where the
    tip really is (m, the AFM's frame: rotated, drifted, lagging behind offset steps)."""

    u: np.ndarray
    v: np.ndarray
    x: np.ndarray
    y: np.ndarray
    step: float  # m between loop samples along a line
    overscan: float  # m of extra line each side
    drift: np.ndarray  # (lines, 2) m: how far the sample moved under the scanner by each line
    speed: float  # m/s of the tip along the line, forward and backward in one Scantime


def rotate(u: np.ndarray, v: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Scan-frame offsets turned counter-clockwise by ``angle`` (rad) into the sample frame."""
    c, s = np.cos(angle), np.sin(angle)
    return c * u - s * v, s * u + c * v


def line_samples(window: Window, points: int, lines: int, overscan: float, finest: float,
                 fine_grid_limit: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Scan-frame positions (m, relative to the frame centre) of the loop's samples along every
    line, overscan included, and their spacing: the pixel, or finer (down to ``finest``) to resolve
    the lattice."""
    pixel = window.width / points
    sub = max(1, int(np.ceil(pixel / finest)))
    budget = max(1, fine_grid_limit // (points * lines))
    sub = min(sub, _MOST_LOOP_SAMPLES_PER_PIXEL, budget)
    sub -= 1 - sub % 2  # odd: a sample sits on every pixel centre
    step = pixel / sub
    extra = int(np.ceil(overscan / step))
    count = points * sub + 2 * extra
    u = -window.width / 2 + (np.arange(count) - extra + 0.5) * step
    v = -window.height / 2 + (np.arange(lines) + 0.5) * window.height / lines
    return np.broadcast_to(u, (lines, count)), np.broadcast_to(v[:, None], (lines, count)), step


def pixel_samples(points: int, overscan: float, width: float, step: float) -> np.ndarray:
    """Indices of the loop samples at the pixel centres."""
    sub = int(round(width / points / step))
    extra = int(np.ceil(overscan / step))
    return extra + np.arange(points) * sub + (sub - 1) // 2


def scan_path(state: dict[str, Any], window: Window, downward: bool, started: float, hardware: AfmHardware,
              offset_steps: list[tuple[float, float, float]], tip_radius: float) -> ScanPath:
    """The loop's samples of a frame over ``window`` starting at instrument time ``started`` (s),
    upwards or ``downward``, after the scanner offset steps ``offset_steps`` (piezo creep)."""
    points, lines, line_time = state["Scan.Points"], state["Scan.Lines"], state["Scan.Scantime"]
    hw = hardware
    t_lines = started + (np.arange(lines) + 0.5) * line_time  # instrument time of each line
    drift = thermal_drift(t_lines, state["twin.drift_velocity"], hw.drift_settling)
    drift -= piezo_creep(t_lines, offset_steps, state["twin.piezo_creep"], hw.creep_settling,
                         hw.creep_onset)  # the scanner still lagging behind recent offset steps
    overscan = state["Scan.Overscan"] / 100 * window.width
    # command positions of every loop sample: (lines, samples) in the scan frame, then the sample frame
    u, v, step = line_samples(window, points, lines, overscan, finest_step(tip_radius, hw),
                              hw.fine_grid_limit)
    if downward:  # the first line scanned is the top one
        v = v[::-1]
    x, y = rotate(u, v, np.radians(state["Scan.Rotation"]))
    x = x + window.centre[0] - drift[:, :1]
    y = y + window.centre[1] - drift[:, 1:]
    speed = 2 * (window.width + 2 * overscan) / line_time  # forward and backward in one Scantime
    return ScanPath(u, v, x, y, step, overscan, drift, speed)


def simulate_frame(state: dict[str, Any], window: Window, path: ScanPath, surface: ApexMap,
                   materials: MaterialMap, tip: Tip, feedback: Feedback, hardware: AfmHardware,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """Scan every line of a frame with the tip on the surface: the z-loop follows the apex height
    along ``path`` forward and backward, and each channel records what it measures at the pixel
    centres. Returns the data ``[channel, group, line, point]`` (float32) and what the simulation
    adds to the frame's metadata."""
    points, lines = state["Scan.Points"], state["Scan.Lines"]
    hw, step, (u, v, x, y) = hardware, path.step, (path.u, path.v, path.x, path.y)
    dynamic = state["OperatingMode.OperatingMode"] not in STATIC_MODES
    heights = surface.sample(x, y)  # (lines, samples): the apex height the tip must follow
    if dynamic and state["ZController.TipVoltage"] != 0.0:  # the bias's attraction lifts the tip
        potential = materials.sample(x, y, ("contact_potential",))["contact_potential"]
        heights = heights + electrostatic_lift(state["ZController.TipVoltage"], potential, tip.radius,
                                               hw.free_amplitude, hw.tapping_spring_constant,
                                               hw.quality_factor)
    dt = step / path.speed
    if state["twin.ideal_feedback"]:
        forward = backward = heights
    else:
        forward = feedback.track(heights, dt, hw.z_range)
        backward = feedback.track(heights[:, ::-1], dt, hw.z_range)[:, ::-1]
    keep = pixel_samples(points, path.overscan, window.width, step)
    data = np.empty((len(CHANNELS), 2, lines, points), dtype=np.float32)
    plane = (np.tan(np.radians(state["Scan.SlopeX"])) * (u[:, keep])
             + np.tan(np.radians(state["Scan.SlopeY"])) * v[:, keep])
    line_offsets = gaussian_noise((lines, 1), state["twin.line_offset"], rng)
    spot = materials.sample(x[:, keep], y[:, keep],
                            ("hamaker", "loss") if dynamic else ("hamaker", "friction"))
    for group, z in ((ScanGroupID.Forward, forward), (ScanGroupID.Backward, backward)):
        error = heights[:, keep] - z[:, keep]  # > 0: the surface pushes the tip up
        data[ScanChannel.Topography, group] = z[:, keep] - plane + line_offsets + gaussian_noise(
            (lines, points), state["twin.z_noise"], rng)
        controller_input = loop_input(error, state["ZController.SetPoint"], not dynamic,
                                      hw.deflection_sensitivity, hw.free_amplitude)
        data[ScanChannel.Deflection_or_ZCtrlIn, group] = controller_input + (
            gaussian_noise((lines, points), hw.input_noise, rng))
        if dynamic:  # tapping: phase from the energy each tap loses; no sliding, no friction
            phase = phase_channel(controller_input, spot["hamaker"], spot["loss"], tip.radius,
                                  hw.free_amplitude, hw.quality_factor, hw.tapping_spring_constant)
            data[ScanChannel.Phase, group] = phase + gaussian_noise((lines, points), hw.phase_noise, rng)
            data[ScanChannel.LateralForce, group] = 0.0
        else:  # contact: the tip slides, twisting the lever; no oscillation, no phase
            slope = np.gradient(z, step, axis=1)[:, keep]  # dz/du along the scan line
            direction = 1 if group == ScanGroupID.Forward else -1
            lateral = lateral_channel(load(state, hw), spot["hamaker"], spot["friction"], tip.radius,
                                      slope, direction, hw.lateral_sensitivity)
            data[ScanChannel.LateralForce, group] = lateral + gaussian_noise((lines, points),
                                                                             hw.lateral_noise, rng)
            data[ScanChannel.Phase, group] = 0.0
    return data, {
        "simulation": surface.method,
        "internal_sampling": surface.step,
        "feedback": "ideal" if state["twin.ideal_feedback"] else "pid",
        "feedback_stable": feedback.is_stable(),
        "drift_offset": {"first_line": path.drift[0].tolist(), "last_line": path.drift[-1].tolist()},
        "tip_speed": path.speed,
    }


def free_air_frame(state: dict[str, Any], window: Window, path: ScanPath, tip: Tip, hardware: AfmHardware,
                   rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
    """A frame with the tip withdrawn, as the controller scans it: the z-loop extends the piezo to
    its limit and stays there; the lever swings freely (full amplitude, the free phase) or hangs
    undeflected (static modes). Only noise varies; the tip does not wear."""
    points, lines, line_time = state["Scan.Points"], state["Scan.Lines"], state["Scan.Scantime"]
    hw = hardware
    dynamic = state["OperatingMode.OperatingMode"] not in STATIC_MODES

    def noise(rms: float) -> np.ndarray:
        return gaussian_noise((lines, points), rms, rng)

    data = np.zeros((len(CHANNELS), 2, lines, points), dtype=np.float32)
    free = np.full((lines, points), 100.0)
    for group in (ScanGroupID.Forward, ScanGroupID.Backward):
        data[ScanChannel.Topography, group] = -hw.z_range / 2 + noise(state["twin.z_noise"])
        free_input = 100.0 if dynamic else 0.0  # full amplitude, or no deflection
        data[ScanChannel.Deflection_or_ZCtrlIn, group] = free_input + noise(hw.input_noise)
        if dynamic:
            zero = np.zeros((lines, points))
            phase = phase_channel(free, zero, zero, tip.radius, hw.free_amplitude, hw.quality_factor,
                                  hw.tapping_spring_constant)
            data[ScanChannel.Phase, group] = phase + noise(hw.phase_noise)
        else:
            data[ScanChannel.LateralForce, group] = noise(hw.lateral_noise)
    overscan = state["Scan.Overscan"] / 100 * window.width
    return data, {
        "simulation": FREE_AIR, "internal_sampling": path.step,
        "feedback": "at its limit: the tip is withdrawn", "feedback_stable": True,
        "drift_offset": {"first_line": [0.0, 0.0], "last_line": [0.0, 0.0]},
        "tip_speed": 2 * (window.width + 2 * overscan) / line_time,
    }


def frame_metadata(state: dict[str, Any], window: Window, sample: FramedSample, seed: int, frame_index: int,
                   started: float, downward: bool, tip: Tip, record: dict[str, Any]) -> dict[str, Any]:
    """A scanned frame's metadata (``record``: the simulation's own part of the ``twin`` record)."""
    points, lines = state["Scan.Points"], state["Scan.Lines"]
    return {
        "acquisition": {
            "start_datetime": datetime.now(timezone.utc).isoformat(),
            "frame_index": frame_index,
            "direction": "down" if downward else "up",
            "instrument_time": started,
        },
        "scan": {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("Scan.")},
        "z_controller": {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("ZController.")},
        "operating_mode": state["OperatingMode.OperatingMode"],
        "tip": {"radius": tip.radius, "cone_half_angle": tip.cone_half_angle,
                "extra_apexes": [list(a) for a in tip.extra_apexes], "shape": "paraboloid on a cone"},
        "twin": {
            "window": window.as_dict(),
            "pixel_size": {"x": window.width / points, "y": window.height / lines},
            **provenance(sample, seed),
            "z_noise": state["twin.z_noise"],
            "line_offset": state["twin.line_offset"],
            "drift_velocity": list(state["twin.drift_velocity"]),
            **record,
        },
    }


def pixel_centres(state: dict[str, Any], window: Window, downward: bool) -> tuple[np.ndarray, np.ndarray]:
    """The x of every point and the y of every line (in scan order) of a frame over ``window`` (m)."""
    points, lines = state["Scan.Points"], state["Scan.Lines"]
    xc = window.x_min + (np.arange(points) + 0.5) * window.width / points
    yc = window.y_min + (np.arange(lines) + 0.5) * window.height / lines
    return xc, yc[::-1] if downward else yc
