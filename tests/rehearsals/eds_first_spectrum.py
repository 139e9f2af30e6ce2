# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/tutorials/0_Autoscript_tut.ipynb
# (the first session: vacuum and valves, stage, blanker, parked probe and screen current; a HAADF image
# by keywords and the metadata the notebook reads; then an EDS spectrum from the first EDS detector's
# widest dispersion and longest shaping time, decoded from its XML metadata: four segment spectra
# summed, energy = i * Dispersion + OffsetEnergy). Written for the twin; only API names and values
# follow the source.
# twin run: --serve --state stem
from xml.etree import ElementTree

import autoscript_tem_toolkit.vision as vision_toolkit
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType, ExposureTimeType
from autoscript_tem_microscope_client.structures import EdsAcquisitionSettings

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
print(microscope.vacuum.state, microscope.vacuum.column_valves.state)
microscope.vacuum.column_valves.open()
print(microscope.specimen.stage.position)
print("blanked:", microscope.optics.is_beam_blanked)  # the pre-1.18 place, still there
print("parked at", microscope.optics.paused_scan_beam_position)
print("screen current (A):", microscope.detectors.screen.measure_current())

image = microscope.acquisition.acquire_stem_image(scanning_detector=DetectorType.HAADF, size=256,
                                                  dwell_time=1000e-9)
metadata = image.metadata
print("defocus", metadata.optics.defocus, "C2", metadata.optics.c2_lens_intensity,
      "beam tilt", metadata.optics.beam_tilt, "stage", metadata.stage_settings.stage_position)
position = microscope.optics.paused_scan_beam_position
print("probe at pixel", position.x * image.data.shape[0], position.y * image.data.shape[1])
microscope.optics.paused_scan_beam_position = [0.5, 0.5]

name = microscope.detectors.eds_detectors[0]
detector = microscope.detectors.get_eds_detector(name)
settings = EdsAcquisitionSettings()
settings.eds_detector = name
settings.dispersion = detector.dispersions[-1]  # 5 eV a channel: 0-20 keV
settings.shaping_time = detector.shaping_times[-1]
settings.exposure_time = 2
settings.exposure_time_type = ExposureTimeType.LIVE_TIME
spectrum = microscope.analysis.eds.acquire_spectrum(settings)

root = ElementTree.fromstring(spectrum.metadata.metadata_as_xml)
analytical = root.findall("Detectors/AnalyticalDetector")
first = analytical[0] if isinstance(analytical, list) else analytical
dispersion = float(first.find("Dispersion").text)
offset = float(first.find("OffsetEnergy").text)
quarter = len(spectrum.data) // 4
summed = sum(spectrum.data[k * quarter:(k + 1) * quarter] for k in range(4))
energy_kev = (np.arange(quarter) * dispersion + offset) / 1000
shown = energy_kev <= 20
print("counts", int(summed.sum()), "brightest line at", energy_kev[np.argmax(summed)], "keV")
assert abs(energy_kev[np.argmax(summed)] - 0.277) < 0.02  # graphene: carbon K
vision_toolkit.plot_spectrum(summed[shown])
print("rehearsal complete")
