"""The AFM: scanner, z-loop, tip and coarse motors, over the same sample as the TEM.

A frame is computed when it starts and revealed line by line as instrument time passes
(``Scantime`` seconds per line, forward and backward), so polling ``Currentline`` behaves the
same whether time runs at the instrument's pace or instantly. The tip (a cone-capped paraboloid,
possibly with a second apex) dilates the van der Waals surface; the PID z-loop follows it along
every line at the real tip speed, forward and backward; the sample drifts thermally.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from twin import validation
from twin.instruments import files
from twin.instruments.afm import capture, readout, scanning, video
from twin.instruments.afm import surface as apex_surface
from twin.instruments.afm import tip as tip_model
from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.materials import MaterialMap
from twin.instruments.afm.motors import CoarseMotion
from twin.instruments.afm.scanning import FREE_AIR, Frame
from twin.instruments.afm.spectroscopy import Spectroscopy
from twin.instruments.afm.surface import ApexMap
from twin.instruments.afm.vocabulary import (
    CHANNELS,
    SIMULATED_MODES,
    STATIC_MODES,
    DataConversion,
    OperatingMode,
    ScanChannel,
    ScanGroupID,
    VideoSource,
    channel_unit,
)
from twin.instruments.clock import Clock
from twin.instruments.disclosure import public_metadata
from twin.instruments.parameters import Choice, Flag, Integer, Real, Settings, Vector
from twin.instruments.usage import BudgetExhausted, Usage
from twin.physics.afm import Feedback, Tip, driven_response, piezo_creep
from twin.physics.noise import gaussian_noise
from twin.sample import Sample, Window
from twin.sample.frames import FramedSample, InstrumentFrame
from twin.validation import brief

_STREAM_SWEEP = 0x535750  # random stream tag for frequency sweeps
_MOST_SWEEP_POINTS = 100_000
_SWEEP_POINT_TIME = 0.01  # s of instrument time per frequency (the lock-in's settling)
_STREAM_DRIFT = 0x445246  # random stream tag for the drift direction


def _setpoint_range(mode: int) -> tuple[float, float, str, float]:
    """Lowest, highest, unit and default of the setpoint in operating ``mode``."""
    return (-10.0, 10.0, "V", 1.0) if mode in STATIC_MODES else (0.0, 100.0, "%", 70.0)


def _drift(seed: int, speed: float) -> tuple[float, float]:
    """A thermal drift velocity (m/s) of ``speed`` in a direction drawn from ``seed``."""
    angle = np.random.default_rng([seed, _STREAM_DRIFT]).uniform(0.0, 2 * np.pi)
    return (speed * float(np.cos(angle)), speed * float(np.sin(angle)))


class AfmInstrument:
    """State and scanning of the simulated AFM."""

    def __init__(self, sample: Sample, clock: Clock, seed: int, hardware: AfmHardware | None = None,
                 frame: InstrumentFrame | None = None, reveal_frame: bool = True, usage: Usage | None = None):
        """``frame``: how this AFM's stage and scanner axes sit on the sample (hidden from frame metadata
        unless ``reveal_frame``); ``usage``: where frames charge their lines and area (a budget)."""
        self.sample = FramedSample(sample, frame or InstrumentFrame(), reveal_frame)
        self.usage = usage or Usage()
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
                Real("Approach.ApproachSpeed", "%", 0.1, 100.0, 50.0, "approach motor speed"),
                Choice("Video.VideoSource", (0, 1), 1, "optical camera: SideView 0, TopView 1"),
                Choice("System.SystemStateIdleZAxisMode", (0, 1, 2, 3), 0,
                       "z while idle: ZControllerActive 0, RetractTip 1, KeepLastPos 2, AbsolutePos 3"),
                Real("System.MotorCustomSpeedFactor", "", 0.01, 1.0, 1.0, "motor speed factor"),
                Real("Spec.FwdModulationRange", "m", 1e-9, 1e-6, 30e-9, "base travel of a force curve"),
                Real("Spec.BwdModulationRange", "m", -1e-6, -1e-9, -30e-9, "travel back (negative)"),
                Real("Spec.FwdModulationTime", "s", 1e-3, 100.0, 0.5, "time of the forward curve"),
                Real("Spec.BwdModulationTime", "s", 1e-3, 100.0, 0.5, "time of the backward curve"),
                Integer("Spec.FwdModDataPoints", 16, 8192, 256, "points of the forward curve"),
                Integer("Spec.BwdModDataPoints", 16, 8192, 256, "points of the backward curve"),
                Choice("Spec.ModuleLevel", (0, 1), 0, "SpecModuleLevel: Standard 0, Advanced 1"),
                Choice("Spec.ModulatedOutput", (0, 1, 2, 3), 0, "SpecModulatedOutput: ZAxis 0 is simulated"),
                Flag("Spec.ActiveZController", False, "keep the z-loop on during the curves"),
                Flag("Spec.EnableRelative", True, "modulation relative to the present z"),
                Choice("Spec.RepetitionMode", (0, 1), 1, "SpecRepetitionMode: List 0, Position 1"),
                Integer("Spec.Repetition", 1, 10_000, 1, "curves per position (or passes over the list)"),
                Choice("Spec.SpecEndMode", (0, 1), 0, "SpecEndMode: KeepLastZPos 0, Approached 1"),
                Real("Spec.StartOffset", "m", -1e-6, 1e-6, 0.0, "lift before each curve"),
                Real("Spec.StartOffsetMoveSpeed", "m/s", 1e-9, 1e-3, 10e-6, "speed of the start offset move"),
                Real("Spec.XYMoveSpeed", "m/s", 1e-9, 1e-3, 100e-6, "tip speed between positions"),
                *(parameter for direction in ("Fwd", "Bwd") for parameter in (
                    Choice(f"Spec.{direction}ModulationMode", (0, 1), 0, "SpecModulationMode: FixedLength 0"),
                    Choice(f"Spec.{direction}PauseMode", (0, 1), 0,
                           "SpecPauseMode: KeepLastZPos 0, ZControllerActive 1"),
                    Integer(f"Spec.{direction}PauseDataPoints", 0, 8192, 0, "points recorded in the pause"),
                    Real(f"Spec.{direction}PauseTime", "s", 0.0, 100.0, 0.0, "pause after the curve"),
                )),
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
                Real("twin.piezo_creep", "", 0.0, 0.2, 0.01,
                     "scanner creep after an offset step, as a fraction of the step per decade of time"),
                Real("twin.line_offset", "m", 0.0, 1e-9, 20e-12, "RMS height offset from line to line"),
                Vector("twin.drift_velocity", "m/s", -1e-9, 1e-9, _drift(seed, self.hardware.drift_speed),
                       "thermal drift of the sample under the scanner"),
                Flag("twin.ideal_feedback", False, "the tip follows the surface exactly (no z-loop)"),
                Real("twin.loop_gain", "", 0.01, 1e4, 1.0,
                     "what the z-loop multiplies PGain, IGain, DGain by (z piezo and detector sensitivity)"),
                Real("twin.resonance_frequency", "Hz", 1e3, 5e6, self.hardware.resonance_frequency,
                     "the dynamic-mode cantilever's free resonance"),
                Real("twin.quality_factor", "", 1.0, 1e5, self.hardware.quality_factor,
                     "the free cantilever's quality factor (frequency sweeps)"),
            ]
        )
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self.motion = CoarseMotion(self.hardware, clock)
        self.spec = Spectroscopy(self.sample, clock, self.hardware.spring_constant,
                                 self.hardware.deflection_sensitivity)
        self.files_root = files.default_data_dir()  # this twin's own folder on the server (see files.py)
        self.files_quota = files.QUOTA_BYTES  # what its files may take there
        self._gallery = "afm-gallery"  # as the client named it: a folder under files_root
        self._file_mask = "afm"
        self._file_index = 0  # captures take the first free number from this one
        self._save_lock = threading.Lock()
        self._frame: Frame | None = None
        self._frames = 0
        self._continuous = False  # Scan.Start(): frames follow each other, up and down, until Stop()
        self._offset_steps: list[tuple[float, float, float]] = []  # (time, dx, dy): piezo creep
        self.sweeps = 0
        self.on_frame: Callable[[Frame, Clock], None] | None = None  # told of each new frame (live view)

    def restarted(self, sample: Sample, clock: Clock) -> AfmInstrument:
        """This AFM as it was switched on, over ``sample`` and on ``clock``: the same hardware, frame,
        budget and files folder; a new tip, withdrawn."""
        fresh = AfmInstrument(sample, clock, self.seed, self.hardware, self.sample.frame,
                              self.sample.revealed, self.usage)
        fresh.files_root, fresh.files_quota = self.files_root, self.files_quota
        fresh.on_frame = self.on_frame
        return fresh

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
                    raise ValueError(f"{name} = {brief(value)} is not simulated here; allowed: {allowed}")
                mode = value
                lo, hi, _, default = _setpoint_range(mode)
                if not lo <= self.settings.get("ZController.SetPoint") <= hi:
                    self.settings.set("ZController.SetPoint", default)
            if name in ("Scan.CenterPosX", "Scan.CenterPosY"):
                before = self.settings.get(name)
                after = self.settings.set(name, value)
                self._note_offset_step(after - before if name.endswith("X") else 0.0,
                                       after - before if name.endswith("Y") else 0.0)
                return after
            return self.settings.set(name, value)

    def _note_offset_step(self, dx: float, dy: float) -> None:
        """Remember a scanner offset step (m) for piezo creep; forget steps that have settled."""
        if dx == 0.0 and dy == 0.0:
            return
        now, hw = self.clock.now(), self.hardware
        self._offset_steps = [
            step for step in self._offset_steps
            if np.hypot(*piezo_creep(np.array(now), [step], self.settings.get("twin.piezo_creep"),
                                     hw.creep_settling, hw.creep_onset)) > 1e-13
        ][-100:] + [(now, dx, dy)]

    # --- approach and stage (the coarse motors) -------------------------------------------------
    def start_approach(self) -> None:
        """Approach at ``Approach.ApproachSpeed`` (% of the motor's; 50 % takes the nominal time) times
        ``System.MotorCustomSpeedFactor``."""
        settings = self.settings
        speed = settings.get("Approach.ApproachSpeed") / 50.0 * settings.get("System.MotorCustomSpeedFactor")
        self.motion.start_approach("scanning" if self.is_scanning() else None, speed)

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

    def start(self) -> None:
        """Scan continuously: a frame upwards, then downwards, and so on until ``Stop()``. Settings
        changed meanwhile apply from the next frame. With time off, every look at the scan
        (``IsScanning``, ``Currentline``) after a frame has been seen complete starts the next one."""
        self._start_frame(downward=False, continuous=True)

    def _start_frame(self, downward: bool, continuous: bool = False) -> None:
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
        with self._scan_lock:
            self._scan_and_show(state, downward, continuous)

    def _scan_and_show(self, state: dict[str, Any], downward: bool, continuous: bool,
                       started: tuple[float, float] | None = None) -> None:
        """Scan a frame (under the scan lock), make it the current one and wear the tip by it."""
        self.usage.charge(lines=state["Scan.Lines"],
                          scanned_area=state["Scan.ImageWidth"] * state["Scan.ImageHeight"])
        frame = self._scan(state, self.scan_window(state), downward, started)
        in_air = frame.metadata["twin"]["simulation"] == FREE_AIR
        frame.metadata["tip"]["after"] = tip_model.untouched(state) if in_air else self._wear(state, frame)
        frame.metadata["acquisition"]["continuous"] = continuous
        with self._lock:
            self._frame = frame
            self._continuous = continuous
        if self.on_frame is not None:
            self.on_frame(frame, self.clock)
        if state["Scan.AutoCapture"]:
            self._auto_capture(frame)

    def _follow_on(self) -> None:
        """In continuous scanning, start the frame that follows a complete one: the one running now
        (frames skipped while nobody looked are not simulated), in the direction it would have. A look
        while another caller is already simulating one does not wait for it: it reads what is there."""
        with self._lock:
            frame = self._frame
            if not self._continuous or frame is None or frame.stopped_after is not None:
                return
            if frame.lines_done(self.clock) < frame.lines:
                return
            if self.clock.time_scale == 0.0 and not frame.seen_complete:
                frame.seen_complete = True  # the next look starts the next frame
                return
        if not self._scan_lock.acquire(blocking=False):
            return  # a frame is being simulated: reads of state do not wait for it
        try:
            with self._lock:
                if self._frame is not frame or not self._continuous:
                    return  # another caller moved on, or the scan stopped meanwhile
            done, started = 1, None  # frames completed since ``frame`` started; the next one's start
            if self.clock.time_scale > 0.0:  # count the frames that ended while nobody looked
                duration = frame.lines * frame.line_time * self.clock.time_scale  # wall-clock s
                done = int((self.clock.wall() - frame.started) // duration)
                started = (frame.metadata["acquisition"]["instrument_time"] + done * frame.lines
                           * frame.line_time, frame.started + done * duration)
            upward = (frame.metadata["acquisition"]["direction"] == "up") != (done % 2 == 1)
            try:
                self._scan_and_show(self.settings.snapshot(), not upward, True, started)
            except BudgetExhausted:  # the budget ends a continuous scan after the last whole frame
                with self._lock:
                    self._continuous = False
        finally:
            self._scan_lock.release()

    def stop(self) -> None:
        with self._lock:
            self._continuous = False
            if self._frame is not None and self._frame.stopped_after is None:
                self._frame.stopped_after = self._frame.lines_done(self.clock)

    @property
    def frames_scanned(self) -> int:
        """Frames started so far (each is simulated when it starts)."""
        return self._frames

    def is_scanning(self) -> bool:
        self._follow_on()
        with self._lock:
            return self._scanning()

    def _scanning(self) -> bool:
        frame = self._frame
        if frame is None or frame.stopped_after is not None:
            return False
        return self._continuous or frame.lines_done(self.clock) < frame.lines

    def current_line(self) -> int:
        """Number of lines completed in the current (or last) frame."""
        self._follow_on()
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
        data_filter, conversion = readout.checked_filter_and_conversion(data_filter, conversion)
        values = readout.filtered(frame.data[channel, group, line], frame.x, data_filter)
        full_range = self.hardware.z_range if channel == ScanChannel.Topography else 200.0
        out = readout.converted(values, conversion, full_range)
        return ";".join(f"{v:.7g}" if conversion == DataConversion.Physical else str(v) for v in out)

    def get_frame(self, group: Any, channel: Any) -> dict[str, Any]:
        """The whole frame of one trace and channel: ``{"data", "x", "y", "metadata"}``.

        Lines not scanned yet are NaN. Rows are lines in scan order, columns points (x increasing).
        """
        frame, done = self._frame_and_progress()
        group = validation.one_of("group", group, (ScanGroupID.Forward, ScanGroupID.Backward))
        channel = validation.one_of("channel", channel, tuple(CHANNELS))
        data = frame.data[channel, group].copy()
        data[done:] = np.nan
        name, unit = CHANNELS[channel][0], channel_unit(channel, frame.metadata["operating_mode"])
        metadata = {**frame.metadata, "channel": {"index": channel, "name": name, "unit": unit},
                    "group": "forward" if group == ScanGroupID.Forward else "backward",
                    "lines_done": done}
        return {"data": data, "x": frame.x, "y": frame.y, "metadata": metadata}

    # --- spectroscopy ---------------------------------------------------------------------------
    def start_spec(self) -> None:
        """Force-distance curves at every listed position (scanner coordinates, like CenterPos)."""
        if self.is_scanning():
            raise RuntimeError("cannot run spectroscopy while scanning; call Scan.Stop() first")
        state = self.settings.snapshot()
        tip = self.tip(state)

        def height(x: float, y: float) -> float:  # the contact point: the apex touching the surface
            apex, _, _ = self.topography(Window.around(x, y, 1e-9, 1e-9), 3, 3, tip)
            return float(apex[1, 1])

        here = (state["Scan.CenterPosX"], state["Scan.CenterPosY"])  # idle, the tip rests at the frame centre
        self.spec.start(state, tip.radius, height, self.motion.stage_position(), here,
                        self.motion.approached())

    # --- the free cantilever ----------------------------------------------------------------------
    def frequency_sweep(self, lower: Any, upper: Any, step: Any, drive: Any) -> dict[str, Any]:
        """Drive the free cantilever from ``lower`` to ``upper`` (Hz) in ``step`` s, with ``drive`` V,
        and read its oscillation through the lock-in: amplitude (V on the detector) and phase (deg,
        lagging) per frequency, as a damped harmonic oscillator of the lever's resonance and Q (the
        drive that gives the free amplitude at resonance is ``OperatingMode.VibratingAmpl``). Takes
        10 ms of instrument time a point; refused with the tip on the surface."""
        lower = validation.real("lower", lower, 1.0, 10e6, "Hz")
        upper = validation.real("upper", upper, lower, 10e6, "Hz")
        step = validation.real("step", step, 1e-3, upper - lower if upper > lower else 1e6, "Hz")
        drive = validation.real("drive", drive, 0.0, 10.0, "V")
        points = int((upper - lower) / step) + 1
        if points > _MOST_SWEEP_POINTS:
            finest = (upper - lower) / (_MOST_SWEEP_POINTS - 1)
            raise ValueError(f"step = {step!r} Hz from {lower:g} to {upper:g} Hz makes {points} points; "
                             f"allowed at most {_MOST_SWEEP_POINTS} (step >= {finest:.3g} Hz)")
        if self.motion.approached():
            raise RuntimeError("a frequency sweep measures the free cantilever; withdraw the tip first "
                               "(Approach.StartWithdraw)")
        state, hw = self.settings.snapshot(), self.hardware
        frequency = lower + step * np.arange(points)
        quality = state["twin.quality_factor"]
        response = driven_response(frequency, state["twin.resonance_frequency"], quality)
        per_volt = hw.free_amplitude / (quality * max(state["OperatingMode.VibratingAmpl"], 1e-6))  # m/V
        rng = np.random.default_rng([self.seed, _STREAM_SWEEP, self.sweeps])
        amplitude = np.abs(response) * per_volt * drive / hw.deflection_sensitivity  # V on the detector
        amplitude += gaussian_noise(frequency.shape, hw.sweep_noise, rng)
        phase = np.degrees(np.angle(response)) + gaussian_noise(frequency.shape, hw.phase_noise, rng)
        self.sweeps += 1
        self.clock.pass_time(points * _SWEEP_POINT_TIME)
        return {"frequency": frequency, "amplitude": np.abs(amplitude), "phase": phase}

    # --- saving ---------------------------------------------------------------------------------
    def set_gallery(self, path: Any) -> str:
        """Where captures are written: the folder as named on the instrument PC (``C:\\data\\run``),
        kept under this twin's own folder on the server (:mod:`twin.instruments.files`)."""
        files.relative_parts("path", path)
        with self._lock:
            self._gallery = path.strip()
            return self._gallery

    def gallery(self) -> str:
        with self._lock:
            return self._gallery

    def set_file_mask(self, mask: Any) -> str:
        """Captured files' names: the mask with ``[INDEX]`` replaced by a number, or followed by one."""
        mask = files.file_name_start("mask", mask)
        with self._lock:
            self._file_mask = mask
            return self._file_mask

    def save_video_frame(self, path: Any, source: Any) -> bool:
        """Save the optical camera's picture (``source`` 0: side view, 1: top view) as ``path`` under
        this twin's folder (the suffix chooses the format: .jpg, .png, .bmp, .tif); True when written."""
        source = validation.one_of("VideoSource", source, (VideoSource.SideView, VideoSource.TopView))
        if not isinstance(path, str) or not path.strip():
            raise ValueError(f"path = {brief(path)}: give a file name such as 'topimage.jpg'")
        *folder, name = files.relative_parts("path", path)
        suffix = Path(name).suffix.lower()
        if suffix not in (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"):
            raise ValueError(f"path = {path!r}: allowed suffixes .jpg, .png, .bmp, .tif")
        target = self.files_root.joinpath(*folder, name)
        files.check_quota(self.files_root, 640 * 480 * 3, self.files_quota)
        if source == VideoSource.TopView:
            stage = self.motion.stage_position()
            state = self.settings.snapshot()
            picture = video.top_view(self.sample, (stage[0] + state["Scan.CenterPosX"],
                                                   stage[1] + state["Scan.CenterPosY"]))
        else:
            picture = video.side_view(0.0 if self.motion.approached() else self.hardware.standby_gap)
        video.save(target, picture)
        return True

    def set_file_index(self, index: Any) -> int:
        """The number captured files start from: each takes the first free number from it."""
        index = validation.integer("index", index, 0, 999_999)
        with self._lock:
            self._file_index = index
        return index

    def capture(self) -> list[str]:
        """Save the current (or last) frame, every channel and trace, lines scanned so far, as a
        Gwyddion ``.gwy`` and a NetCDF ``.nc`` file in the gallery; returns their paths."""
        frame, done = self._frame_and_progress()
        return self._save(frame, done)

    def _save(self, frame: Frame, done: int) -> list[str]:
        images, units = {}, {}
        for channel, (name, _) in CHANNELS.items():
            unit = channel_unit(channel, frame.metadata["operating_mode"])
            for group, trace in ((ScanGroupID.Forward, "Forward"), (ScanGroupID.Backward, "Backward")):
                data = frame.data[channel, group].astype(np.float64)
                data[done:] = np.nan
                images[f"{name} {trace}"], units[f"{name} {trace}"] = data, unit
        metadata = {**frame.metadata, "lines_done": done}
        if not self.sample.revealed:  # a file a team may read tells what the instrument knows, no more
            metadata = public_metadata(metadata)
        dataset = capture.frame_dataset(images, units, frame.x, frame.y, metadata)
        with self._save_lock:
            with self._lock:
                directory = files.confined(self.files_root, "path", self._gallery)
                mask = self._file_mask
            files.check_quota(self.files_root, 2 * sum(image.nbytes for image in images.values()),
                              self.files_quota)
            with self._lock:
                first = self._file_index
            stem, _ = capture.next_free(directory, mask, first)
            capture.write_gwy(stem.with_suffix(".gwy"), dataset, metadata)
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

    def _scan(self, state: dict[str, Any], window: Window, downward: bool = False,
              started_at: tuple[float, float] | None = None) -> Frame:
        """Scan a frame starting now, or at ``started_at`` = (instrument time, wall-clock reading): the
        simulation (:mod:`~twin.instruments.afm.scanning`) over the surface the tip sees, then the
        frame counted and its time passed."""
        points, lines = state["Scan.Points"], state["Scan.Lines"]
        tip_now = self.tip(state)
        frame_index = self._frames
        started = self.clock.now() if started_at is None else started_at[0]
        path = scanning.scan_path(state, window, downward, started, self.hardware, self._offset_steps,
                                  tip_now.radius)
        rng = np.random.default_rng([self.seed, scanning.STREAM_SCAN, frame_index])
        if not self.motion.approached():  # withdrawn: the loop extends the piezo fully and finds nothing
            data, record = scanning.free_air_frame(state, window, path, tip_now, self.hardware, rng)
        else:
            x, y = path.x, path.y
            reach = Window(float(x.min()), float(y.min()), float(x.max()), float(y.max()))
            image_pixel = min(window.width / points, window.height / lines)
            apex = self.apex_map(reach, path.step, tip_now, image_pixel)
            materials = MaterialMap.over(self.sample, reach, tip_now.radius)
            data, record = scanning.simulate_frame(state, window, path, apex, materials, tip_now,
                                                   self.feedback(state), self.hardware, rng)
        self._frames += 1
        self.clock.pass_time(lines * state["Scan.Scantime"])
        metadata = scanning.frame_metadata(state, window, self.sample, self.seed, frame_index, started,
                                           downward, tip_now, record)
        x, y = scanning.pixel_centres(state, window, downward)
        return Frame(data, x, y, state["Scan.Scantime"],
                     self.clock.wall() if started_at is None else started_at[1], metadata)

    def load(self, state: dict[str, Any]) -> float:
        """Mean force (N) pressing the tip on the surface at the setpoint."""
        return tip_model.load(state, self.hardware)

    def _wear(self, state: dict[str, Any], frame: Frame) -> dict[str, Any]:
        """Wear the tip by ``frame`` (:func:`~twin.instruments.afm.tip.wear`): the new tip is what the
        next frame uses; returns it with what happened."""
        twin, index = frame.metadata["twin"], frame.metadata["acquisition"]["frame_index"]
        path = twin["tip_speed"] * frame.line_time * frame.lines  # forward and backward
        largest = self.settings.parameter("twin.tip_radius").hi
        changes, record = tip_model.wear(state, self.hardware, self.seed, index, path,
                                         twin["feedback_stable"], largest)
        for name, value in changes.items():
            self.settings.set(name, value)
        return record

    def tip(self, state: dict[str, Any] | None = None) -> Tip:
        """The tip as set now (or in ``state``)."""
        return tip_model.tip_of(state or self.settings.snapshot())

    def feedback(self, state: dict[str, Any] | None = None) -> Feedback:
        """The z-loop as set now (or in ``state``)."""
        state = state or self.settings.snapshot()
        hw = self.hardware
        return Feedback(state["ZController.PGain"] * hw.proportional_unit,
                        state["ZController.IGain"] * hw.integral_unit,
                        state["ZController.DGain"] * hw.derivative_unit, hw.z_response_time, hw.loop_delay,
                        state["twin.loop_gain"])

    def topography(
        self, window: Window, points: int, lines: int, tip: Tip | float
    ) -> tuple[np.ndarray, str, float]:
        """Noise-free apex height (m) at each pixel centre, ``[lines, points]``, as ideal feedback
        would record it; with the method (atoms or continuum) and the internal sampling (m)."""
        tip = tip if isinstance(tip, Tip) else Tip(tip)
        return apex_surface.topography(self.sample, self.hardware, window, points, lines, tip)

    def apex_map(self, window: Window, pixel: float, tip: Tip, image_pixel: float | None = None) -> ApexMap:
        """The apex height of ``tip`` over ``window`` (:func:`~twin.instruments.afm.surface.apex_map`)."""
        return apex_surface.apex_map(self.sample, self.hardware, window, pixel, tip, image_pixel)

    def describe(self) -> dict[str, Any]:
        return {"settings": self.settings.describe(),
                "channels": [{"number": number, "name": name, "unit": unit}
                             for number, (name, unit) in CHANNELS.items()],
                "operating_modes": {name: getattr(OperatingMode, name) for name in vars(OperatingMode)
                                    if not name.startswith("_")},
                "stage_range": self.hardware.stage_range, "scanner_range": self.hardware.scanner_range,
                "z_range": self.hardware.z_range}

