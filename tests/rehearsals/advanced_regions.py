# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/beam_movements/1_beam_movement.ipynb
# (beam parked point by point on a raster with the beam unblanked, then advanced acquisitions: HAADF and
# BF-S at 1024 with auto blanking, and a pixel region of the 4096 frame). Written for the twin; only API
# names and values follow the source.
# twin run: --serve --state stem
import time

from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType, RegionCoordinateSystem
from autoscript_tem_microscope_client.structures import Rectangle, Region, StemAcquisitionSettings

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
microscope.optics.blanker.unblank()
for x in (0.2, 0.3, 0.4):
    for y in (0.5, 0.6):
        time.sleep(1e-3)
        microscope.optics.paused_scan_beam_position = [x, y]
microscope.optics.blanker.blank()
images = microscope.acquisition.acquire_stem_images_advanced(StemAcquisitionSettings(
    1e-6, detector_types=[DetectorType.HAADF, DetectorType.BF_S], size=1024, auto_beam_blank=True))
assert [i.data.shape for i in images] == [(1024, 1024), (1024, 1024)]
half = microscope.acquisition.acquire_stem_images_advanced(StemAcquisitionSettings(
    2e-7, detector_types=[DetectorType.HAADF],
    region=Region(RegionCoordinateSystem.PIXELS, Rectangle(0, 2048, 4096, 2048)), auto_beam_blank=True))
print("region image", half[0].data.shape)
assert half[0].data.shape == (2048, 4096)
print("rehearsal complete")
