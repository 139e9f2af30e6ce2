# Rehearses: nanosurf (PyPI) 1.2.0 README.md "Usage Example" and doc/Nanosurf_Python_Library_Overview.pdf
# (the package's own first example: gallery mask, cantilever by GUID, dynamic mode and drive amplitude,
# the frame's size, time, points, lines, centre, slopes and overscan, setpoint and gains, a frame, a
# look at IsScanning, stop, capture; and the overview's approach at a speed). Written for the twin;
# only API names and values follow the source.
# twin run: --serve
import time

import nanosurf

spm = nanosurf.SPM()
application = spm.application
approach = application.Approach
approach.ApproachSpeed = 10.0
approach.Start()
while approach.IsMoving:
    time.sleep(0.1)
assert approach.Status == spm.ApproachStatus.ApproachDone
application.SetGalleryHistoryFilenameMask("TestSample-")
application.ScanHead.CantileverByGUID = spm.CantileverGUID.Dyn190Al
operating_mode = application.OperatingMode
operating_mode.OperatingMode = spm.OperatingMode.DynamicAFM
operating_mode.VibratingAmpl = 0.5  # V
scan = application.Scan
scan.ImageWidth = 5e-6
scan.ImageHeight = 5e-6
scan.Scantime = 0.55
scan.Points = 256
scan.Lines = 256
scan.CenterPosX = 10e-6
scan.CenterPosY = 10e-6
scan.SlopeX = 0.0
scan.SlopeY = 0.0
scan.Overscan = 5
z_control = application.ZController
z_control.SetPoint = 70
z_control.PGain = 3100
z_control.IGain = 3500
scan.StartFrameUp()
print("scanning:", scan.IsScanning)
scan.Stop()
print("captured:", scan.StartCapture())
del spm
print("rehearsal complete")
