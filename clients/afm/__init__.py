"""A Nanosurf-classic-scripting-shaped AFM client for the digital twin (SI units).

    from clients.afm import SPM

    spm = SPM()                                  # or SPM("host", 9095)
    app = spm.application
    app.Approach.StartApproach()
    scan = app.Scan
    scan.ImageWidth = scan.ImageHeight = 20e-9
    scan.Points = scan.Lines = 256
    scan.StartFrameUp()
    while scan.IsScanning:
        time.sleep(0.1)
    line = scan.GetLine(0, 1, 0, spm.DataFilter.LineFit, spm.DataConversion.Physical)  # "v0;v1;..."
    topography = spm.get_frame(channel=spm.ScanChannel.Topography)                    # xarray
"""

from __future__ import annotations

from typing import Any

import xarray as xr

from clients._remote import RemoteSetting, open_proxy
from clients.ground_truth import GroundTruth
from twin.server import wire

__all__ = ["SPM"]


class _Node:
    def __init__(self, spm: SPM) -> None:
        self._spm = spm

    @property
    def _remote(self) -> Any:
        return self._spm._remote


class Scan(_Node):
    """``application.Scan``: frame geometry, timing, start/stop and line read-out."""

    ImageWidth = RemoteSetting("Scan.ImageWidth", "Frame width (m).")
    ImageHeight = RemoteSetting("Scan.ImageHeight", "Frame height (m).")
    Points = RemoteSetting("Scan.Points", "Points per line.")
    Lines = RemoteSetting("Scan.Lines", "Lines per frame.")
    CenterPosX = RemoteSetting("Scan.CenterPosX", "Frame centre x (m).")
    CenterPosY = RemoteSetting("Scan.CenterPosY", "Frame centre y (m).")
    Scantime = RemoteSetting("Scan.Scantime", "Time per line, forward and backward (s).")

    def ImageSize(self, width: float, height: float) -> None:  # noqa: N802 - vendor name
        self.ImageWidth = width
        self.ImageHeight = height

    def StartFrameUp(self) -> None:  # noqa: N802
        """Scan one frame from the bottom line upwards."""
        self._remote.start_frame_up()

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
    SetPoint = RemoteSetting("ZController.SetPoint", "Setpoint (% of free amplitude).")
    PGain = RemoteSetting("ZController.PGain", "Proportional gain.")
    IGain = RemoteSetting("ZController.IGain", "Integral gain.")


class Approach(_Node):
    def StartApproach(self) -> None:  # noqa: N802
        self._remote.start_approach()

    @property
    def Status(self) -> int:  # noqa: N802
        """An ``SPM.ApproachStatus`` value; 3 (ApproachDone) once the tip is in contact."""
        return self._remote.approach_status()

    @property
    def IsMoving(self) -> bool:  # noqa: N802
        return self._remote.approach_is_moving()


class Application(_Node):
    """``spm.application``: the root of the instrument's object tree."""

    def __init__(self, spm: SPM) -> None:
        super().__init__(spm)
        self.Scan = Scan(spm)
        self.ZController = ZController(spm)
        self.Approach = Approach(spm)


class AfmTwin(GroundTruth):
    """Ground truth plus the simulated tip and noise, which a real AFM would not let you set."""

    tip_radius = RemoteSetting("twin.tip_radius", "Tip apex radius (m).", via="_afm")
    z_noise = RemoteSetting("twin.z_noise", "RMS height noise per point (m).", via="_afm")

    def __init__(self, spm: SPM) -> None:
        super().__init__(lambda: spm._sample)
        self._spm = spm

    @property
    def _afm(self) -> Any:
        return self._spm._remote


class SPM:
    """Connection to the twin's AFM, shaped like Nanosurf's ``SPM`` object."""

    class ScanGroupID:
        Forward = 0
        Backward = 1

    class ScanChannel:
        Deflection_or_ZCtrlIn = 0
        Topography = 1

    class DataFilter:
        RAW = 0
        MeanFit = 1
        LineFit = 2
        DerivedData = 3
        ParabolaFit = 4
        PolynomialFit = 5

    class DataConversion:
        Binary16 = 0
        Physical = 1
        Binary32 = 2

    class ApproachStatus:
        Standby = 0
        Initializing = 1
        Approaching = 2
        ApproachDone = 3
        ApproachAborted = 4

    def __init__(self, host: str | None = None, port: int | None = None) -> None:
        self._proxy = open_proxy(wire.AFM_OBJECT, host, port)
        self._sample_proxy = open_proxy(wire.SAMPLE_OBJECT, host, port)
        self.application = Application(self)
        self.twin = AfmTwin(self)

    @property
    def _remote(self) -> Any:
        if self._proxy is None:
            raise ConnectionError("this SPM connection is closed")
        return self._proxy

    @property
    def _sample(self) -> Any:
        if self._sample_proxy is None:
            raise ConnectionError("this SPM connection is closed")
        return self._sample_proxy

    def is_connected(self) -> bool:
        return self._proxy is not None

    def is_scripting_enabled(self) -> bool:
        return self.is_connected()

    def close(self) -> None:
        for proxy in (self._proxy, self._sample_proxy):
            if proxy is not None:
                proxy._pyroRelease()
        self._proxy = self._sample_proxy = None

    def get_frame(
        self, group: int = ScanGroupID.Forward, channel: int = ScanChannel.Topography
    ) -> xr.DataArray:
        """The last frame of one trace and channel with coordinates ``x``, ``y`` (m, sample frame).

        Lines not scanned yet are NaN; rows are lines (y increasing), columns points (x increasing).
        """
        reply = self._remote.get_frame(group, channel)
        meta = reply["metadata"]
        return xr.DataArray(
            reply["data"],
            dims=("y", "x"),
            coords={"x": ("x", reply["x"], {"units": "m"}), "y": ("y", reply["y"], {"units": "m"})},
            name=meta["channel"]["name"],
            attrs={"units": meta["channel"]["unit"], **meta},
        )
