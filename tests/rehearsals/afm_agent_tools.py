# Rehearses: lamalab-org/corral tasks/afm/src/afm/env.py, tools.py and score.py, and M3RG-IITD/AILA
# Results/MCP/server.py (LLM agents' AFM tools: reset the parameters through the gallery folder, the
# scan geometry in nm converted to m, gains, an operating mode by number and a cantilever by GUID, read
# them back and compare with isclose, rotation read in lower case; a gain search that names each frame
# after its gains and polls the scan). Written for the twin; only API names and values follow the sources.
# twin run: --serve
import gc
import math
import time

import nanosurf

spm = nanosurf.SPM()
application = spm.application
scan, z_control = application.Scan, application.ZController
application.SetGalleryHistoryDirectoryPath("C:\\afm\\agent")
wanted = {"ImageHeight": 200e-9, "ImageWidth": 200e-9, "Scantime": 0.5, "Points": 128, "Rotation": 0.0,
          "Lines": 128, "CenterPosX": 0.0, "CenterPosY": 0.0}
for name, value in wanted.items():
    setattr(scan, name, value)
z_control.PGain, z_control.IGain, z_control.DGain = 3100, 3500, 0
application.OperatingMode.OperatingMode = 3
application.ScanHead.CantileverByGUID = spm.CantileverGUID.Tap190Al_G
print("gallery:", application.GetGalleryHistoryDirectoryPath)
read = {"ImageHeight": scan.ImageHeight, "ImageWidth": scan.ImageWidth, "Scantime": scan.Scantime,
        "Points": scan.Points, "Rotation": scan.rotation, "Lines": scan.Lines,
        "CenterPosX": scan.CenterPosX, "CenterPosY": scan.CenterPosY}
assert all(math.isclose(read[k], v, rel_tol=1e-4, abs_tol=1e-9) for k, v in wanted.items()), read
assert (z_control.PGain, z_control.IGain, z_control.DGain) == (3100, 3500, 0)
assert application.OperatingMode.OperatingMode == 3

application.Approach.StartApproach()
for p_gain, i_gain, d_gain in ((100, 3000, 0), (300, 6000, 20)):
    application.SetGalleryHistoryFilenameMask(f"scan_{p_gain}_{i_gain}_{d_gain}_")
    z_control.PGain, z_control.IGain, z_control.DGain = p_gain, i_gain, d_gain
    scan.StartFrameUp()
    while scan.IsScanning:
        time.sleep(5)
    print("frame at gains", p_gain, i_gain, d_gain, "captured:", scan.StartCapture())
del scan, z_control, application, spm
gc.collect()
print("rehearsal complete")
