"""``twin mcp``: the twin's main instrument actions as MCP tools, over stdio, for LLM agents.

The tools drive a running twin (``twin serve``) through the same clients scripts use, so an LLM's
calls are journalled, budgeted and scored like anyone's. Arrays stay out of the conversation: an
acquisition returns a summary (shape, statistics, the pixel size and window in m) and the path of an
``.npy`` file with the data; ``view_last_image`` returns it as a PNG for models that can see.
"""

from __future__ import annotations

import functools
import io
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from clients.afm import SPM
from clients.challenge import Challenge
from clients.tem import TemMicroscopeClient
from clients.tem.enumerations import CameraType
from clients.tem.structures import StagePosition

INSTRUCTIONS = """\
A digital-twin TEM/STEM and AFM imaging one shared sample (2-D materials such as graphene). All values
are SI: metres, seconds, volts, radians. The TEM stage travels about ±1 mm in x, y; a STEM field of view
of 2-50 nm resolves atoms. The AFM must approach before scanning; frames are ImageWidth metres wide.
In a challenge, read challenge_goal first; challenge_submit ends the episode with a score."""


class Session:
    """The clients of one twin instance, opened on first use; images saved under ``folder``."""

    def __init__(self, host: str, port: int, instance: str | None, folder: Path) -> None:
        self.host, self.port, self.instance, self.folder = host, port, instance, folder
        self._tem: TemMicroscopeClient | None = None
        self._afm: SPM | None = None
        self._challenge: Challenge | None = None
        self.last_image: np.ndarray | None = None
        self.saved = 0

    @property
    def tem(self) -> TemMicroscopeClient:
        if self._tem is None:
            self._tem = TemMicroscopeClient()
            self._tem.connect(self.host, self.port, self.instance)
        return self._tem

    @property
    def afm(self) -> SPM:
        if self._afm is None:
            self._afm = SPM(self.host, self.port, self.instance)
        return self._afm

    def challenge(self) -> Challenge:
        if self._challenge is None:
            self._challenge = Challenge(self.host, self.port, self.instance)
        return self._challenge

    def summary(self, data: np.ndarray, pixel: float, window: Any, **extra: Any) -> dict[str, Any]:
        """What an acquisition returns to the model: statistics, geometry and where the data is."""
        self.last_image = np.asarray(data)
        self.saved += 1
        path = self.folder / f"image-{self.saved:04d}.npy"
        np.save(path, self.last_image)
        finite = self.last_image[np.isfinite(self.last_image)]
        stats = {"min": finite.min(), "max": finite.max(), "mean": finite.mean(), "std": finite.std()
                 } if finite.size else dict.fromkeys(("min", "max", "mean", "std"))  # nothing scanned yet
        return {"shape": list(self.last_image.shape), "dtype": str(self.last_image.dtype),
                **{k: None if v is None else float(v) for k, v in stats.items()},
                "finite_pixels": int(finite.size), "pixel_size_m": pixel, "window_m": dict(window),
                "npy": str(path), **extra}


REFUSALS = (ValueError, TypeError, RuntimeError, PermissionError, ConnectionError)


def arrays_from_files(value: Any) -> Any:
    """``value`` with every string naming an existing ``.npy`` file replaced by that file's array (an
    answer's image is too big to write into a tool call, so an agent saves it and gives the path)."""
    if isinstance(value, str) and value.endswith(".npy") and Path(value).is_file():
        return np.load(value, allow_pickle=False)
    if isinstance(value, dict):
        return {k: arrays_from_files(v) for k, v in value.items()}
    if isinstance(value, list):
        return [arrays_from_files(v) for v in value]
    return value


def _tools(server: MCPServer) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a tool whose refusals (bad values, spent budgets, ...) reach the model as tool errors
    carrying the twin's message, so it can correct itself."""

    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def tool(*args: Any, **kwargs: Any) -> Any:
            try:
                return function(*args, **kwargs)
            except REFUSALS as error:
                raise ToolError(f"{type(error).__name__}: {error}") from None

        server.tool()(tool)
        return function

    return register


def build(host: str, port: int, instance: str | None = None, folder: str | Path | None = None) -> MCPServer:
    """The MCP server whose tools drive the twin at ``host:port`` (``instance`` on a shared server)."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="twin-mcp-"))
    folder.mkdir(parents=True, exist_ok=True)
    session = Session(host, port, instance, folder)
    server = MCPServer("microscope-twin", instructions=INSTRUCTIONS)
    tool = _tools(server)

    @tool
    def tem_stage_position() -> dict[str, Any]:
        """The TEM stage position: x, y, z (m) and tilts a, b (rad)."""
        p = session.tem.specimen.stage.position
        return {"x": p.x, "y": p.y, "z": p.z, "a": p.a, "b": p.b}

    @tool
    def tem_stage_move(x: float | None = None, y: float | None = None, z: float | None = None,
                       relative: bool = False) -> dict[str, Any]:
        """Move the TEM stage to x, y, z (m; omitted axes stay), or by them if ``relative``."""
        target = StagePosition(x=x, y=y, z=z)
        stage = session.tem.specimen.stage
        stage.relative_move(target) if relative else stage.absolute_move(target)
        return tem_stage_position()

    @tool
    def tem_set_defocus(defocus: float) -> dict[str, float]:
        """Set the objective defocus (m; negative = underfocus, e.g. -50e-9) and read it back."""
        session.tem.optics.defocus = defocus
        return {"defocus": session.tem.optics.defocus}

    @tool
    def tem_acquire_image(size: int = 512, exposure_time: float = 0.1) -> dict[str, Any]:
        """An HRTEM camera image (switches to TEM mode): ``size`` pixels square (512, 1024, 2048 or
        4096), ``exposure_time`` s. Returns a summary and the path of the .npy data."""
        session.tem.optics.optical_mode = "Tem"
        image = session.tem.acquisition.acquire_camera_image(CameraType.BM_CETA, size, exposure_time)
        m = image.metadata
        return session.summary(image.data, m.binary_result.pixel_size.x, m.twin.window.to_dict(),
                               frame_index=m.acquisition.frame_index, defocus=m.optics.defocus)

    @tool
    def stem_acquire_image(detector: str = "HAADF", size: int = 256, dwell_time: float = 2e-6,
                           field_of_view: float | None = None) -> dict[str, Any]:
        """A STEM image (switches to STEM mode): ``detector`` HAADF, ADF, ABF or BF, ``size`` pixels,
        ``dwell_time`` s per pixel, ``field_of_view`` m (None keeps the current one)."""
        tem = session.tem
        tem.optics.optical_mode = "Stem"
        if field_of_view is not None:
            tem.optics.scan_field_of_view = field_of_view
        image = tem.acquisition.acquire_stem_image(detector, size, dwell_time)
        m = image.metadata
        return session.summary(image.data, m.binary_result.pixel_size.x, m.twin.window.to_dict(),
                               frame_index=m.acquisition.frame_index, detector=detector)

    @tool
    def afm_approach() -> dict[str, Any]:
        """Approach the AFM tip to the surface (needed before scanning)."""
        approach = session.afm.application.Approach
        approach.StartApproach()
        status = int(approach.Status)
        return {"status": status, "approached": status == SPM.ApproachStatus.ApproachDone}

    @tool
    def afm_scan(width: float = 50e-9, points: int = 256, lines: int = 256, centre_x: float = 0.0,
                 centre_y: float = 0.0, line_time: float | None = None) -> dict[str, Any]:
        """Scan one AFM frame ``width`` m square (``points`` x ``lines``) centred on ``centre_x``,
        ``centre_y`` (m, scanner offsets), ``line_time`` s per line; returns the topography summary."""
        scan = session.afm.application.Scan
        scan.ImageSize(width, width)
        scan.Points, scan.Lines = points, lines
        scan.CenterPosX, scan.CenterPosY = centre_x, centre_y
        if line_time is not None:
            scan.Scantime = line_time
        scan.StartFrameUp()
        frame = session.afm.get_frame(SPM.ScanGroupID.Forward, SPM.ScanChannel.Topography)
        return session.summary(frame.values, width / points, frame.attrs["twin"]["window"],
                               frame_index=frame.attrs["acquisition"]["frame_index"], channel="Topography")

    @tool
    def afm_read_line(line: int, channel: str = "Topography", direction: str = "forward") -> list[float]:
        """One scanned line of the last frame (values in SI: m for Topography), ``channel`` Topography,
        Phase, LateralForce or ZCtrlIn, ``direction`` forward or backward."""
        channels = {"ZCtrlIn": 0, "Topography": 1, "Phase": 2, "LateralForce": 3}
        if channel not in channels or direction not in ("forward", "backward"):
            raise ValueError(f"channel = {channel!r}, direction = {direction!r}: allowed channels "
                             f"{', '.join(channels)}; directions forward, backward")
        group = SPM.ScanGroupID.Forward if direction == "forward" else SPM.ScanGroupID.Backward
        text = session.afm.application.Scan.GetLine(group, channels[channel], line, SPM.DataFilter.RAW,
                                                    SPM.DataConversion.Physical)
        return [float(v) for v in text.split(";")]

    @tool
    def view_last_image() -> Image:
        """The last image as a greyscale PNG (contrast stretched to its 1st-99th percentiles)."""
        if session.last_image is None:
            raise ValueError("no image yet; acquire or scan first")
        import matplotlib.image

        data = np.nan_to_num(session.last_image.astype(float))
        lo, hi = np.percentile(data, [1, 99])
        buffer = io.BytesIO()
        matplotlib.image.imsave(buffer, np.clip((data - lo) / max(hi - lo, 1e-30), 0, 1), cmap="gray",
                                origin="lower", format="png")
        return Image(data=buffer.getvalue(), format="png")

    @tool
    def challenge_goal() -> dict[str, Any]:
        """The challenge this instance plays: title, goal, answer format, budgets, refused calls."""
        return session.challenge().scenario

    @tool
    def challenge_status() -> dict[str, Any]:
        """Budgets spent and left; the score once answered."""
        return session.challenge().status()

    @tool
    def challenge_submit(answer: dict[str, Any]) -> dict[str, Any]:
        """Hand in the answer (once; the format is in challenge_goal): returns the score (0..1). An array
        may be given as the path of an .npy file (e.g. {"heights": "/tmp/answer.npy"})."""
        return session.challenge().submit(arrays_from_files(answer))

    return server


def main(host: str, port: int, instance: str | None, folder: str | None) -> None:
    """Serve the tools over stdio until the client closes them."""
    build(host, port, instance, folder).run("stdio")
