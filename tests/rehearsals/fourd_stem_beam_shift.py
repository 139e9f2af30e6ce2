# Rehearses: pycroscopy/pyAutoMic TEM/AutoScript/notebooks/4Dstem.ipynb (a HAADF overview, then the beam
# shifted one HAADF pixel at a time, reading the shift back as x, y, and a Ceta frame of 512² at 2.5 ms
# per position; a virtual bright field from the frame means). The source's 128 x 128 raster is cut to a
# 3 x 3 corner to keep the rehearsal short. Written for the twin; only API names and values follow it.
# twin run: --serve --state stem
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import CameraType, DetectorType

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241")
position = microscope.specimen.stage.position
print("stage", {axis: getattr(position, axis) for axis in "xyzab"})
overview = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 128, 4e-6)
pixel_x = overview.metadata.binary_result.pixel_size.x
pixel_y = overview.metadata.binary_result.pixel_size.y
microscope.optics.deflectors.beam_shift = [0, 0]
frames = np.zeros((3, 3, 512, 512), dtype=np.uint16)
for j in range(3):
    for i in range(3):
        frames[j, i] = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 512, 25e-4).data
        old_x, old_y = microscope.optics.deflectors.beam_shift
        microscope.optics.deflectors.beam_shift = [old_x + pixel_x, old_y]
    old_x, old_y = microscope.optics.deflectors.beam_shift
    microscope.optics.deflectors.beam_shift = [old_x - 3 * pixel_x, old_y + pixel_y]
virtual_bright_field = frames.mean(axis=(2, 3))
print("virtual bright field", virtual_bright_field.round(1).tolist())
assert frames.shape == (3, 3, 512, 512) and virtual_bright_field.min() > 0
print("rehearsal complete")
