# Rehearses: whittlegears/asyncroscopy asyncroscopy/ThermoMicroscope.py (a Tango device's image commands:
# a HAADF at a preset size, then HAADF and BF from one scan of a relative region with auto blanking,
# expecting size*height x size*width pixels). Written for the twin; only API names and values follow the
# source.
# twin run: --serve --state stem
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType, ImageSize, RegionCoordinateSystem
from autoscript_tem_microscope_client.structures import Rectangle, Region, StemAcquisitionSettings

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
dwell_time = 2e-6
image = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, ImageSize.PRESET_1024, dwell_time)
assert image.data.shape == (1024, 1024)
size, (left, top, width, height) = 512, (0.25, 0.5, 0.5, 0.25)
settings = StemAcquisitionSettings(
    dwell_time=dwell_time, detector_types=[DetectorType.HAADF, DetectorType.BF], size=size,
    region=Region(RegionCoordinateSystem.RELATIVE, Rectangle(left, top, width, height)), auto_beam_blank=True)
haadf, bright_field = microscope.acquisition.acquire_stem_images_advanced(settings)
assert haadf.data.shape == bright_field.data.shape == (int(size * height), int(size * width))
print("region images", haadf.data.shape, haadf.data.dtype)
print("rehearsal complete")
