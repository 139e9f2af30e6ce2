# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/stemOrchestrator/acquisition.py (TFacquisition:
# detector handles, a status query, HAADF between unblank and blank saved without an extension, HAADF+BF
# through the advanced call, a camera frame with the camera inserted, autofocus and OptiSTEM, stage
# moves, valves). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import os

from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import (
    CameraType,
    DetectorType,
    OpticalMode,
    OptiStemMethod,
)
from autoscript_tem_microscope_client.structures import (
    RunOptiStemSettings,
    RunStemAutoFocusSettings,
    StagePosition,
    StemAcquisitionSettings,
)

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
ceta = microscope.detectors.get_camera_detector(CameraType.BM_CETA)
haadf = microscope.detectors.get_scanning_detector(DetectorType.HAADF)
flucam = microscope.detectors.get_camera_detector(CameraType.FLUCAM)
print("server", microscope.server_host, microscope.service.autoscript.server.version,
      microscope.service.autoscript.client.version)
print("vacuum", microscope.vacuum.state, "cameras", microscope.detectors.camera_detectors)
print("mode", microscope.optics.optical_mode, "screen", microscope.detectors.screen.position,
      "haadf", haadf.insertion_state, "ceta", ceta.insertion_state)
print("paused beam", microscope.optics.paused_scan_beam_position, "stage", microscope.specimen.stage.position)
print("beam shift", microscope.optics.deflectors.beam_shift, "valves", microscope.vacuum.column_valves.state)
print("current", microscope.detectors.screen.measure_current() * 1e12, "pA")
print("fov", microscope.optics.scan_field_of_view)


def unblank():
    try:
        microscope.optics.unblank()
    except (AttributeError, ValueError):
        microscope.optics.blanker.unblank()


def blank():
    try:
        microscope.optics.blank()
    except (AttributeError, ValueError):
        microscope.optics.blanker.blank()


unblank()
image = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 512, 40e-9)
blank()
image.save("HAADF_image_0001")
assert os.path.exists("HAADF_image_0001.tiff")
print("pixel", image.metadata.binary_result.pixel_size.x, image.metadata.binary_result.pixel_size.y)
unblank()
both = microscope.acquisition.acquire_stem_images_advanced(
    StemAcquisitionSettings(1e-6, detector_types=[DetectorType.HAADF, DetectorType.BF_S], size=256))
blank()
assert len(both) == 2 and both[1].metadata.binary_result.detector == "BF-S"
microscope.optics.optical_mode = OpticalMode.TEM
ceta.insert()
unblank()
frame = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 1024, 0.1)
blank()
frame.save("ceta_0001.tiff")
microscope.optics.optical_mode = OpticalMode.STEM
unblank()
microscope.auto_functions.run_stem_auto_focus(
    RunStemAutoFocusSettings(DetectorType.HAADF, 256, 1e-5, True, reset_beam_blanker_afterwards=True))
microscope.auto_functions.run_opti_stem(
    RunOptiStemSettings(method=OptiStemMethod.C1, dwell_time=2e-6, cutoff_in_pixels=5))
microscope.auto_functions.run_opti_stem(RunOptiStemSettings(method=OptiStemMethod.B2_A2, dwell_time=2e-6))
microscope.optics.paused_scan_beam_position = [0.3, 0.7]
stage = microscope.specimen.stage
start = stage.position
print("start", start[0], start[1], start[2], start[3], start[4])
stage.relative_move(StagePosition(x=20 * 1e-9, y=-10 * 1e-9, z=0.0))
stage.absolute_move_safe(StagePosition(x=start.x, y=start.y, z=start.z))
stage.relative_move(StagePosition(a=0.01))
stage.absolute_move(start)
microscope.optics.deflectors.beam_shift = list((0.0, 0.0))
microscope.vacuum.column_valves.close()
microscope.vacuum.column_valves.open()
print("rehearsal complete")
