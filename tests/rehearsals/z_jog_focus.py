# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/stemOrchestrator/acquisition.py (its height tune by
# jogging z at 50 nm/s: pause, read the position, a HAADF scan, its contrast; stop jogging once the
# contrast falls). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import time

from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType
from autoscript_tem_microscope_client.structures import StageVelocity

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
stage = microscope.specimen.stage
start = stage.position.z
stage.start_jogging(StageVelocity(z=50e-9))
best, heights = 0.0, []
for _ in range(8):
    time.sleep(0.01)  # the source pauses 2 s per step
    heights.append(stage.position.z)
    data = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 512, 200e-9).data.astype(float)
    contrast = data.std() / data.mean()
    if contrast < 0.5 * best:
        break
    best = max(best, contrast)
assert stage.is_moving
stage.stop_jogging()
assert not stage.is_moving and heights == sorted(heights) and heights[-1] > start, heights
print("z went from", start, "to", stage.position.z, "m")
print("rehearsal complete")
