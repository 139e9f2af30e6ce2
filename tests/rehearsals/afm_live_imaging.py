# Rehearses: nanosurf (PyPI) 1.14.1 nanosurf/app/demo_scanning_and_lib_usage/scan_module/imaging_task.py
# (the vendor's live-imaging demo: stop a running scan and wait, a square frame by ImageSize, time per
# line, as many lines as points, one frame upwards, every line read as soon as it is scanned, forward
# and backward, line-fitted, physical, decoded from the vendor's text, then stop; the 1.2.0 variant
# waits on Currentline alone). Written for the twin; only API names and values follow the source.
# twin run: --serve
import time

import nanosurf as nsf
import numpy as np

spm = nsf.SPM()
application = spm.application
scan = application.Scan
if scan.IsScanning:
    scan.Stop()
    while scan.IsScanning:
        time.sleep(0.01)
size, time_per_line, points = 10e-6, 0.2, 256
channel = spm.ScanChannel.Deflection_or_ZCtrlIn
scan.ImageSize(size, size)
scan.Scantime = time_per_line
scan.Points = points
scan.Lines = points
scan.StartFrameUp()


def decoded(text):
    values = np.array([float(v) for v in text.replace(",", ".").split(";")])
    return nsf.SciChannel(values, unit="m" if channel == 1 else "V")  # the demo's wrapper


next_line, lines = 0, []
while next_line < points:
    while next_line > scan.Currentline - 1 and scan.IsScanning:
        time.sleep(0.1)
    forward = decoded(scan.GetLine(spm.ScanGroupID.Forward, channel, next_line, spm.DataFilter.LineFit,
                                   spm.DataConversion.Physical))
    backward = decoded(scan.GetLine(spm.ScanGroupID.Backward, channel, next_line, spm.DataFilter.LineFit,
                                    spm.DataConversion.Physical))
    lines.append((forward, backward))
    next_line += 1
scan.Stop()
print("Scan ended at line", scan.Currentline)
assert len(lines) == points and all(len(f) == points and f.unit == "V" for f, _ in lines)
scan.StartFrameUp()  # the 1.2.0 demo waits on Currentline alone: it must reach every line by itself
for line in range(points):
    while line > scan.Currentline - 1:
        time.sleep(0.1)
scan.Stop()
del spm
print("rehearsal complete")
