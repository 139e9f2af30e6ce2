# Rehearses: nanosurf (PyPI) 1.14.1 nanosurf/app/app_VMF_Sample_Holder_Control/vmf_control/
# auto_image_worker.py (auto-imaging at field steps: gallery folder, the file index back to 0, auto
# capture on; per step a file mask with the field and the [INDEX] placeholder; per image stop a running
# scan, read the lines, one frame upwards, poll it while reading Currentline, stop). Written for the
# twin; only API names and values follow the source.
# twin run: --serve
import time

import nanosurf as nsf

spm = nsf.SPM()
application = spm.application
scan = application.Scan
try:
    application.SetGalleryHistoryDirectoryPath("C:\\Users\\lab\\vmf run")
    application.SetGalleryHistoryFilenameIndex(0)
    scan.AutoCapture = True
except Exception as error:
    raise SystemExit(f"Could not set destination directory: {error}") from error
scan.Points = scan.Lines = 64
saved = []
for field in (0.0, 12.0):
    application.SetGalleryHistoryFilenameMask(f"sample_{field:.1f}mT_[INDEX]".replace(" ", "_"))
    for _ in range(2):
        if scan.IsScanning:
            scan.Stop()
            while scan.IsScanning:
                time.sleep(0.1)
        lines = scan.Lines
        scan.StartFrameUp()
        while scan.IsScanning:
            print("line", scan.Currentline, "of", lines)
            time.sleep(0.3)
        scan.Stop()
        if scan.IsScanning:
            scan.Stop()
            while scan.IsScanning:
                time.sleep(0.1)
        saved.append(lines)
print(len(saved), "frames auto-captured into", application.GetGalleryHistoryDirectoryPath)
print("rehearsal complete")
