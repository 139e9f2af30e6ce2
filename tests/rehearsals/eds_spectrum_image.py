# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/tutorials/1_Autoscript_tut.ipynb
# (its detector and EDS cells: list the cameras, scanning and EDS detectors, read the EDS detector's
# read-outs, ask whether the gun wants a flash and flash it, a short EDS spectrum with its XML read for
# the high tension and each detector's name, dispersion and offset, then EDS spectrum images with a
# simultaneous HAADF, saved as .emd, the second over a relative region). Written for the twin; only
# API names and values follow the source.
# twin run: --serve --state stem
from xml.etree import ElementTree

import autoscript_tem_toolkit.vision as vision_toolkit
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import (
    DetectorType,
    ExposureTimeType,
    ImageSize,
    RegionCoordinateSystem,
)
from autoscript_tem_microscope_client.structures import (
    EdsAcquisitionSettings,
    EdsSpectrumImageSettings,
    Region,
)

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
print([name for name in dir(microscope) if not name.startswith("_")])
print(microscope.detectors.camera_detectors, microscope.detectors.scanning_detectors,
      microscope.detectors.eds_detectors)
detector = microscope.detectors.get_eds_detector(microscope.detectors.eds_detectors[0])
print(detector.name, detector.insertion_state, detector.is_insertable, detector.bin_counts,
      detector.dispersions, detector.shaping_times)

gun = microscope.source.field_emission_gun
print("flash advised:", gun.is_flashing_advised)
gun.flash()

settings = EdsAcquisitionSettings()
settings.eds_detector = detector.name
settings.dispersion = 5
settings.shaping_time = 3e-6
settings.exposure_time = 3e-3
settings.exposure_time_type = ExposureTimeType.LIVE_TIME
spectrum = microscope.analysis.eds.acquire_spectrum(settings)
vision_toolkit.plot_spectrum(spectrum)
root = ElementTree.fromstring(spectrum.metadata.metadata_as_xml)
print("high tension (V):", root.find("Optics/AccelerationVoltage").text)
for element in root.findall("Detectors/AnalyticalDetector"):
    print(*(element.find(tag).text for tag in ("DetectorName", "Dispersion", "OffsetEnergy")))

image_settings = EdsSpectrumImageSettings(
    eds_detector=detector.name, dispersion=detector.dispersions[0], shaping_time=detector.shaping_times[0],
    dwell_time=4e-6, size=ImageSize.PRESET_256, scanning_detectors=[DetectorType.HAADF],
)
spectrum_image = microscope.analysis.eds.acquire_spectrum_image(image_settings)
path = spectrum_image.save("spectrum_image.emd")
vision_toolkit.plot_spectra(spectrum_image)
print(spectrum_image, "->", path)

image_settings = EdsSpectrumImageSettings(
    eds_detector=detector.name, dispersion=detector.dispersions[0], shaping_time=detector.shaping_times[0],
    dwell_time=4e-6, size=ImageSize.PRESET_1024, scanning_detectors=[DetectorType.HAADF],
    region=Region(coordinate_system=RegionCoordinateSystem.RELATIVE, rectangle=[0, 0, 0.5, 0.5]),
)
quarter = microscope.analysis.eds.acquire_spectrum_image(image_settings)
assert quarter.shape[:2] == (512, 512) and quarter.images[0].data.shape == (512, 512)
quarter.save("spectrum_image_region.emd")
print("rehearsal complete")
