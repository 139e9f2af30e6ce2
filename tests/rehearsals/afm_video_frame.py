# Rehearses: s230642/auto-afm-nanosurf connectTesting.py (connect, then the top-view camera: choose the
# video source and save a frame, which returns whether it was written). Written for the twin; only API
# names and values follow the source.
# twin run: --serve
import nanosurf as nsf

spm = nsf.SPM()
print("connected:", spm.is_connected())
cameras = spm.application.Video
cameras.VideoSource = 1
if not cameras.SaveFrame("topimage.jpg"):
    raise SystemExit("Could not save video image")
cameras.VideoSource = spm.VideoSource.SideView
assert cameras.SaveFrame("sideimage.png")
print("rehearsal complete")
