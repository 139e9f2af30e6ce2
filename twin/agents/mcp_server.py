"""``twin mcp``: the twin's main instrument actions as MCP tools, over stdio, for LLM agents.

The tools drive a running twin (``twin serve``) through the same clients scripts use, so an LLM's
calls are journalled, budgeted and scored like anyone's. Every parameter's description, unit, range
and allowed values come from the twin's own declared settings (read from the server when the tools
are built: the same declarations it validates calls with). Tools carry MCP annotations (read-only,
destructive: an exposure to the beam can knock atoms out; idempotent) and return typed, structured
results. Arrays stay out of the conversation: an acquisition returns a summary (shape, statistics,
the pixel size and window in m) and the path of an ``.npy`` file with the data; ``view_last_image``
returns a small 8-bit PNG for models that can see. The resource ``twin://sample`` describes the
sample as a user of the real instrument would know it (never the hidden state).
"""

# No ``from __future__ import annotations``: the tools' parameter types are built from the server's
# description at run time, so the annotations must be evaluated where the tools are defined.

import functools
import io
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

try:
    from mcp.server.mcpserver import Image, MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import ToolAnnotations
    from pydantic import BaseModel, Field
except ImportError as error:  # pragma: no cover - the agents extra is missing
    raise ImportError(f"{error}; the MCP tools need the agents extra: pip install 'microscope-twin[agents]'"
                      ) from error

from clients.afm import SPM
from clients.challenge import Challenge
from clients.tem import TemMicroscopeClient
from clients.tem.enumerations import CameraType
from clients.tem.structures import StagePosition
from twin.common.cf import nested_attributes

INSTRUCTIONS = """\
A digital-twin TEM/STEM and AFM imaging one shared sample (2-D materials such as graphene; read the
resource twin://sample). All values are SI: metres, seconds, volts, radians; every parameter states its
unit and range. A STEM field of view of 2-50 nm resolves atoms. Tools marked destructive expose the
specimen to the electron beam (atoms can be knocked out) or end a challenge. The AFM must approach
before scanning. In a challenge, read challenge_goal first; challenge_submit ends the episode with a
score."""

PREVIEW_PIXELS = 256  # the longest side of a view_last_image PNG by default
SAMPLE_KEYS = ("name", "material", "description")  # what the sample resource may show of info()


def _range(lo: float, hi: float, unit: str) -> str:
    unit = f" {unit}" if unit and unit not in ("%",) else unit
    return f"{lo:g} to {hi:g}{unit}"


def declared(entry: dict[str, Any], what: str = "", kind: type = float) -> Any:
    """A parameter type for a declared setting (``describe()`` entry of the twin's own settings): its
    range as the schema's minimum and maximum, its unit and range in the description."""
    unit = entry.get("unit", "")
    text = f"{what or entry['doc']} ({entry['name']}, {unit or 'no unit'}); allowed "
    text += _range(entry["min"], entry["max"], unit)
    lo, hi = (int(entry["min"]), int(entry["max"])) if kind is int else (entry["min"], entry["max"])
    return Annotated[kind, Field(ge=lo, le=hi, description=text)]


def choice(values: list[Any], text: str) -> Any:
    """A parameter type taking one of ``values`` (a JSON-schema enum)."""
    listed = ", ".join(map(str, values))
    return Annotated[Literal[tuple(values)], Field(description=f"{text}; one of {listed}")]


def annotations(title: str, read_only: bool = False, destructive: bool = False,
                idempotent: bool = False) -> ToolAnnotations:
    """The tool's MCP hints (the twin is a closed world: nothing outside it is touched)."""
    return ToolAnnotations(title=title, read_only_hint=read_only, destructive_hint=destructive,
                           idempotent_hint=idempotent, open_world_hint=False)


class Window(BaseModel):
    """Where an image lies on the sample (m, the instrument's frame)."""

    x_min: float = Field(description="left edge (m)")
    y_min: float = Field(description="bottom edge (m)")
    x_max: float = Field(description="right edge (m)")
    y_max: float = Field(description="top edge (m)")


class ImageSummary(BaseModel):
    """An acquisition as the model sees it: its geometry, statistics and where the data is."""

    shape: list[int] = Field(description="rows, columns (rows along +y)")
    dtype: str = Field(description="numpy dtype of the saved data")
    min: float | None = Field(description="smallest finite value (counts; m for AFM topography)")
    max: float | None = Field(description="largest finite value")
    mean: float | None = Field(description="mean of the finite values")
    std: float | None = Field(description="standard deviation of the finite values")
    finite_pixels: int = Field(description="pixels holding a value (an unfinished AFM frame has NaN)")
    pixel_size_m: float = Field(description="pixel size (m)")
    window_m: Window = Field(description="the image's extent on the sample (m)")
    npy: str = Field(description="path of an .npy file with the full array, data[row, column] with rows "
                                 "along +y (row 0 at the bottom of the field, as image.data; the PNG view "
                                 "shows it north up)")
    frame_index: int | None = Field(None, description="the instrument's acquisition counter")
    defocus_m: float | None = Field(None, description="objective defocus at the exposure (m)")
    detector: str | None = Field(None, description="STEM detector")
    channel: str | None = Field(None, description="AFM channel")


class StagePose(BaseModel):
    """The TEM stage position."""

    x: float = Field(description="x (m)")
    y: float = Field(description="y (m)")
    z: float = Field(description="height (m)")
    a: float = Field(description="alpha tilt (rad)")
    b: float | None = Field(description="beta tilt (rad); null on a single-tilt holder")


class Defocus(BaseModel):
    defocus_m: float = Field(description="objective defocus read back (m); negative = underfocus")


class Approach(BaseModel):
    status: int = Field(description="the AFM's ApproachStatus code (3 = ApproachDone)")
    approached: bool = Field(description="whether the tip is on the surface")


class Line(BaseModel):
    """One scanned AFM line."""

    line: int = Field(description="line number (0 = first scanned)")
    channel: str = Field(description="channel read")
    direction: str = Field(description="forward or backward")
    unit: str = Field(description="unit of the values")
    values: list[float] = Field(description="the line's values, left to right")


class Goal(BaseModel):
    """The challenge this instance plays (what a player may know)."""

    name: str = Field(description="scenario name")
    title: str = Field(description="one-line title")
    goal: str = Field(description="what to do and how it is scored")
    answer: Any = Field(description="the answer's format for challenge_submit")
    budgets: dict[str, Any] = Field(description="limits on calls, wall time (s), dose, lines, ...")
    forbid: list[str] = Field(description="calls the challenge refuses")
    ground_truth: bool = Field(description="whether the sample's ground truth may be read")
    time_scale: float = Field(description="instrument seconds per real second (0 = instant)")
    score: str | None = Field(description="the scoring function's name")


class Status(BaseModel):
    """Budgets spent and left; the score once answered."""

    scenario: str = Field(description="scenario name")
    instance: str | None = Field(description="this instance's name")
    budgets: dict[str, Any] = Field(description="per budget: spent, limit (null = none) and unit")
    over: bool = Field(description="whether the episode has been answered")
    score: dict[str, Any] | None = Field(description="score (0..1) and its details, once answered")


class Result(BaseModel):
    score: float = Field(description="the score, 0 (worst) to 1 (best)")
    details: dict[str, Any] = Field(description="how the score came about")


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

    def summary(self, data: np.ndarray, pixel: float, window: Any, **extra: Any) -> ImageSummary:
        """What an acquisition returns to the model: statistics, geometry and where the data is."""
        self.last_image = np.asarray(data)
        self.saved += 1
        path = self.folder / f"image-{self.saved:04d}.npy"
        np.save(path, self.last_image)
        finite = self.last_image[np.isfinite(self.last_image)]
        stats = {"min": finite.min(), "max": finite.max(), "mean": finite.mean(), "std": finite.std()
                 } if finite.size else dict.fromkeys(("min", "max", "mean", "std"))  # nothing scanned yet
        return ImageSummary(shape=list(self.last_image.shape), dtype=str(self.last_image.dtype),
                            **{k: None if v is None else float(v) for k, v in stats.items()},
                            finite_pixels=int(finite.size), pixel_size_m=pixel, window_m=Window(**window),
                            npy=str(path), **extra)


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


def preview(data: np.ndarray, longest: int) -> bytes:
    """``data`` as a compact greyscale PNG: binned to at most ``longest`` pixels a side, contrast
    stretched to its 1st-99th percentiles, 8 bits, first row at the bottom (as plotted)."""
    from PIL import Image as Picture

    data = np.nan_to_num(np.asarray(data, dtype=np.float32))
    scale = min(1.0, longest / max(data.shape))
    if scale < 1.0:  # box-averaged down: every pixel counts, as in binning
        shape = (max(1, round(data.shape[1] * scale)), max(1, round(data.shape[0] * scale)))
        data = np.asarray(Picture.fromarray(data, mode="F").resize(shape, Picture.Resampling.BOX))
    lo, hi = np.percentile(data, [1, 99])
    grey = np.round(255 * np.clip((data - lo) / max(hi - lo, 1e-30), 0, 1)).astype(np.uint8)
    buffer = io.BytesIO()
    Picture.fromarray(grey[::-1], mode="L").save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _tools(server: MCPServer) -> Callable[..., Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """A decorator factory registering a tool with its annotations; the tool's refusals (bad values,
    spent budgets, ...) reach the model as tool errors carrying the twin's message, so it can correct
    itself."""

    def with_hints(hints: ToolAnnotations) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def register(function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def tool(*args: Any, **kwargs: Any) -> Any:
                try:
                    return function(*args, **kwargs)
                except REFUSALS as error:
                    raise ToolError(f"{type(error).__name__}: {error}") from None

            server.add_tool(tool, annotations=hints)
            return function

        return register

    return with_hints


def descriptions(session: Session) -> tuple[dict[str, Any], dict[str, Any]]:
    """The TEM's and the AFM's descriptions as the twin declares them."""
    try:
        return session.tem._describe(), session.afm._describe()
    except (ConnectionError, OSError) as error:
        raise ConnectionError(f"{error} (the MCP tools take their ranges from the twin: start it first)"
                              ) from None


def build(host: str, port: int, instance: str | None = None, folder: str | Path | None = None) -> MCPServer:
    """The MCP server whose tools drive the twin at ``host:port`` (``instance`` on a shared server);
    the twin must be running (the tools' ranges and choices are read from it)."""
    folder = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="twin-mcp-"))
    folder.mkdir(parents=True, exist_ok=True)
    session = Session(host, port, instance, folder)
    tem, afm = descriptions(session)
    tem_settings = {s["name"]: s for s in tem["settings"]}
    afm_settings = {s["name"]: s for s in afm["settings"]}
    camera = next(c for c in tem["cameras"] if c["name"] == CameraType.BM_CETA.value)
    limits = {axis: tuple(span) for axis, span in tem["stage_limits"].items()}
    detectors = [d["name"] for d in tem["scanning_detectors"]]
    channels = {c["name"]: (c["number"], c["unit"]) for c in afm["channels"]}
    focus = tem_settings["optics.focus"]
    server = MCPServer("microscope-twin", instructions=INSTRUCTIONS)
    tool = _tools(server)

    def axis(name: str, what: str) -> Any:
        lo, hi = limits[name]
        return Annotated[float | None, Field(ge=lo, le=hi, description=(
            f"{what} (m), allowed {_range(lo, hi, 'm')}; omit to leave it"))]

    def step(name: str, what: str) -> Any:
        lo, hi = limits[name]
        return Annotated[float | None, Field(ge=lo - hi, le=hi - lo, description=(
            f"change of {what} (m); the position reached must lie in {_range(lo, hi, 'm')}; omit for none"))]

    @tool(annotations("TEM stage position", read_only=True, idempotent=True))
    def tem_stage_position() -> StagePose:
        """The TEM stage position: x, y, z (m) and tilts a, b (rad)."""
        p = session.tem.specimen.stage.position
        return StagePose(x=p.x, y=p.y, z=p.z, a=p.a, b=p.b)

    @tool(annotations("Move the TEM stage to", idempotent=True))
    def tem_stage_move(x: axis("x", "stage x") = None, y: axis("y", "stage y") = None,
                       z: axis("z", "stage height z") = None) -> StagePose:
        """Move the TEM stage to x, y, z (m; omitted axes stay); returns the position reached (the stage
        has a positioning error of some 10 nm and backlash)."""
        session.tem.specimen.stage.absolute_move(StagePosition(x=x, y=y, z=z))
        return tem_stage_position()

    @tool(annotations("Move the TEM stage by"))
    def tem_stage_step(dx: step("x", "stage x") = None, dy: step("y", "stage y") = None,
                       dz: step("z", "stage height z") = None) -> StagePose:
        """Move the TEM stage by dx, dy, dz (m) from where it is; returns the position reached."""
        session.tem.specimen.stage.relative_move(StagePosition(x=dx, y=dy, z=dz))
        return tem_stage_position()

    @tool(annotations("Set the defocus", idempotent=True))
    def tem_set_defocus(defocus: Annotated[float, Field(description=(
            "objective defocus (m); negative = underfocus, e.g. -50e-9; the focus it sets (defocus plus "
            f"the reference of zero defocus) must lie in {_range(focus['min'], focus['max'], 'm')}"))]
                        ) -> Defocus:
        """Set the objective defocus and read it back."""
        session.tem.optics.defocus = defocus
        return Defocus(defocus_m=session.tem.optics.defocus)

    exposure = {"name": "exposure_time", "unit": "s", "min": camera["exposure_time_limits"][0],
                "max": camera["exposure_time_limits"][1], "doc": f"{camera['name']} exposure time"}

    @tool(annotations("Acquire a TEM camera image", destructive=True))
    def tem_acquire_image(
            size: choice(sorted(camera["sizes"]), f"image width and height (pixels) read from the "
                                                  f"{camera['name']} camera") = 512,
            exposure_time: declared(exposure) = 0.1) -> ImageSummary:
        """An HRTEM camera image (switches to TEM mode; the beam exposes the specimen, which can knock
        atoms out). Returns a summary and the path of the .npy data."""
        session.tem.optics.optical_mode = "Tem"
        image = session.tem.acquisition.acquire_camera_image(CameraType.BM_CETA, size, exposure_time)
        m = image.metadata
        return session.summary(image.data, m.binary_result.pixel_size.x, m.twin.window.to_dict(),
                               frame_index=m.acquisition.frame_index, defocus_m=m.optics.defocus)

    dwell = {"name": "dwell_time", "unit": "s", "min": tem["dwell_time_limits"][0],
             "max": tem["dwell_time_limits"][1], "doc": "time the probe dwells on each pixel"}
    view = tem_settings["optics.scan_field_of_view"]

    @tool(annotations("Acquire a STEM image", destructive=True))
    def stem_acquire_image(
            detector: choice(detectors, "scanning detector") = "HAADF",
            size: Annotated[int, Field(ge=16, le=4096, description=(
                "image width and height (pixels), allowed 16 to 4096; a frame takes size² x dwell_time, "
                "at most 600 s"))] = 256,
            dwell_time: declared(dwell) = 2e-6,
            field_of_view: Annotated[declared(view, "scan width") | None, Field(description=(
                f"scan width (m), allowed {_range(view['min'], view['max'], 'm')}; omit to keep the "
                "current one"))] = None) -> ImageSummary:
        """A STEM image (switches to STEM mode). The probe's dose (long dwell times, small fields of
        view) can knock atoms out of the specimen."""
        tem_client = session.tem
        tem_client.optics.optical_mode = "Stem"
        if field_of_view is not None:
            tem_client.optics.scan_field_of_view = field_of_view
        image = tem_client.acquisition.acquire_stem_image(detector, size, dwell_time)
        m = image.metadata
        return session.summary(image.data, m.binary_result.pixel_size.x, m.twin.window.to_dict(),
                               frame_index=m.acquisition.frame_index, detector=detector)

    @tool(annotations("Approach the AFM tip", idempotent=True))
    def afm_approach() -> Approach:
        """Approach the AFM tip to the surface (needed before scanning; again once approached does
        nothing)."""
        approach = session.afm.application.Approach
        approach.StartApproach()
        status = int(approach.Status)
        return Approach(status=status, approached=status == SPM.ApproachStatus.ApproachDone)

    line_times = afm_settings["Scan.Scantime"]

    @tool(annotations("Scan an AFM frame"))
    def afm_scan(width: declared(afm_settings["Scan.ImageWidth"], "frame width and height") = 50e-9,
                 points: declared(afm_settings["Scan.Points"], kind=int) = 256,
                 lines: declared(afm_settings["Scan.Lines"], kind=int) = 256,
                 centre_x: declared(afm_settings["Scan.CenterPosX"], "frame centre x (scanner offset)") = 0.0,
                 centre_y: declared(afm_settings["Scan.CenterPosY"], "frame centre y (scanner offset)") = 0.0,
                 line_time: Annotated[declared(line_times) | None, Field(description=(
                     "time per line, forward and backward (s), allowed "
                     f"{_range(line_times['min'], line_times['max'], 's')}; omit to keep the current one"
                 ))] = None) -> ImageSummary:
        """Scan one square AFM frame (forward and backward) and return the forward topography's summary
        (approach first)."""
        scan = session.afm.application.Scan
        scan.ImageSize(width, width)
        scan.Points, scan.Lines = points, lines
        scan.CenterPosX, scan.CenterPosY = centre_x, centre_y
        if line_time is not None:
            scan.Scantime = line_time
        scan.StartFrameUp()
        frame = session.afm.get_frame(SPM.ScanGroupID.Forward, SPM.ScanChannel.Topography)
        meta = nested_attributes(frame.attrs)
        return session.summary(frame.values, width / points, meta["twin"]["window"],
                               frame_index=meta["acquisition"]["frame_index"], channel="Topography")

    lines_declared = afm_settings["Scan.Lines"]

    @tool(annotations("Read an AFM line", read_only=True, idempotent=True))
    def afm_read_line(
            line: Annotated[int, Field(ge=0, le=int(lines_declared["max"]) - 1, description=(
                "line of the last frame (0 = first scanned; below the frame's line count and already "
                f"scanned), allowed 0 to {int(lines_declared['max']) - 1}"))],
            channel: choice(list(channels), "channel (" + ", ".join(
                f"{name} in {unit}" for name, (_, unit) in channels.items()) + ")") = "Topography",
            direction: choice(["forward", "backward"], "scan direction") = "forward") -> Line:
        """One scanned line of the last frame, in SI units (m for Topography)."""
        group = SPM.ScanGroupID.Forward if direction == "forward" else SPM.ScanGroupID.Backward
        number, unit = channels[channel]
        text = session.afm.application.Scan.GetLine(group, number, line, SPM.DataFilter.RAW,
                                                    SPM.DataConversion.Physical)
        return Line(line=line, channel=channel, direction=direction, unit=unit,
                    values=[float(v) for v in text.split(";")])

    @tool(annotations("View the last image", read_only=True, idempotent=True))
    def view_last_image(longest_side: Annotated[int, Field(ge=16, le=1024, description=(
            "the PNG's longest side (pixels), allowed 16 to 1024; the image is binned down to it"))
                                                ] = PREVIEW_PIXELS) -> Image:
        """The last image as a compact 8-bit greyscale PNG (contrast stretched to its 1st-99th
        percentiles, first row at the bottom)."""
        if session.last_image is None:
            raise ValueError("no image yet; acquire or scan first")
        return Image(data=preview(session.last_image, longest_side), format="png")

    @tool(annotations("Challenge goal", read_only=True, idempotent=True))
    def challenge_goal() -> Goal:
        """The challenge this instance plays: title, goal, answer format, budgets, refused calls."""
        return Goal(**session.challenge().scenario)

    @tool(annotations("Challenge status", read_only=True))
    def challenge_status() -> Status:
        """Budgets spent and left; the score once answered."""
        return Status(**session.challenge().status())

    @tool(annotations("Submit the answer", destructive=True))
    def challenge_submit(answer: Annotated[dict[str, Any], Field(description=(
            "the answer in the format challenge_goal gives; an array may be given as the path of an "
            '.npy file (e.g. {"heights": "/tmp/answer.npy"}); {} when the instrument state is scored'))]
                         ) -> Result:
        """Hand in the answer (once: this ends the episode) and get the score (0..1)."""
        return Result(**session.challenge().submit(arrays_from_files(answer)))

    @server.resource("twin://sample", name="sample", title="The sample", mime_type="application/json",
                     description="The sample as its user knows it: name, material and, outside a "
                                 "challenge that hides it, its description (no hidden state)")
    def sample() -> str:
        info = session.tem.twin.info()
        public = {key: info["sample"][key] for key in SAMPLE_KEYS if key in info["sample"]}
        return json.dumps({**public, "instruments": ["TEM/STEM", "AFM"], "units": "SI (m, s, V, rad)"})

    return server


def main(host: str, port: int, instance: str | None, folder: str | None) -> None:
    """Serve the tools over stdio until the client closes them."""
    try:
        server = build(host, port, instance, folder)
    except ConnectionError as error:
        raise SystemExit(f"twin mcp: {error}") from None
    server.run("stdio")
