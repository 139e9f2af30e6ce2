"""The AFM: scanner, z-controller settings, approach and a tip, over the same sample as the TEM.

A frame is computed when it starts and revealed line by line as instrument time passes
(``Scantime`` seconds per line, forward and backward), so polling ``Currentline`` behaves the
same whether time runs at the instrument's pace or instantly.

Feedback is ideal in this version: the tip apex follows the dilated surface exactly and the
controller input (channel 0) sits at the setpoint plus detector noise.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
from ase.data.vdw_alvarez import vdw_radii
from scipy import ndimage

from twin import validation
from twin.instruments.clock import Clock
from twin.instruments.parameters import Integer, Real, Settings
from twin.physics.afm import paraboloid_dilation, tip_reach, vdw_height_map
from twin.physics.noise import gaussian_noise
from twin.sample import Sample, Window

ANGSTROM = 1e-10
_STREAM_SCAN = 0x53434E  # random stream tag for scan noise


class ApproachStatus:
    """Values of ``Approach.Status`` (the vendor's numbering)."""

    Standby = 0
    Initializing = 1
    Approaching = 2
    ApproachDone = 3
    ApproachAborted = 4


class ScanGroupID:
    Forward = 0
    Backward = 1


class ScanChannel:
    """Scan channels: the z-controller's input and the topography."""

    Deflection_or_ZCtrlIn = 0
    Topography = 1


CHANNELS = {ScanChannel.Deflection_or_ZCtrlIn: ("Deflection_or_ZCtrlIn", "%"),
            ScanChannel.Topography: ("Topography", "m")}


class DataFilter:
    RAW, MeanFit, LineFit, DerivedData, ParabolaFit, PolynomialFit = range(6)


class DataConversion:
    Binary16, Physical, Binary32 = range(3)


@dataclass(frozen=True)
class AfmHardware:
    """Fixed properties of the simulated AFM (SI units)."""

    scanner_range: float = 100e-6  # full xy range; the frame must fit in ±range/2
    z_range: float = 2e-6  # full z range, sets the binary conversions' least significant bit
    approach_duration: float = 3.0  # s
    atom_limit: int = 2_000_000  # beyond this the frame is computed from the continuum surface
    fine_grid_limit: int = 2048 * 2048  # cells of the internal atomistic grid
    height_tolerance: float = 5e-12  # m; bounds the internal pixel so area-max ≈ point sampling
    input_noise: float = 0.2  # % (controller-input noise)


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
                Real("ZController.SetPoint", "%", 0.0, 100.0, 70.0, "setpoint, % of free amplitude"),
                Real("ZController.PGain", "", 0.0, 100_000.0, 3100.0, "proportional gain"),
                Real("ZController.IGain", "", 0.0, 100_000.0, 3500.0, "integral gain"),
                Real("twin.tip_radius", "m", 0.5e-9, 1e-6, 2e-9, "tip apex radius (paraboloid)"),
                Real("twin.z_noise", "m", 0.0, 1e-9, 20e-12, "RMS height noise per point"),
            ]
        )
        self._lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._approach_started: float | None = None
        self._frame: Frame | None = None
        self._frames = 0

    # --- approach ------------------------------------------------------------------------------
    def start_approach(self) -> None:
        with self._lock:
            if self._scanning():
                raise RuntimeError("cannot approach while scanning; call Scan.Stop() first")
            self._approach_started = self.clock.wall()

    def approach_status(self) -> int:
        with self._lock:
            return self._approach_status()

    def _approach_status(self) -> int:
        if self._approach_started is None:
            return ApproachStatus.Standby
        if self.clock.elapsed(self._approach_started) >= self.hardware.approach_duration:
            return ApproachStatus.ApproachDone
        return ApproachStatus.Approaching

    def approach_is_moving(self) -> bool:
        return self.approach_status() == ApproachStatus.Approaching

    # --- scanning ------------------------------------------------------------------------------
    def start_frame_up(self) -> None:
        """Start a frame from the bottom line (lowest y) upwards."""
        state = self.settings.snapshot()
        window = self.scan_window(state)
        half = self.hardware.scanner_range / 2
        for axis, lo, hi in (("x", window.x_min, window.x_max), ("y", window.y_min, window.y_max)):
            if lo < -half or hi > half:
                raise ValueError(
                    f"scan frame spans {lo:.6g} to {hi:.6g} m in {axis}, outside the scanner range; "
                    f"allowed {validation.allowed_range(-half, half, 'm')} (CenterPos{axis.upper()} "
                    f"± Image{'Width' if axis == 'x' else 'Height'}/2)"
                )
        with self._lock:
            if self._approach_status() != ApproachStatus.ApproachDone:
                raise RuntimeError(
                    "the tip is not approached (Approach.Status is not ApproachDone); "
                    "call Approach.StartApproach() and wait for it first"
                )
        with self._scan_lock:
            frame = self._scan(state, window)
        with self._lock:
            self._frame = frame

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
        """The frame's area in the sample frame (m)."""
        state = state or self.settings.snapshot()
        return Window.around(
            state["Scan.CenterPosX"], state["Scan.CenterPosY"],
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

        Lines not scanned yet are NaN. Rows are lines (y increasing), columns points (x increasing).
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

    def _frame_and_progress(self) -> tuple[Frame, int]:
        with self._lock:
            if self._frame is None:
                raise RuntimeError("no frame has been scanned yet; call Scan.StartFrameUp() first")
            return self._frame, self._frame.lines_done(self.clock)

    def _scan(self, state: dict[str, Any], window: Window) -> Frame:
        points, lines = state["Scan.Points"], state["Scan.Lines"]
        tip_radius = state["twin.tip_radius"]
        frame_index = self._frames
        self._frames += 1
        topography, method, sampling = self.topography(window, points, lines, tip_radius)
        rng = np.random.default_rng([self.seed, _STREAM_SCAN, frame_index])
        shape = (2, lines, points)
        data = np.empty((2, *shape), dtype=np.float32)
        data[ScanChannel.Topography] = topography + gaussian_noise(shape, state["twin.z_noise"], rng)
        data[ScanChannel.Deflection_or_ZCtrlIn] = state["ZController.SetPoint"] + gaussian_noise(
            shape, self.hardware.input_noise, rng
        )
        x = window.x_min + (np.arange(points) + 0.5) * window.width / points
        y = window.y_min + (np.arange(lines) + 0.5) * window.height / lines
        metadata = {
            "acquisition": {
                "start_datetime": datetime.now(timezone.utc).isoformat(),
                "frame_index": frame_index,
                "direction": "up",
            },
            "scan": {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("Scan.")},
            "z_controller": {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("ZController.")},
            "tip": {"radius": tip_radius, "shape": "paraboloid"},
            "twin": {
                "window": window.as_dict(),
                "pixel_size": {"x": window.width / points, "y": window.height / lines},
                "pixel_origin": "centre",
                "row_axis": "y",
                "sample": self.sample.name,
                "sample_version": self.sample.version,
                "seed": self.seed,
                "simulation": method,
                "internal_sampling": sampling,
                "z_noise": state["twin.z_noise"],
                "feedback": "ideal",
            },
        }
        return Frame(data, x, y, state["Scan.Scantime"], self.clock.wall(), metadata)

    def topography(
        self, window: Window, points: int, lines: int, tip_radius: float
    ) -> tuple[np.ndarray, str, float]:
        """Noise-free apex height (m) at each pixel centre: ``[lines, points]``.

        The surface is built on an internal square grid fine enough that taking each cell's highest
        point is as good as point sampling, dilated by the tip, then read at the pixel centres.
        """
        px, py = window.width / points, window.height / lines
        # Dilated by the tip, the surface is smooth on the scale of ``finest``: a finer grid buys
        # nothing, and pixels exactly one step apart are read without interpolation.
        finest = np.clip(
            np.sqrt(8 * tip_radius * self.hardware.height_tolerance), 0.2 * ANGSTROM, 2 * ANGSTROM
        )
        step = float(np.clip(min(px, py), 0.2 * ANGSTROM, finest))
        margin = np.ceil((tip_reach(tip_radius, 1e-9) + 3 * ANGSTROM) / step) * step
        padded = window.grown(margin)
        shape = (int(np.ceil(padded.height / step)), int(np.ceil(padded.width / step)))
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
            step = max(min(px, py), finest)
            shape = (int(np.ceil(padded.height / step)), int(np.ceil(padded.width / step)))
            xs = padded.x_min + (np.arange(shape[1]) + 0.5) * step
            ys = padded.y_min + (np.arange(shape[0]) + 0.5) * step
            surface = self.sample.surface_height(xs[None, :], ys[:, None])
            method = "continuum"
        apex = paraboloid_dilation(surface, step, tip_radius)
        cols = (window.x_min - padded.x_min + (np.arange(points) + 0.5) * px) / step - 0.5
        rows = (window.y_min - padded.y_min + (np.arange(lines) + 0.5) * py) / step - 0.5
        rr, cc = np.meshgrid(rows, cols, indexing="ij")
        sampled = ndimage.map_coordinates(apex, [rr, cc], order=1, mode="nearest")
        return sampled, method, float(step)

    def describe(self) -> dict[str, Any]:
        return {"settings": self.settings.describe(), "channels": CHANNELS}


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
