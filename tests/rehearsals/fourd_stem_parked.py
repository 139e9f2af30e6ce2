# Rehearses: pycroscopy/asyncroscopy asyncroscopy/instruments/electron_microscope/auto_script.py (its 4D-STEM
# in place of the advanced STEM-data call: keep the parked position, step it over the pixel centres of a
# region, one camera frame per point through acquire_camera_image_advanced with half the sensor read out,
# put the position back however the loop ends, stack the frames). The source's N is cut to 3. Written for
# the twin; only API names and values follow the source.
# twin run: --serve --state stem
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.structures import CameraAcquisitionSettings

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
left, top, width, height, points, dwell = 0.4, 0.4, 0.2, 0.2, 3, 0.01
kept = microscope.optics.paused_scan_beam_position
frames = []
try:
    for j in range(points):
        for i in range(points):
            x, y = left + (i + 0.5) * width / points, top + (j + 0.5) * height / points
            microscope.optics.paused_scan_beam_position = [x, y]
            image = microscope.acquisition.acquire_camera_image_advanced(CameraAcquisitionSettings(
                camera_detector="BM-Ceta", size=256, exposure_time=dwell, fixed_readout_area="Half"))
            frames.append(np.copy(image.data))
finally:
    microscope.optics.paused_scan_beam_position = [kept.x, kept.y]
data = np.array(frames).reshape(points, points, 256, 256)
assert image.metadata.binary_result.readout_area == "Half"
print("4D-STEM", data.shape, "mean counts", float(data.mean()))
print("rehearsal complete")
