"""The AFM: scanner, z-loop, tip and coarse motors, over the same sample as the TEM.

A frame is computed when it starts and revealed line by line as instrument time passes
(``Scantime`` seconds per line, forward and backward), so polling ``Currentline`` behaves the
same whether time runs at the instrument's pace or instantly. The tip (a cone-capped paraboloid,
possibly with a second apex) dilates the van der Waals surface; the PID z-loop follows it along
every line at the real tip speed, forward and backward; the sample drifts thermally.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from ase.data.vdw_alvarez import vdw_radii
from scipy import ndimage

from twin import validation
from twin.instruments.afm import capture
from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.motors import CoarseMotion
from twin.instruments.afm.spectroscopy import Spectroscopy
from twin.instruments.afm.vocabulary import (
    CHANNELS,
    SIMULATED_MODES,
    STATIC_MODES,
    DataConversion,
    DataFilter,
    OperatingMode,
    ScanChannel,
    ScanGroupID,
)
from twin.instruments.clock import Clock
from twin.instruments.parameters import Choice, Flag, Integer, Real, Settings, Vector
from twin.physics.afm import (
    Feedback,
    Tip,
    thermal_drift,
    tip_dilation,
    tip_reach,
    vdw_height_map,
    worn_radius,
)
from twin.physics.noise import gaussian_noise
from twin.sample import Sample, Window

ANGSTROM = 1e-10
_STREAM_SCAN = 0x53434E  # random stream tag for scan noise
_STREAM_DRIFT = 0x445246  # random stream tag for the drift direction
_STREAM_TIP = 0x544950  # random stream tag for tip changes
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
class ApexMap:
    """Apex heights (m) on a square grid: cell ``(r, c)`` centred at ``origin + ((c, r) + 1/2) step``."""

    apex: np.ndarray
    origin: tuple[float, float]
    step: float
    method: str

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Apex height (m) at sample-frame points ``x``, ``y`` (m), bilinear between cells."""
        cols = (np.asarray(x) - self.origin[0]) / self.step - 0.5
        rows = (np.asarray(y) - self.origin[1]) / self.step - 0.5
        return ndimage.map_coordinates(self.apex, [rows, cols], order=1, mode="nearest")


def window_centre(window: Window) -> tuple[float, float]:
    return (window.x_min + window.x_max) / 2, (window.y_min + window.y_max) / 2


def _rotate(u: np.ndarray, v: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Scan-frame offsets turned counter-clockwise by ``angle`` (rad) into the sample frame."""
    c, s = np.cos(angle), np.sin(angle)
    return c * u - s * v, s * u + c * v


def _setpoint_range(mode: int) -> tuple[float, float, str, float]:
    """Lowest, highest, unit and default of the setpoint in operating ``mode``."""
    return (-10.0, 10.0, "V", 1.0) if mode in STATIC_MODES else (0.0, 100.0, "%", 70.0)


def _drift(seed: int, speed: float) -> tuple[float, float]:
    """A thermal drift velocity (m/s) of ``speed`` in a direction drawn from ``seed``."""
    angle = np.random.default_rng([seed, _STREAM_DRIFT]).uniform(0.0, 2 * np.pi)
    return (speed * float(np.cos(angle)), speed * float(np.sin(angle)))


class AfmInstrument:
    """State and scanning of the simulated AFM."""

    def __init__(self, sample: Sample, clock: Clock, seed: int, hardware: AfmHardware | None = None):
        self.sample = sample
        self.clock = clock
        self.seed = seed
        self.hardware = hardware or AfmHardware()
        half = self.hardware.scanner_range / 2
        self.settings = Settings(
            [
                Real("Scan.ImageWidth", "m", 1e-9, self.hardware.scanner_range, 20e-9, "frame width"),
                Real("Scan.ImageHeight", "m", 1e-9, self.hardware.scanner_range, 20e-9, "frame height"),
                Integer("Scan.Points", 4, 2048, 256, "points per line"),
                Integer("Scan.Lines", 4, 2048, 256, "lines per frame"),
                Real("Scan.CenterPosX", "m", -half, half, 0.0, "frame centre x"),
                Real("Scan.CenterPosY", "m", -half, half, 0.0, "frame centre y"),
                Real("Scan.Scantime", "s", 0.01, 100.0, 0.5, "time per line, forward and backward"),
                Real("Scan.Rotation", "deg", -360.0, 360.0, 0.0, "scan rotation, counter-clockwise"),
                Real("Scan.SlopeX", "deg", -10.0, 10.0, 0.0, "scan plane slope along x"),
                Real("Scan.SlopeY", "deg", -10.0, 10.0, 0.0, "scan plane slope along y"),
                Real("Scan.Overscan", "%", 0.0, 50.0, 5.0, "extra line length each side"),
                Flag("Scan.AutoCapture", False, "save every frame when it ends (.gwy and .nc)"),
                Choice("OperatingMode.OperatingMode", SIMULATED_MODES, OperatingMode.DynamicAFM,
                       "StaticAFM 2, DynamicAFM 3, PhaseContrast 4, LateralForce 9"),
                Real("OperatingMode.VibratingAmpl", "V", 0.0, 10.0, 0.5, "cantilever drive amplitude"),
                Integer("Approach.WithdrawSteps", 1, 100_000, 100, "motor steps of StartWithdraw()"),
                Real("Spec.FwdModulationRange", "m", 1e-9, 1e-6, 30e-9, "base travel of a force curve"),
                Real("Spec.BwdModulationRange", "m", -1e-6, -1e-9, -30e-9, "travel back (negative)"),
                Real("Spec.FwdModulationTime", "s", 1e-3, 100.0, 0.5, "time of the forward curve"),
                Real("Spec.BwdModulationTime", "s", 1e-3, 100.0, 0.5, "time of the backward curve"),
                Integer("Spec.FwdModDataPoints", 16, 8192, 256, "points of the forward curve"),
                Integer("Spec.BwdModDataPoints", 16, 8192, 256, "points of the backward curve"),
                Real("ZController.SetPoint", "%", -10.0, 100.0, 70.0,
                     "setpoint: % of free amplitude (dynamic, 0 to 100) or volts of deflection (static, "
                     "-10 to 10)"),
                Real("ZController.PGain", "", 0.0, 100_000.0, 3100.0, "proportional gain"),
                Real("ZController.IGain", "", 0.0, 100_000.0, 3500.0, "integral gain"),
                Real("ZController.DGain", "", 0.0, 100_000.0, 0.0, "derivative gain"),
                Real("ZController.TipVoltage", "V", -10.0, 10.0, 0.0, "tip bias"),
                Real("twin.tip_radius", "m", 0.5e-9, 1e-6, 2e-9, "tip apex radius (paraboloid)"),
                Real("twin.tip_cone_angle", "deg", 5.0, 45.0, 20.0, "tip cone half-angle"),
                Vector("twin.second_apex", "m", -1e-6, 1e-6, (0.0, 0.0),
                       "a second apex (double tip) at this offset from the first; (0, 0) for none"),
                Real("twin.second_apex_height", "m", 0.0, 1e-6, 0.0, "how far the second apex sits above"),
                Real("twin.z_noise", "m", 0.0, 1e-9, 20e-12, "RMS height noise per point"),
                Vector("twin.drift_velocity", "m/s", -1e-9, 1e-9, _drift(seed, self.hardware.drift_speed),
                       "thermal drift of the sample under the scanner"),
                Flag("twin.ideal_feedback", False, "the tip follows the surface exactly (no z-loop)"),
            ]
        )
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self.motion = CoarseMotion(self.hardware, clock)
        self.spec = Spectroscopy(sample, clock, self.hardware.spring_constant,
                                 self.hardware.deflection_sensitivity)
        self._gallery = Path.cwd() / "afm-gallery"
        self._save_lock = threading.Lock()
        self._frame: Frame | None = None
        self._frames = 0

    # --- settings --------------------------------------------------------------------------------
    def set(self, name: Any, value: Any) -> Any:
        """Change one setting. The setpoint's range follows the operating mode (% of the free amplitude
        in dynamic modes, volts of deflection in static ones); a mode change that leaves the setpoint
        outside the new range puts it at the new mode's default."""
        with self._lock:
            mode = self.settings.get("OperatingMode.OperatingMode")
            if name == "ZController.SetPoint":
                lo, hi, unit, _ = _setpoint_range(mode)
                return self.settings.set(name, validation.real(name, value, lo, hi, unit))
            if name == "OperatingMode.OperatingMode":
                names = {getattr(OperatingMode, n): n for n in vars(OperatingMode) if not n.startswith("_")}
                if not isinstance(value, int) or isinstance(value, bool) or value not in SIMULATED_MODES:
                    allowed = ", ".join(f"{m} ({names[m]})" for m in SIMULATED_MODES)
                    raise ValueError(f"{name} = {value!r} is not simulated here; allowed: {allowed}")
                mode = value
                lo, hi, _, default = _setpoint_range(mode)
                if not lo <= self.settings.get("ZController.SetPoint") <= hi:
                    self.settings.set("ZController.SetPoint", default)
            return self.settings.set(name, value)

    # --- approach and stage (the coarse motors) -------------------------------------------------
    def start_approach(self) -> None:
        self.motion.start_approach("scanning" if self.is_scanning() else None)

    def start_withdraw(self) -> None:
        self.motion.start_withdraw(self.settings.get("Approach.WithdrawSteps"), self._busy())

    def start_retract(self) -> None:
        self.motion.start_retract(self._busy())

    def approach_status(self) -> int:
        return self.motion.status()

    def approach_is_moving(self) -> bool:
        return self.motion.is_moving()

    def _busy(self) -> str | None:
        return "scanning" if self.is_scanning() else None

    # --- scanning ------------------------------------------------------------------------------
    def start_frame_up(self) -> None:
        """Scan a frame from the bottom line (lowest y) upwards."""
        self._start_frame(downward=False)

    def start_frame_down(self) -> None:
        """Scan a frame from the top line (highest y) downwards; lines are numbered in scan order."""
        self._start_frame(downward=True)

    def _start_frame(self, downward: bool) -> None:
        state = self.settings.snapshot()
        half = self.hardware.scanner_range / 2
        for axis, centre, size in (("x", state["Scan.CenterPosX"], state["Scan.ImageWidth"]),
                                   ("y", state["Scan.CenterPosY"], state["Scan.ImageHeight"])):
            lo, hi = centre - size / 2, centre + size / 2
            if lo < -half or hi > half:
                raise ValueError(
                    f"scan frame spans {lo:.6g} to {hi:.6g} m in {axis}, outside the scanner range; "
                    f"allowed {validation.allowed_range(-half, half, 'm')} (CenterPos{axis.upper()} "
                    f"± Image{'Width' if axis == 'x' else 'Height'}/2)"
                )
        if not self.motion.approached():
            raise RuntimeError(
                "the tip is not approached (Approach.Status is not ApproachDone); "
                "call Approach.StartApproach() and wait for it first"
            )
        with self._scan_lock:
            frame = self._scan(state, self.scan_window(state), downward)
            frame.metadata["tip"]["after"] = self._wear(state, frame)
        with self._lock:
            self._frame = frame
        if state["Scan.AutoCapture"]:
            self._auto_capture(frame)

    def stop(self) -> None:
        with self._lock:
            if self._frame is not None and self._frame.stopped_after is None:
                self._frame.stopped_after = self._frame.lines_done(self.clock)

    def is_scanning(self) -> bool:
        with self._lock:
            return self._scanning()

    def _scanning(self) -> bool:
        frame = self._frame
        if frame is None or frame.stopped_after is not None:
            return False
        return frame.lines_done(self.clock) < frame.lines

    def current_line(self) -> int:
        """Number of lines completed in the current (or last) frame."""
        with self._lock:
            return 0 if self._frame is None else self._frame.lines_done(self.clock)

    def scan_window(self, state: dict[str, Any] | None = None) -> Window:
        """The frame's area in the sample frame (m): the stage position plus the scanner's offset."""
        state = state or self.settings.snapshot()
        stage_x, stage_y = self.motion.stage_position()
        return Window.around(
            stage_x + state["Scan.CenterPosX"], stage_y + state["Scan.CenterPosY"],
            state["Scan.ImageWidth"], state["Scan.ImageHeight"],
        )

    def get_line(self, group: Any, channel: Any, line: Any, data_filter: Any, conversion: Any) -> str:
        """One scanned line as the vendor returns it: values separated by ';'."""
        frame, done = self._frame_and_progress()
        group = validation.one_of("group", group, (ScanGroupID.Forward, ScanGroupID.Backward))
        channel = validation.one_of("channel", channel, tuple(CHANNELS))
        line = validation.integer("line", line, 0, frame.lines - 1)
        if line >= done:
            raise ValueError(
                f"line = {line} has not been scanned yet; allowed 0 to {done - 1} (Currentline = {done})"
            )
        data_filter = validation.integer("filter", data_filter, DataFilter.RAW, DataFilter.PolynomialFit)
        conversion = validation.one_of(
            "conversion", conversion,
            (DataConversion.Binary16, DataConversion.Physical, DataConversion.Binary32),
        )
        values = _apply_filter(frame.data[channel, group, line].astype(np.float64), frame.x, data_filter)
        if conversion == DataConversion.Physical:
            return ";".join(f"{v:.7g}" for v in values)
        bits = 16 if conversion == DataConversion.Binary16 else 32
        full_range = self.hardware.z_range if channel == ScanChannel.Topography else 200.0
        lsb = full_range / 2**bits
        limit = 2 ** (bits - 1) - 1
        return ";".join(str(int(v)) for v in np.clip(np.rint(values / lsb), -limit - 1, limit))

    def get_frame(self, group: Any, channel: Any) -> dict[str, Any]:
        """The whole frame of one trace and channel: ``{"data", "x", "y", "metadata"}``.

        Lines not scanned yet are NaN. Rows are lines in scan order, columns points (x increasing).
        """
        frame, done = self._frame_and_progress()
        group = validation.one_of("group", group, (ScanGroupID.Forward, ScanGroupID.Backward))
        channel = validation.one_of("channel", channel, tuple(CHANNELS))
        data = frame.data[channel, group].copy()
        data[done:] = np.nan
        name, unit = CHANNELS[channel]
        metadata = {**frame.metadata, "channel": {"index": channel, "name": name, "unit": unit},
                    "group": "forward" if group == ScanGroupID.Forward else "backward",
                    "lines_done": done}
        return {"data": data, "x": frame.x, "y": frame.y, "metadata": metadata}

    # --- spectroscopy ---------------------------------------------------------------------------
    def start_spec(self) -> None:
        """Force-distance curves at every listed position (scanner coordinates, like CenterPos)."""
        if self.is_scanning():
            raise RuntimeError("cannot run spectroscopy while scanning; call Scan.Stop() first")
        if not self.motion.approached():
            raise RuntimeError("the tip is not approached; call Approach.StartApproach() and wait for it "
                               "first")
        state = self.settings.snapshot()
        if abs(state["Spec.BwdModulationRange"]) != state["Spec.FwdModulationRange"]:
            raise ValueError(f"Spec.BwdModulationRange = {state['Spec.BwdModulationRange']!r} must be "
                             f"-Spec.FwdModulationRange = {-state['Spec.FwdModulationRange']!r} here")
        tip = self.tip(state)

        def height(x: float, y: float) -> float:  # the contact point: the apex touching the surface
            apex, _, _ = self.topography(Window.around(x, y, 1e-9, 1e-9), 3, 3, tip)
            return float(apex[1, 1])

        self.spec.start(state, tip.radius, height, self.motion.stage_position())

    # --- saving ---------------------------------------------------------------------------------
    def set_gallery(self, path: Any) -> str:
        """Where captures are written (a directory on the server's machine)."""
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"path = {path!r}: give a directory as a non-empty string")
        with self._lock:
            self._gallery = Path(path).expanduser()
            return str(self._gallery)

    def gallery(self) -> str:
        with self._lock:
            return str(self._gallery)

    def capture(self) -> list[str]:
        """Save the current (or last) frame, every channel and trace, lines scanned so far, as a
        Gwyddion ``.gwy`` and a NetCDF ``.nc`` file in the gallery; returns their paths."""
        frame, done = self._frame_and_progress()
        return self._save(frame, done)

    def _save(self, frame: Frame, done: int) -> list[str]:
        images, units = {}, {}
        for channel, (name, unit) in CHANNELS.items():
            for group, trace in ((ScanGroupID.Forward, "Forward"), (ScanGroupID.Backward, "Backward")):
                data = frame.data[channel, group].astype(np.float64)
                data[done:] = np.nan
                images[f"{name} {trace}"], units[f"{name} {trace}"] = data, unit
        metadata = {**frame.metadata, "lines_done": done}
        dataset = capture.frame_dataset(images, units, frame.x, frame.y, metadata)
        with self._save_lock:
            stem = capture.next_free(Path(self.gallery()), "afm")
            capture.write_gwy(stem.with_suffix(".gwy"), dataset)
            capture.write_netcdf(stem.with_suffix(".nc"), dataset)
        return [str(stem.with_suffix(".gwy")), str(stem.with_suffix(".nc"))]

    def _auto_capture(self, frame: Frame) -> None:
        """With ``Scan.AutoCapture``, save ``frame`` when its last line is scanned (unless stopped)."""
        def save() -> None:
            with self._lock:
                current = self._frame is frame and frame.stopped_after is None
            if current:
                self._save(frame, frame.lines)

        if self.clock.time_scale == 0.0:
            save()
        else:
            timer = threading.Timer(frame.lines * frame.line_time * self.clock.time_scale, save)
            timer.daemon = True
            timer.start()

    def _frame_and_progress(self) -> tuple[Frame, int]:
        with self._lock:
            if self._frame is None:
                raise RuntimeError("no frame has been scanned yet; call Scan.StartFrameUp() first")
            return self._frame, self._frame.lines_done(self.clock)

    def _scan(self, state: dict[str, Any], window: Window, downward: bool = False) -> Frame:
        points, lines = state["Scan.Points"], state["Scan.Lines"]
        tip = self.tip(state)
        frame_index = self._frames
        started = self.clock.now()
        line_time = state["Scan.Scantime"]
        t_lines = started + (np.arange(lines) + 0.5) * line_time  # instrument time of each line
        drift = thermal_drift(t_lines, state["twin.drift_velocity"], self.hardware.drift_settling)
        overscan = state["Scan.Overscan"] / 100 * window.width
        # command positions of every loop sample: (lines, samples) in the scan frame, then the sample frame
        u, v, step = self._line_samples(window, points, lines, overscan, tip.radius)
        if downward:  # the first line scanned is the top one
            v = v[::-1]
        x, y = _rotate(u, v, np.radians(state["Scan.Rotation"]))
        x = x + window_centre(window)[0] - drift[:, :1]
        y = y + window_centre(window)[1] - drift[:, 1:]
        reach = Window(float(x.min()), float(y.min()), float(x.max()), float(y.max()))
        surface = self.apex_map(reach, step, tip, min(window.width / points, window.height / lines))
        heights = surface.sample(x, y)  # (lines, samples): the apex height the tip must follow
        feedback = self.feedback(state)
        speed = 2 * (window.width + 2 * overscan) / line_time  # forward and backward in one Scantime
        dt = step / speed
        if state["twin.ideal_feedback"]:
            forward = backward = heights
        else:
            forward = feedback.track(heights, dt, self.hardware.z_range)
            backward = feedback.track(heights[:, ::-1], dt, self.hardware.z_range)[:, ::-1]
        keep = self._pixel_samples(points, overscan, window.width, step)
        rng = np.random.default_rng([self.seed, _STREAM_SCAN, frame_index])
        data = np.empty((len(CHANNELS), 2, lines, points), dtype=np.float32)
        slope = (np.tan(np.radians(state["Scan.SlopeX"])) * (u[:, keep])
                 + np.tan(np.radians(state["Scan.SlopeY"])) * v[:, keep])
        for group, z in ((ScanGroupID.Forward, forward), (ScanGroupID.Backward, backward)):
            error = heights[:, keep] - z[:, keep]  # > 0: the surface pushes the tip up
            data[ScanChannel.Topography, group] = z[:, keep] - slope + gaussian_noise(
                (lines, points), state["twin.z_noise"], rng)
            data[ScanChannel.Deflection_or_ZCtrlIn, group] = self._controller_input(state, error) + (
                gaussian_noise((lines, points), self.hardware.input_noise, rng))
            data[ScanChannel.Phase, group] = self._phase(state, error)
        self._frames += 1
        self.clock.pass_time(lines * line_time)
        xc = window.x_min + (np.arange(points) + 0.5) * window.width / points
        yc = window.y_min + (np.arange(lines) + 0.5) * window.height / lines
        yc = yc[::-1] if downward else yc
        metadata = {
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
                "pixel_origin": "centre",
                "row_axis": "y",
                "sample": self.sample.name,
                "sample_version": self.sample.version,
                "seed": self.seed,
                "simulation": surface.method,
                "internal_sampling": surface.step,
                "z_noise": state["twin.z_noise"],
                "feedback": "ideal" if state["twin.ideal_feedback"] else "pid",
                "feedback_stable": feedback.is_stable(),
                "drift_velocity": list(state["twin.drift_velocity"]),
                "drift_offset": {"first_line": drift[0].tolist(), "last_line": drift[-1].tolist()},
                "tip_speed": speed,
            },
        }
        return Frame(data, xc, yc, line_time, self.clock.wall(), metadata)

    def _line_samples(self, window: Window, points: int, lines: int, overscan: float, tip_radius: float
                      ) -> tuple[np.ndarray, np.ndarray, float]:
        """Scan-frame positions (m, relative to the frame centre) of the loop's samples along every
        line, overscan included, and their spacing: the pixel, or finer to resolve the lattice."""
        pixel = window.width / points
        finest = self._finest(tip_radius)
        sub = max(1, int(np.ceil(pixel / finest)))
        budget = max(1, self.hardware.fine_grid_limit // (points * lines))
        sub = min(sub, _MOST_LOOP_SAMPLES_PER_PIXEL, budget)
        sub -= 1 - sub % 2  # odd: a sample sits on every pixel centre
        step = pixel / sub
        extra = int(np.ceil(overscan / step))
        count = points * sub + 2 * extra
        u = -window.width / 2 + (np.arange(count) - extra + 0.5) * step
        v = -window.height / 2 + (np.arange(lines) + 0.5) * window.height / lines
        return np.broadcast_to(u, (lines, count)), np.broadcast_to(v[:, None], (lines, count)), step

    @staticmethod
    def _pixel_samples(points: int, overscan: float, width: float, step: float) -> np.ndarray:
        """Indices of the loop samples at the pixel centres."""
        sub = int(round(width / points / step))
        extra = int(np.ceil(overscan / step))
        return extra + np.arange(points) * sub + (sub - 1) // 2

    def _finest(self, tip_radius: float) -> float:
        """The finest lateral step worth simulating for a tip of ``tip_radius`` (m)."""
        return float(np.clip(np.sqrt(8 * tip_radius * self.hardware.height_tolerance), 0.2 * ANGSTROM,
                             2 * ANGSTROM))

    def load(self, state: dict[str, Any]) -> float:
        """Mean force (N) pressing the tip on the surface at the setpoint."""
        hw, setpoint = self.hardware, state["ZController.SetPoint"]
        if state["OperatingMode.OperatingMode"] in STATIC_MODES:
            return hw.spring_constant * hw.deflection_sensitivity * setpoint
        return hw.tapping_force * (1.0 - setpoint / 100.0)

    def _wear(self, state: dict[str, Any], frame: Frame) -> dict[str, Any]:
        """What the frame did to the tip: wear with the path and load, a broken apex when the load or
        an oscillating loop slams it into the surface, and now and then a random tip change (seeded).
        The new tip is what the next frame uses; returns it with what happened."""
        hw, twin = self.hardware, frame.metadata["twin"]
        path = twin["tip_speed"] * frame.line_time * frame.lines  # forward and backward
        radius, apex, events = state["twin.tip_radius"], tuple(state["twin.second_apex"]), []
        radius = worn_radius(radius, self.load(state), path, hw.wear_rate)
        hard_tapping = (state["OperatingMode.OperatingMode"] not in STATIC_MODES
                        and state["ZController.SetPoint"] < hw.hard_tapping_setpoint)
        rng = np.random.default_rng([self.seed, _STREAM_TIP, frame.metadata["acquisition"]["frame_index"]])
        if self.load(state) > hw.damaging_force or hard_tapping or not twin["feedback_stable"]:
            radius, events = radius * rng.uniform(2.0, 4.0), ["crash: the apex broke"]
        if rng.random() < -np.expm1(-path / hw.tip_change_path):
            events.append("tip change")
            if rng.random() < 0.5:
                radius *= rng.uniform(1.3, 2.5)
            else:
                apex = (float(rng.uniform(1e-9, 6e-9) * rng.choice([-1, 1])),
                        float(rng.uniform(1e-9, 6e-9) * rng.choice([-1, 1])))
                self.settings.set("twin.second_apex_height", float(rng.uniform(0.0, 0.3e-9)))
        radius = float(min(radius, self.settings.parameter("twin.tip_radius").hi))
        self.settings.set("twin.tip_radius", radius)
        self.settings.set("twin.second_apex", apex)
        return {"radius": radius, "second_apex": list(apex), "events": events, "path": path,
                "load": self.load(state)}

    def _controller_input(self, state: dict[str, Any], error: np.ndarray) -> np.ndarray:
        """What the z-loop measures: deflection (V) in static modes, amplitude (% of free) in dynamic."""
        setpoint = state["ZController.SetPoint"]
        if state["OperatingMode.OperatingMode"] in STATIC_MODES:
            return setpoint + error / self.hardware.deflection_sensitivity
        return np.clip(setpoint - error / self.hardware.free_amplitude * 100.0, 0.0, 100.0)

    def _phase(self, state: dict[str, Any], error: np.ndarray) -> np.ndarray:
        """Phase (deg) in dynamic modes: 90° shifted as the amplitude leaves the setpoint."""
        if state["OperatingMode.OperatingMode"] in STATIC_MODES:
            return np.zeros_like(error)
        return 90.0 + np.degrees(np.arctan(error / self.hardware.free_amplitude))

    def tip(self, state: dict[str, Any] | None = None) -> Tip:
        """The tip as set now (or in ``state``)."""
        state = state or self.settings.snapshot()
        extra = ()
        if tuple(state["twin.second_apex"]) != (0.0, 0.0):
            extra = ((*state["twin.second_apex"], state["twin.second_apex_height"]),)
        return Tip(state["twin.tip_radius"], np.radians(state["twin.tip_cone_angle"]), extra)

    def feedback(self, state: dict[str, Any] | None = None) -> Feedback:
        """The z-loop as set now (or in ``state``)."""
        state = state or self.settings.snapshot()
        hw = self.hardware
        return Feedback(state["ZController.PGain"] * hw.proportional_unit,
                        state["ZController.IGain"] * hw.integral_unit,
                        state["ZController.DGain"] * hw.derivative_unit, hw.z_response_time, hw.loop_delay)

    def topography(
        self, window: Window, points: int, lines: int, tip: Tip | float
    ) -> tuple[np.ndarray, str, float]:
        """Noise-free apex height (m) at each pixel centre, ``[lines, points]``, as ideal feedback
        would record it; with the method (atoms or continuum) and the internal sampling (m)."""
        tip = tip if isinstance(tip, Tip) else Tip(tip)
        px, py = window.width / points, window.height / lines
        surface = self.apex_map(window, min(px, py), tip)
        x = window.x_min + (np.arange(points) + 0.5) * px
        y = window.y_min + (np.arange(lines) + 0.5) * py
        xx, yy = np.meshgrid(x, y)
        return surface.sample(xx, yy), surface.method, surface.step

    def apex_map(self, window: Window, pixel: float, tip: Tip, image_pixel: float | None = None) -> ApexMap:
        """The apex height of ``tip`` over ``window`` (m) on an internal square grid fine enough that
        taking each cell's highest point is as good as point sampling, or no finer than ``pixel``;
        where single atoms do not matter, the smooth surface no finer than ``image_pixel``."""
        finest = self._finest(tip.radius)
        step = float(np.clip(pixel, 0.2 * ANGSTROM, finest))
        apexes = [np.hypot(dx, dy) for dx, dy, _ in tip.extra_apexes]
        margin = tip_reach(tip.radius, 1e-9) + 3 * ANGSTROM + max(apexes, default=0.0)
        margin = np.ceil(margin / step) * step
        padded = window.grown(margin)
        shape = (int(np.ceil(padded.height / step)) + 1, int(np.ceil(padded.width / step)) + 1)
        atoms_expected = self.sample.atom_density() * padded.width * padded.height
        cells = shape[0] * shape[1]
        if atoms_expected <= self.hardware.atom_limit and cells <= self.hardware.fine_grid_limit:
            atoms = self.sample.atoms_in_window(padded)
            positions = atoms.positions * ANGSTROM + np.array([padded.x_min, padded.y_min, 0.0])
            radii = vdw_radii[atoms.numbers] * ANGSTROM
            surface = vdw_height_map(
                positions, radii, (padded.x_min, padded.y_min), step, shape, self.sample.support_height
            )
            method = "atoms"
        else:  # single atoms are far below a pixel: the smooth surface is what the tip sees
            coarsest = np.sqrt(padded.width * padded.height / self.hardware.fine_grid_limit)
            step = max(image_pixel or pixel, finest, coarsest)
            shape = (int(np.ceil(padded.height / step)) + 1, int(np.ceil(padded.width / step)) + 1)
            xs = padded.x_min + (np.arange(shape[1]) + 0.5) * step
            ys = padded.y_min + (np.arange(shape[0]) + 0.5) * step
            surface = self.sample.surface_height(xs[None, :], ys[:, None])
            method = "continuum"
        return ApexMap(tip_dilation(surface, step, tip), (padded.x_min, padded.y_min), step, method)

    def describe(self) -> dict[str, Any]:
        return {"settings": self.settings.describe(), "channels": CHANNELS,
                "operating_modes": {name: getattr(OperatingMode, name) for name in vars(OperatingMode)
                                    if not name.startswith("_")}}


def _apply_filter(values: np.ndarray, x: np.ndarray, data_filter: int) -> np.ndarray:
    """The vendor's line filters: subtract a fit of degree 0/1/2/3, or differentiate."""
    if data_filter == DataFilter.RAW:
        return values
    if data_filter == DataFilter.DerivedData:
        return np.gradient(values, x)
    degree = {DataFilter.MeanFit: 0, DataFilter.LineFit: 1, DataFilter.ParabolaFit: 2,
              DataFilter.PolynomialFit: 3}[data_filter]
    t = (x - x.mean()) / max(np.ptp(x), 1e-30)
    return values - np.polyval(np.polyfit(t, values, degree), t)
