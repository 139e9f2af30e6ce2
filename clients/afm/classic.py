"""Nanosurf's classic scripting interface (``SPM``) over the twin's AFM; import it from :mod:`clients.afm`."""

from __future__ import annotations

from typing import Any

import xarray as xr

from clients._remote import Connection, RemoteSetting
from clients.ground_truth import GroundTruth
from twin.common import afm_vocabulary as vocabulary
from twin.common import wire
from twin.common.cf import cf_units, flat_attributes, spatial_coordinate, variable_name

__all__ = ["SPM", "Spm", "C3000", "CX", "CoreAFM", "Easyscan2", "Naio", "USPM", "MobileS", "SPM_S"]


class _Node:
    """A branch of the object tree. Member names resolve case-insensitively (``scan.rotation`` is
    ``scan.Rotation``), as the vendor's late-bound interface allows; unknown names raise."""

    def __init__(self, spm: SPM) -> None:
        self._spm = spm

    @property
    def _remote(self) -> Any:
        return self._spm._remote

    def _member(self, name: str) -> str:
        members = {m.lower(): m for m in [*dir(type(self)), *vars(self)] if not m.startswith("_")}
        if name.lower() not in members:
            raise AttributeError(f"{type(self).__name__} has no member {name!r}; members: "
                                 f"{', '.join(sorted(members.values()))}")
        return members[name.lower()]

    def __getattr__(self, name: str) -> Any:  # only for names that are not spelled as defined
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self, self._member(name))

    def __setattr__(self, name: str, value: Any) -> None:
        object.__setattr__(self, name if name.startswith("_") else self._member(name), value)


class _CallableStr(str):
    def __call__(self) -> str:
        return str(self)


class _CallableInt(int):
    def __call__(self) -> int:
        return int(self)


class _CallableFloat(float):
    def __call__(self) -> float:
        return float(self)


def _getter(value: Any) -> Any:
    """A value read through a no-argument getter, which scripts both read (``stage.GetState``, as late
    binding allows) and call (``stage.GetState()``)."""
    kind = {str: _CallableStr, int: _CallableInt, float: _CallableFloat}.get(type(value))
    return value if kind is None else kind(value)


class Scan(_Node):
    """``application.Scan``: frame geometry, timing, start/stop and line read-out."""

    ImageWidth = RemoteSetting("Scan.ImageWidth", "Frame width (m).")
    ImageHeight = RemoteSetting("Scan.ImageHeight", "Frame height (m).")
    Points = RemoteSetting("Scan.Points", "Points per line.")
    Lines = RemoteSetting("Scan.Lines", "Lines per frame.")
    CenterPosX = RemoteSetting("Scan.CenterPosX", "Frame centre x (m).")
    CenterPosY = RemoteSetting("Scan.CenterPosY", "Frame centre y (m).")
    Scantime = RemoteSetting("Scan.Scantime", "Time per line, forward and backward (s).")
    Rotation = RemoteSetting("Scan.Rotation", "Scan rotation, counter-clockwise (deg).")
    SlopeX = RemoteSetting("Scan.SlopeX", "Scan plane slope along x (deg).")
    SlopeY = RemoteSetting("Scan.SlopeY", "Scan plane slope along y (deg).")
    Overscan = RemoteSetting("Scan.Overscan", "Extra line length on each side (% of the width).")

    def ImageSize(self, width: float, height: float) -> None:  # noqa: N802 - vendor name
        self.ImageWidth = width
        self.ImageHeight = height

    def StartFrameUp(self) -> None:  # noqa: N802
        """Scan one frame from the bottom line upwards."""
        self._remote.start_frame_up()

    AutoCapture = RemoteSetting("Scan.AutoCapture", "Save every frame when it ends (.gwy and .nc).")

    def StartCapture(self) -> list[str]:  # noqa: N802
        """Save the current frame (lines scanned so far) to the gallery as ``.gwy`` and ``.nc``;
        returns the paths (on the server's machine)."""
        return self._remote.capture()

    def Start(self) -> None:  # noqa: N802
        """Scan continuously, frame after frame (up, down, up, ...), until ``Stop()``; settings changed
        meanwhile apply from the next frame."""
        self._remote.start()

    def StartFrameDown(self) -> None:  # noqa: N802
        """Scan one frame from the top line downwards (line 0 is the top line)."""
        self._remote.start_frame_down()

    def Stop(self) -> None:  # noqa: N802
        self._remote.stop()

    @property
    def IsScanning(self) -> bool:  # noqa: N802
        return self._remote.is_scanning()

    @property
    def Currentline(self) -> int:  # noqa: N802
        """Lines completed so far; lines ``0 .. Currentline - 1`` can be read."""
        return self._remote.current_line()

    def GetLine(self, group: int, channel: int, line: int, filter: int, conversion: int) -> str:  # noqa: N802, A002
        """Line ``line`` of ``channel`` in trace ``group`` as ``"v0;v1;..."`` (the vendor's format)."""
        return self._remote.get_line(group, channel, line, filter, conversion)


class ZController(_Node):
    SetPoint = RemoteSetting("ZController.SetPoint",
                             "Setpoint: % of the free amplitude (dynamic modes) or deflection in V (static).")
    PGain = RemoteSetting("ZController.PGain", "Proportional gain.")
    IGain = RemoteSetting("ZController.IGain", "Integral gain.")
    DGain = RemoteSetting("ZController.DGain", "Derivative gain.")
    TipVoltage = RemoteSetting("ZController.TipVoltage", "Tip bias (V).")


class OperatingModeNode(_Node):
    """``application.OperatingMode``: the imaging mode and the cantilever drive."""

    OperatingMode = RemoteSetting("OperatingMode.OperatingMode", "An ``SPM.OperatingMode`` value.")
    VibratingAmpl = RemoteSetting("OperatingMode.VibratingAmpl", "Cantilever drive amplitude (V).")


class Approach(_Node):
    """``application.Approach``: the approach motor."""

    WithdrawSteps = RemoteSetting("Approach.WithdrawSteps", "Motor steps of StartWithdraw().")
    ApproachSpeed = RemoteSetting("Approach.ApproachSpeed", "Approach motor speed (%; 50 % takes 3 s).")

    def StartApproach(self) -> None:  # noqa: N802
        self._remote.start_approach()

    def Start(self) -> None:  # noqa: N802
        """Start the approach (the name an overview of the vendor's uses)."""
        self._remote.start_approach()

    def StartWithdraw(self) -> None:  # noqa: N802
        """Move the tip away from the surface by ``WithdrawSteps`` motor steps."""
        self._remote.start_withdraw()

    def StartRetract(self) -> None:  # noqa: N802
        """Move the tip away from the surface until ``Stop()``."""
        self._remote.start_retract()

    def Stop(self) -> None:  # noqa: N802
        self._remote.stop_approach_motor()

    @property
    def Status(self) -> int:  # noqa: N802
        """An ``SPM.ApproachStatus`` value; 3 (ApproachDone) once the tip is in contact."""
        return self._remote.approach_status()

    @property
    def IsMoving(self) -> bool:  # noqa: N802
        return self._remote.approach_is_moving()


class Stage(_Node):
    """``application.Stage``: the motorised sample stage (axis 0 = x, 1 = y; metres from each axis's
    zero). Moves are transactions, refused while the tip is approached or the stage is locked; they take
    instrument time at ``SetSpeedPercent`` of the full speed."""

    HasInstance = True

    @property
    def IsReferenced(self) -> bool:  # noqa: N802
        return self._remote.stage_is_referenced()

    def ReferenceSearch(self) -> None:  # noqa: N802
        """Find the reference marks: the stage travels to its centre, which becomes zero on both axes."""
        self._remote.stage_reference_search()

    def Stop(self) -> None:  # noqa: N802
        """Stop a move where it has got to."""
        self._remote.stage_stop()

    def GetAxisName(self, axis: int) -> str:  # noqa: N802
        return {0: "X", 1: "Y"}[self._axis(axis)]

    def GetAxisUnit(self, axis: int) -> str:  # noqa: N802
        self._axis(axis)
        return "m"

    def GetAxisRange(self, axis: int) -> float:  # noqa: N802
        """The axis's full travel (m); it moves ± half of it around the reference."""
        self._axis(axis)
        return self._spm._describe()["stage_range"]

    def GetCurrentAxisZeroPosition(self, axis: int) -> float:  # noqa: N802
        """Where (m from the reference) the axis reads zero."""
        return self._remote.stage_axis_zero(axis)

    def SetAxisZero(self, axis: int) -> None:  # noqa: N802
        """Make the present position of ``axis`` read as zero."""
        self._remote.stage_set_axis_zero(axis)

    def SetSpeedPercent(self, percent: float) -> None:  # noqa: N802
        self._remote.stage_set_speed_percent(percent)

    @property
    def GetSpeedPercent(self) -> float:  # noqa: N802 - read without parentheses, or called
        return _getter(float(self._remote.stage_speed_percent()))

    @staticmethod
    def _axis(axis: int) -> int:
        if axis not in (0, 1) or isinstance(axis, bool):
            raise ValueError(f"axis = {axis!r} is not a stage axis; allowed: 0 (X), 1 (Y)")
        return axis

    def ClearMoveTransaction(self) -> None:  # noqa: N802
        self._remote.clear_move_transaction()

    def AppendToMoveTransaction(self, axis: int, value: float, relative: bool) -> None:  # noqa: N802
        self._remote.append_to_move_transaction(axis, value, relative)

    def CommitMoveTransaction(self) -> None:  # noqa: N802
        self._remote.commit_move_transaction()

    def GetAxisPosition(self, axis: int) -> float:  # noqa: N802
        return self._remote.axis_position(axis)

    def Lock(self) -> None:  # noqa: N802
        """Clamp the stage: moves are refused until :meth:`Unlock`."""
        self._remote.stage_set_locked(True)

    def Unlock(self) -> None:  # noqa: N802
        self._remote.stage_set_locked(False)

    @property
    def GetState(self) -> int:  # noqa: N802 - read without parentheses, or called
        """An ``SPM.StageState`` value: IdleUnreferenced 1, Idle 2 or Moving 3."""
        return _getter(self._remote.stage_state())


class Spec(_Node):
    """``application.Spec``: force-distance spectroscopy at a list of positions (scanner coordinates,
    metres). Channel 0 is the deflection (V), 1 the z position (m); groups Forward 0, Backward 1."""

    FwdModulationRange = RemoteSetting("Spec.FwdModulationRange", "Base travel towards the surface (m).")
    BwdModulationRange = RemoteSetting("Spec.BwdModulationRange", "Travel back (m, negative).")
    FwdModulationTime = RemoteSetting("Spec.FwdModulationTime", "Time of the forward curve (s).")
    BwdModulationTime = RemoteSetting("Spec.BwdModulationTime", "Time of the backward curve (s).")
    FwdModDataPoints = RemoteSetting("Spec.FwdModDataPoints", "Points of the forward curve.")
    BwdModDataPoints = RemoteSetting("Spec.BwdModDataPoints", "Points of the backward curve.")
    ModuleLevel = RemoteSetting("Spec.ModuleLevel", "An SPM.SpecModuleLevel value.")
    ModulatedOutput = RemoteSetting("Spec.ModulatedOutput", "An SPM.SpecModulatedOutput value (ZAxis).")
    ActiveZController = RemoteSetting("Spec.ActiveZController", "Keep the z-loop on during the curves.")
    EnableRelative = RemoteSetting("Spec.EnableRelative", "Modulate relative to the present z.")
    RepetitionMode = RemoteSetting("Spec.RepetitionMode", "An SPM.SpecRepetitionMode value.")
    Repetition = RemoteSetting("Spec.Repetition", "Curves per position (or passes over the list).")
    SpecEndMode = RemoteSetting("Spec.SpecEndMode", "An SPM.SpecEndMode value.")
    StartOffset = RemoteSetting("Spec.StartOffset", "Lift before each curve, away from the surface (m).")
    StartOffsetMoveSpeed = RemoteSetting("Spec.StartOffsetMoveSpeed", "Speed of the start offset (m/s).")
    XYMoveSpeed = RemoteSetting("Spec.XYMoveSpeed", "Tip speed between positions (m/s).")
    FwdModulationMode = RemoteSetting("Spec.FwdModulationMode", "An SPM.SpecModulationMode value.")
    BwdModulationMode = RemoteSetting("Spec.BwdModulationMode", "An SPM.SpecModulationMode value.")
    FwdPauseMode = RemoteSetting("Spec.FwdPauseMode", "An SPM.SpecPauseMode value.")
    BwdPauseMode = RemoteSetting("Spec.BwdPauseMode", "An SPM.SpecPauseMode value.")
    FwdPauseDataPoints = RemoteSetting("Spec.FwdPauseDataPoints", "Points recorded in the forward pause.")
    BwdPauseDataPoints = RemoteSetting("Spec.BwdPauseDataPoints", "Points recorded in the backward pause.")
    FwdPauseTime = RemoteSetting("Spec.FwdPauseTime", "Pause after the forward curve (s).")
    BwdPauseTime = RemoteSetting("Spec.BwdPauseTime", "Pause after the backward curve (s).")

    def ClearPositionList(self) -> None:  # noqa: N802
        self._remote.spec_clear_positions()

    def AddPosition(self, x: float, y: float, z: float = 0.0) -> None:  # noqa: N802
        self._remote.spec_add_position(x, y, z)

    def Start(self) -> None:  # noqa: N802
        """Measure every listed position (an empty list: where the tip is, the frame's centre)."""
        self._remote.spec_start()

    @property
    def IsMeasuring(self) -> bool:  # noqa: N802
        return self._remote.spec_is_measuring()

    @property
    def IsMoving(self) -> bool:  # noqa: N802
        """Whether the tip is travelling between positions."""
        return self._remote.spec_is_moving()

    @property
    def Currentline(self) -> int:  # noqa: N802
        """Curves measured so far (lines ``0 .. Currentline - 1`` can be read)."""
        return self._remote.spec_current_line()

    def GetLine2(self, group: int, channel: int, line: int, filter: int = 0,  # noqa: N802, A002
                 conversion: int = 1) -> list[float] | list[int]:
        """One curve in the order measured, through a ``DataFilter`` (fits over the z travel) and a
        ``DataConversion`` (Physical: V or m; Binary16/32: signed integers)."""
        return self._remote.spec_get_line(group, channel, line, filter, conversion)


class ScanHead(_Node):
    """``application.ScanHead``: which cantilever is mounted (a name from ``SPM.CantileverGUID``). The twin
    records it; the simulated lever's properties do not change with it."""

    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        object.__setattr__(self, "CantileverByGUID", vocabulary.CantileverGUID.Dyn190Al)


class Video(_Node):
    """``application.Video``: the optical cameras (``VideoSource`` 0: side view, 1: top view). The twin
    draws the sample from above at 1.5 µm per pixel with the cantilever over it, or the lever from the
    side; ``SaveFrame`` writes it on the server, under this twin's folder."""

    VideoSource = RemoteSetting("Video.VideoSource", "An SPM.VideoSource value: SideView 0, TopView 1.")

    def SaveFrame(self, path: str) -> bool:  # noqa: N802
        """Save the camera's picture as ``path`` (.jpg, .png, .bmp, .tif); True when written."""
        return self._remote.save_video_frame(path, self.VideoSource)


class System(_Node):
    """``application.System``: the z-axis's idle mode and the motors."""

    SystemStateIdleZAxisMode = RemoteSetting(
        "System.SystemStateIdleZAxisMode",
        "An SPM.SystemZAxisIdleMode value: what z does while idle (a scan or curve engages the loop).")

    def MotorStop(self) -> None:  # noqa: N802
        """Stop every motor: the approach motor and the stage."""
        self._remote.stop_motors()

    MotorCustomSpeedFactor = RemoteSetting("System.MotorCustomSpeedFactor", "Motor speed factor (0.01..1).")

    def GetMotorPosition(self, motor: int) -> float:  # noqa: N802
        raise ValueError(f"motor = {motor!r}: single motors' positions are not simulated; the stage's axes "
                         "read through Stage.GetAxisPosition")

    MotorSetPosZero = GetMotorPosition


class Application(_Node):
    """``spm.application``: the root of the instrument's object tree."""

    IsStartingUp = False
    Visible = True
    Version = "twin"

    def PrintStatusMsg(self, message: str) -> None:  # noqa: N802
        """The vendor shows this in its status bar; the twin prints it here."""
        print(message)

    def SetGalleryHistoryFilenameMask(self, mask: str) -> None:  # noqa: N802
        """Captured files are named ``<mask>NNNN.gwy`` / ``.nc``, or with the number where the mask says
        ``[INDEX]``."""
        self._remote.set_file_mask(mask)

    def SetGalleryHistoryFilenameIndex(self, index: int) -> None:  # noqa: N802
        """The number the next captured file gets (the first free one from it)."""
        self._remote.set_file_index(index)

    def SetGalleryHistoryDirectoryPath(self, path: str) -> None:  # noqa: N802
        """Where captured frames are saved (a directory on the server's machine)."""
        self._remote.set_gallery(path)

    @property
    def GetGalleryHistoryDirectoryPath(self) -> str:  # noqa: N802 - read without parentheses, or called
        """The gallery folder as named (the files live on the server, under this twin's folder)."""
        return _getter(self._remote.gallery())

    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        for name, node in (("Scan", Scan), ("ZController", ZController), ("Approach", Approach),
                           ("OperatingMode", OperatingModeNode), ("Stage", Stage), ("Spec", Spec),
                           ("ScanHead", ScanHead), ("Video", Video), ("System", System)):
            object.__setattr__(self, name, node(spm))


class AfmTwin(GroundTruth):
    """Ground truth plus the simulated tip and noise, which a real AFM would not let you set."""

    tip_radius = RemoteSetting("twin.tip_radius", "Tip apex radius (m).", via="_afm")
    z_noise = RemoteSetting("twin.z_noise", "RMS height noise per point (m).", via="_afm")
    tip_cone_angle = RemoteSetting("twin.tip_cone_angle", "Tip cone half-angle (deg).", via="_afm")
    second_apex = RemoteSetting("twin.second_apex", "Offset (m) of a second apex; (0, 0) for none.",
                                via="_afm")
    second_apex_height = RemoteSetting("twin.second_apex_height", "How far the second apex sits above (m).",
                                       via="_afm")
    drift_velocity = RemoteSetting("twin.drift_velocity", "Thermal drift of the sample (m/s, x and y).",
                                   via="_afm")
    piezo_creep = RemoteSetting("twin.piezo_creep", "Scanner creep after an offset step (per decade).",
                                via="_afm")
    line_offset = RemoteSetting("twin.line_offset", "RMS height offset from line to line (m).", via="_afm")
    ideal_feedback = RemoteSetting("twin.ideal_feedback", "True: the tip follows the surface exactly.",
                                   via="_afm")

    def __init__(self, spm: SPM) -> None:
        super().__init__(lambda: spm._connected[wire.SAMPLE_OBJECT])
        self._spm = spm

    @property
    def _afm(self) -> Any:
        return self._spm._remote


class SPM:
    """Connection to the twin's AFM, shaped like Nanosurf's ``SPM`` object (enums as attributes)."""

    ScanGroupID = vocabulary.ScanGroupID
    ScanChannel = vocabulary.ScanChannel
    DataFilter = vocabulary.DataFilter
    DataConversion = vocabulary.DataConversion
    ApproachStatus = vocabulary.ApproachStatus
    OperatingMode = vocabulary.OperatingMode
    StageState = vocabulary.StageState
    CantileverGUID = vocabulary.CantileverGUID
    SpecModuleLevel = vocabulary.SpecModuleLevel
    SpecGroupNo = vocabulary.SpecGroupNo
    SpecChannel = vocabulary.SpecChannel
    SpecModulatedOutput = vocabulary.SpecModulatedOutput
    SpecRepetitionMode = vocabulary.SpecRepetitionMode
    SpecEndMode = vocabulary.SpecEndMode
    SpecModulationMode = vocabulary.SpecModulationMode
    SpecPauseMode = vocabulary.SpecPauseMode
    SystemZAxisIdleMode = vocabulary.SystemZAxisIdleMode
    VideoSource = vocabulary.VideoSource
    ExcitationMode = vocabulary.ExcitationMode
    CantileverProperty = vocabulary.CantileverProperty
    SystemMotorID = vocabulary.SystemMotorID

    def __init__(self, host: str | None = None, port: int | None = None, instance: str | None = None) -> None:
        """Connect to the twin at ``host:port``; ``instance``: your twin's name or token on a server
        hosting several (default: $TWIN_INSTANCE or the only one)."""
        self._connection: Connection | None = Connection(host, port, instance)
        self._connection[wire.AFM_OBJECT]  # fail now, not at the first call, if nothing listens there
        self.application = Application(self)
        self.twin = AfmTwin(self)

    @property
    def _connected(self) -> Connection:
        if self._connection is None:
            raise ConnectionError("this SPM connection is closed")
        return self._connection

    @property
    def _remote(self) -> Any:
        return self._connected[wire.AFM_OBJECT]

    def is_connected(self) -> bool:
        return self._connection is not None

    def is_scripting_enabled(self) -> bool:
        return self.is_connected()

    def _describe(self) -> dict[str, Any]:
        if getattr(self, "_description", None) is None:
            self._description = self._remote.describe()
        return self._description

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._connection = None

    def get_frame(
        self, group: int = ScanGroupID.Forward, channel: int = ScanChannel.Topography
    ) -> xr.DataArray:
        """The last frame of one trace and channel with coordinates ``x``, ``y`` (m, sample frame).

        Lines not scanned yet are NaN; rows are lines (y increasing), columns points (x increasing).
        The metadata are flat attributes (``twin.window.x_min``, ``acquisition.frame_index``; see
        :func:`twin.cf.flat_attributes`), so ``to_netcdf`` and ``to_zarr`` take the frame as it is.
        """
        reply = self._remote.get_frame(group, channel)
        meta = reply["metadata"]
        return xr.DataArray(
            reply["data"],
            dims=("y", "x"),
            coords={"x": spatial_coordinate("x", reply["x"]), "y": spatial_coordinate("y", reply["y"])},
            name=variable_name(meta["channel"]["name"]),
            attrs={"long_name": meta["channel"]["name"], "units": cf_units(meta["channel"]["unit"]),
                   **flat_attributes(meta)},
        )


# The vendor's connection classes by controller; every one reaches the twin's AFM.
Spm = C3000 = CX = CoreAFM = Easyscan2 = Naio = USPM = MobileS = SPM_S = SPM
