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

from clients.afm.classic import (
    C3000,
    CX,
    SPM,
    SPM_S,
    USPM,
    AfmTwin,
    CoreAFM,
    Easyscan2,
    MobileS,
    Naio,
    Spm,
)
from clients.afm.studio import Studio, StudioScriptError

__all__ = ["SPM", "Spm", "C3000", "CX", "CoreAFM", "Easyscan2", "Naio", "USPM", "MobileS", "SPM_S", "Studio",
           "StudioScriptError", "AfmTwin"]
