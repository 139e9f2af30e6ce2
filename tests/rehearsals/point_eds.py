# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/multimodal-data-process/
# point-wise-EDX-spectrum.ipynb and tutorials/Arems_2025/Arems-2025.ipynb (EDS at chosen pixels of a
# HAADF image: park the probe there, unblank, one spectrum, blank again, the four segments summed and
# stacked; a camera frame at a few of the same places; the Arems variant parks with a tuple and uses
# the pre-1.18 blank/unblank calls). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import CameraType, DetectorType, ExposureTimeType
from autoscript_tem_microscope_client.structures import EdsAcquisitionSettings

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
name = microscope.detectors.eds_detectors[0]
detector = microscope.detectors.get_eds_detector(name)
settings = EdsAcquisitionSettings()
settings.eds_detector = name
settings.dispersion = detector.dispersions[-1]  # "20 keV"
settings.shaping_time = detector.shaping_times[-1]
settings.exposure_time = 1
settings.exposure_time_type = ExposureTimeType.LIVE_TIME

haadf = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 1024, 5e-6)
height, width = haadf.data.shape
rng = np.random.default_rng(0)
pixels = rng.integers(0, [width, height], size=(6, 2))
spectra = []
for x, y in pixels:
    microscope.optics.paused_scan_beam_position = [x / width, y / height]
    microscope.optics.blanker.unblank()
    spectrum = microscope.analysis.eds.acquire_spectrum(settings)
    microscope.optics.blanker.blank()
    quarters = np.split(np.asarray(spectrum.data), 4)
    spectra.append(np.sum(quarters, axis=0))
stack = np.stack(spectra)
print("spectra", stack.shape, "counts per spectrum", stack.sum(axis=1))
assert stack.shape == (6, 4096) and stack.sum() > 0

frames = []
for x, y in pixels[:2]:
    microscope.optics.paused_scan_beam_position = [x / width, y / height]
    microscope.optics.blanker.unblank()
    frames.append(microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 1024, 0.1).data)
    microscope.optics.blanker.blank()
print("diffraction frames", np.shape(frames))

microscope.optics.paused_scan_beam_position = (0.5, 0.5)  # Arems: a tuple, and the old blanker calls
microscope.optics.unblank()
centre = microscope.analysis.eds.acquire_spectrum(settings)
microscope.optics.blank()
print("centre spectrum counts", int(np.asarray(centre.data).sum()))
print("rehearsal complete")
