# Rehearses: nanosurf-apps (PyPI) 2.0.7 nanosurf/apps/studio_scripting/studio_scripting.py (the Studio
# v17+ cycle: select the measurement session, name the scan head and controller, align the laser, a
# cantilever calibration in non-contact, the imaging range, points, lines and line rate, a file base
# name with [DATE] and [INDEX], approach, acquire, withdraw; every call inside try/except
# StudioScriptError). Written for the twin; only API names and values follow the source.
# twin run: --serve
from nanosurf import Studio, StudioScriptError

studio = Studio()
try:
    session = studio.select_measurement_session()
    workflow = session.workflow
    print(workflow.device.scan_head.name, workflow.device.controller.name)
    print(workflow.laser.alignment.align_all()["message"])
    calibration = workflow.probe.cantilever_calibration
    calibration.operation_mode = calibration.operation_mode_enum.non_contact
    print(calibration.run()["message"])
    calibration.apply()
    imaging = workflow.imaging
    imaging.scan_range_fast_axis = 2e-6
    imaging.scan_range_slow_axis = 2e-6
    imaging.points_per_line = 256
    imaging.lines_per_frame = 256
    imaging.line_rate = 1.0
    workflow.data.storage.file_basename = "demo_[DATE]_[INDEX]"
    print(workflow.approach.approach()["message"])
    print(imaging.acquire()["message"])
    workflow.approach.withdraw()
except StudioScriptError as error:
    raise SystemExit(f"Studio script error: {error}") from error
assert imaging.line_rate == 1.0 and imaging.points_per_line == 256
print("rehearsal complete")
