"""What the live page shows, as plain data: the state of one instance's instruments (read from the
board and from lock-free peeks of the settings), its map, the scoreboard, and the pictures. No web
framework here: :mod:`twin.server.live.web` serves these."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from twin.common.afm_vocabulary import CHANNELS, ApproachStatus
from twin.instruments.disclosure import public_metadata
from twin.server.live import pictures
from twin.server.live.board import Footprint
from twin.server.live.publish import AFM_CHANNEL, TEM_CHANNELS, dose_per_area
from twin.server.security import is_loopback
from twin.validation import brief

APPROACH_WAIT = 30.0  # s the page waits for the AFM's approach before it scans
MAX_KNOCKED = 20000  # knocked-out atoms the map shows at most
TEM_PANEL = ("optics.optical_mode", "optics.projector_mode", "source.acceleration_voltage",
             "optics.magnification", "optics.camera_length", "optics.scan_field_of_view",
             "optics.spot_size_index", "optics.beam_blanked", "vacuum.column_valves_open",
             "detectors.screen_inserted")
AFM_PANEL = ("OperatingMode.OperatingMode", "ZController.SetPoint", "ZController.PGain", "ZController.IGain",
             "ZController.TipVoltage", "Scan.ImageWidth", "Scan.Points", "Scan.Lines", "Scan.Scantime")
TRACES = ("forward", "backward")
HOSTED_ROWS_SECONDS = 1.0  # s the rows of instances hosted elsewhere serve every viewer before asked again


class LiveAddressTaken(OSError):
    """The live view's address cannot be bound (its port is taken, say)."""


@dataclass(frozen=True)
class LiveOptions:
    """How ``twin serve`` serves the live page: ``host``, ``port`` (None: the Pyro port + 1 if free,
    else any free one) and whether the page may move the stage, focus and start scans (``control``)."""

    host: str = "127.0.0.1"
    port: int | None = None
    control: bool = False

    def __post_init__(self) -> None:
        if self.control and not is_loopback(self.host):
            raise ValueError(f"--live-control with --live-host {self.host}: control from the page is for "
                             "demos on this machine; serve it on a loopback address (127.0.0.1)")


def _window_rect(window: dict[str, float]) -> list[float]:
    return [float(window[k]) for k in ("x_min", "y_min", "x_max", "y_max")]


def _around(x: float, y: float, width: float, height: float) -> list[float]:
    return [x - width / 2, y - height / 2, x + width / 2, y + height / 2]


def accumulated_doses(footprints: list[Footprint]) -> list[float]:
    """For each footprint, the electrons/m² every footprint so far gave its centre (itself included)."""
    if not footprints:
        return []
    rects = np.array([_window_rect(f.window) for f in footprints])
    doses = np.array([f.dose for f in footprints])
    cx, cy = (rects[:, 0] + rects[:, 2]) / 2, (rects[:, 1] + rects[:, 3]) / 2
    totals = np.empty(len(footprints))
    for start in range(0, len(footprints), 512):  # bounded memory: 512 x n booleans at a time
        x, y = cx[start:start + 512, None], cy[start:start + 512, None]
        inside = (rects[:, 0] <= x) & (x <= rects[:, 2]) & (rects[:, 1] <= y) & (y <= rects[:, 3])
        totals[start:start + 512] = inside.astype(np.float64) @ doses
    return totals.tolist()


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and tuples as Python numbers and lists, NaN and infinities as None."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def tem_conditions(metadata: dict[str, Any]) -> dict[str, Any]:
    """The imaging conditions a TEM/STEM image's caption shows (SI units)."""
    optics, result = metadata.get("optics", {}), metadata.get("binary_result", {})
    return _plain({"detector": result.get("detector"), "mode": optics.get("optical_mode"),
                   "projector": optics.get("projector_mode"), "voltage": optics.get("acceleration_voltage"),
                   "defocus": optics.get("defocus"), "magnification": optics.get("magnification"),
                   "camera_length": optics.get("camera_length"), "dose": dose_per_area(metadata),
                   "exposure": metadata.get("acquisition", {}).get("exposure_time"),
                   "frame": metadata.get("acquisition", {}).get("frame_index")})


class LiveSite:
    """The live page's data for a server's instances (``instances``: :class:`Instance` objects);
    ``private``: a private server (the page shows the public scoreboard only); ``control``: whether
    the page may act on an instrument; ``hosted_rows``: for instances living elsewhere (on Dask workers,
    not in ``instances``), the scoreboard's source: ``hosted_rows(names, budgets)`` gives every one's row
    (see :meth:`Instance.row`), asked at most every :data:`HOSTED_ROWS_SECONDS` whoever watches."""

    def __init__(self, instances: list[Any], private: bool = False, control: bool = False,
                 hosted_rows: Callable[[bool, bool], list[dict[str, Any]]] | None = None) -> None:
        self._instances = instances
        self._private = private
        self.control = control
        self._hosted_rows = hosted_rows
        self._asking = threading.Lock()
        self._hosted: tuple[float, list[dict[str, Any]]] | None = None  # when asked, and the answer
        self._pictures = pictures.PictureCache()
        self._maps: dict[str, tuple[int, dict[str, Any]]] = {}

    @property
    def scenarios(self) -> bool:
        return self._hosted_rows is not None or any(i.episode is not None for i in self._instances)

    def names(self) -> list[str]:
        """The instances whose instruments the page may show: none on a private server."""
        return [] if self._private else [i.name for i in self._instances]

    def instance(self, name: str | None) -> Any:
        """The instance called ``name`` (the first one for None); LookupError if the page may not show it."""
        names = self.names()
        if not names:
            why = "this server is private" if self._private else "its instruments live on its workers"
            raise LookupError(f"{why}: the live page shows the scoreboard only")
        name = names[0] if name is None else name
        if name not in names:
            raise LookupError(f"instance = {brief(name)} is not on this server; allowed: {', '.join(names)}")
        return next(i for i in self._instances if i.name == name)

    # --- the page's state ---------------------------------------------------------------------
    def state(self, name: str | None) -> dict[str, Any]:
        """Everything small the page shows: panels, the latest images' versions and conditions, the
        instruments' current fields of view, the map's version, the scoreboard."""
        shown: dict[str, Any] = {"private": self._private, "control": self.control, "instances": self.names(),
                                 "scoreboard": self.scoreboard() if self.scenarios else None}
        if not self.names():
            return shown
        instance = self.instance(name)
        twin, board = instance.twin, instance.board
        shown |= {"instance": instance.name, "ground_truth": twin.ground_truth,
                  "control": self.control and instance.episode is None,
                  "map_version": board.versions().get("map", 0),
                  "tem": self._tem_state(instance), "afm": self._afm_state(instance)}
        return _plain(shown)

    def _tem_state(self, instance: Any) -> dict[str, Any]:
        tem = instance.twin.tem
        settings, stage = tem.settings.peek(), tem.stage.peek()
        panel = {name: settings[name] for name in TEM_PANEL}
        panel["defocus"] = settings["optics.focus"] - tem.defocus_reference
        inserted = [name.split(".")[1] for name, value in settings.items()
                    if name.startswith("detectors.") and name.endswith(".inserted") and value]
        panel["detectors inserted"] = ", ".join(inserted) or "none"
        panel["stage"] = stage
        panel["frames"] = tem.frames_taken
        stem = settings["optics.optical_mode"] == "Stem"
        fov = (settings["optics.scan_field_of_view"] if stem
               else tem.field_of_view(settings["optics.magnification"]))
        images = {}
        for channel in TEM_CHANNELS:
            snapshot = instance.board.latest(channel)
            if snapshot is not None:
                image = snapshot.payload
                result = image["metadata"].get("binary_result", {})
                images[channel] = {"version": snapshot.version,
                                   "conditions": tem_conditions(image["metadata"]),
                                   "pixel_size": result.get("pixel_size", {}).get("x"),
                                   "pixel_unit": result.get("pixel_size_unit", "m"),
                                   "shape": list(image["shape"])}
        return {"panel": panel, "fov": _around(stage["x"], stage["y"], fov, fov), "images": images}

    def _afm_state(self, instance: Any) -> dict[str, Any]:
        afm = instance.twin.afm
        settings, stage = afm.settings.peek(), afm.motion.peek_stage()
        panel = {name: settings[name] for name in AFM_PANEL}
        panel["stage"] = stage
        if instance.twin.ground_truth:
            panel["tip_radius"] = settings["twin.tip_radius"]
        x, y = stage["x"] + settings["Scan.CenterPosX"], stage["y"] + settings["Scan.CenterPosY"]
        fov = _around(x, y, settings["Scan.ImageWidth"], settings["Scan.ImageHeight"])
        state: dict[str, Any] = {"panel": panel, "fov": fov}
        snapshot = instance.board.latest(AFM_CHANNEL)
        if snapshot is not None:
            frame, clock = snapshot.payload
            metadata = frame.metadata if instance.twin.ground_truth else public_metadata(frame.metadata)
            state["frame"] = {
                "version": snapshot.version, "lines_done": frame.lines_done(clock), "lines": frame.lines,
                "points": int(frame.data.shape[3]), "direction": metadata["acquisition"]["direction"],
                "frame": metadata["acquisition"]["frame_index"],
                "pixel_size": float(frame.x[1] - frame.x[0]) if len(frame.x) > 1 else None,
                "channels": [{"index": int(i), "name": n, "unit": u} for i, (n, u) in CHANNELS.items()],
                "conditions": {"mode": metadata["operating_mode"], "z_controller": metadata["z_controller"],
                               "line_time": metadata["scan"]["Scantime"], "tip": metadata.get("tip")}}
        return state

    # --- the map -------------------------------------------------------------------------------
    def sample_map(self, name: str | None) -> dict[str, Any]:
        """The stage travel of both instruments, every place imaged (instrument, rectangle in m,
        its dose and the dose accumulated at its centre, electrons/m²) and, with the ground truth on,
        the atoms the beam knocked out (x, y in m, element)."""
        instance = self.instance(name)
        version = instance.board.versions().get("map", 0)
        cached = self._maps.get(instance.name)
        if cached is not None and cached[0] == version:
            return cached[1]
        footprints = instance.board.footprints()
        totals = accumulated_doses(footprints)
        tem, afm = instance.twin.tem, instance.twin.afm
        half = afm.hardware.stage_range / 2
        (xlo, xhi), (ylo, yhi) = tem.stage.limits("x"), tem.stage.limits("y")
        knocked = None
        if instance.twin.ground_truth:
            knocked = [[x * 1e-10, y * 1e-10, element]
                       for x, y, element in instance.twin.sample.knocked_out.peek(MAX_KNOCKED)]
        shown = _plain({
            "version": version,
            "travel": {"tem": [xlo, ylo, xhi, yhi], "afm": [-half, -half, half, half]},
            "footprints": [[f.instrument, *_window_rect(f.window), f.dose, total]
                           for f, total in zip(footprints, totals, strict=True)],
            "knocked": knocked})
        self._maps[instance.name] = (version, shown)
        return shown

    # --- the scoreboard ------------------------------------------------------------------------
    def scoreboard(self) -> list[dict[str, Any]]:
        """Every playing instance: the public leaderboard row (names only on an open server) and, on an
        open server, its budgets (spent and limit) -- never a token, seed or hidden state."""
        shown = not self._private  # names and budgets
        if self._hosted_rows is not None:
            rows = list(self._rows_hosted(shown))
        else:
            rows = [i.row(names=shown, budgets=shown) for i in self._instances if i.episode is not None]
        rows.sort(key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["instance"] or ""))
        return _plain(rows)

    def _rows_hosted(self, shown: bool) -> list[dict[str, Any]]:
        """The hosted instances' rows, asked again once :data:`HOSTED_ROWS_SECONDS` have passed (one viewer
        asks, the others meanwhile wait for its answer)."""
        with self._asking:
            if self._hosted is None or time.monotonic() - self._hosted[0] >= HOSTED_ROWS_SECONDS:
                self._hosted = (time.monotonic(), self._hosted_rows(shown, shown))
            return self._hosted[1]

    # --- pictures ------------------------------------------------------------------------------
    def picture(self, name: str | None, channel: str, trace: str = "forward", signal: int = 1) -> bytes:
        """The newest picture of ``channel`` (a TEM channel, or ``afm.frame`` with its ``trace`` and
        ``signal`` channel number) as a :func:`~twin.server.live.pictures.grey_frame`; LookupError if there
        is none yet."""
        instance = self.instance(name)
        snapshot = instance.board.latest(channel)
        if channel not in (*TEM_CHANNELS, AFM_CHANNEL):
            raise LookupError(f"channel = {brief(channel)}; allowed: "
                              f"{', '.join((*TEM_CHANNELS, AFM_CHANNEL))}")
        if snapshot is None:
            raise LookupError(f"nothing acquired on {channel} yet")
        if channel != AFM_CHANNEL:
            data = snapshot.payload["data"]
            key = (instance.name, channel, snapshot.version)
            return self._pictures.get(key, lambda: pictures.grey_frame(pictures.grey_levels(
                data, logarithmic=channel == "tem.diffraction")))
        if trace not in TRACES or signal not in CHANNELS:
            raise LookupError(f"trace = {brief(trace)}, signal = {brief(signal)}; allowed traces {TRACES}, "
                              f"signals {sorted(CHANNELS)}")
        frame, clock = snapshot.payload
        done = frame.lines_done(clock)
        key = (instance.name, channel, snapshot.version, done, trace, signal)

        def encode() -> bytes:
            lines = frame.data[signal, TRACES.index(trace)].astype(np.float64)
            lines[done:] = np.nan
            upward = frame.metadata["acquisition"]["direction"] == "up"
            levels = pictures.grey_levels(lines[::-1] if upward else lines, level_lines=True)
            return pictures.grey_frame(levels)

        return self._pictures.get(key, encode)

    # --- control (demos) ---------------------------------------------------------------------------
    def check_control(self) -> None:
        """PermissionError unless the server allows control from the page."""
        if not self.control:
            raise PermissionError("control from the page is off; start the server with twin serve "
                                  "--live-control")

    def act(self, name: str | None, action: str, value: Any) -> Any:
        """Act on an instrument through its remote object, as a client would (its checks apply): move
        the TEM stage (``value`` {"x", "y"} m), set the defocus (m), acquire a TEM image or start an AFM
        frame. PermissionError unless the server allows control, and never in a challenge."""
        instance = self.instance(name)
        self.check_control()
        if instance.episode is not None:
            raise PermissionError("control from the page is refused in a challenge")
        tem, afm = instance.objects["tem"], instance.objects["afm"]
        if action == "move_stage":
            if not isinstance(value, dict) or set(value) - {"x", "y"}:
                raise ValueError(f"value = {brief(value)}: give {{'x': m, 'y': m}}")
            return tem.move_stage(value)
        if action == "defocus":
            return tem.set("optics.defocus", value)
        if action == "acquire":
            tem.acquire_camera_image("BM-Ceta", 512, 0.1)
            return None
        if action == "scan":
            if afm.approach_status() != ApproachStatus.ApproachDone:
                afm.start_approach()
                deadline = time.monotonic() + APPROACH_WAIT
                while afm.approach_is_moving() and time.monotonic() < deadline:
                    time.sleep(0.05)
            afm.start_frame_up()
            return None
        raise ValueError(f"action = {brief(action)}; allowed: move_stage, defocus, acquire, scan")
