# Rehearses: nanosurf-apps (PyPI) 2.0.7 nanosurf/apps/studio_scripting/Studio_Scripting_Level_1.ipynb
# (a tour of Studio's level-1 calls: the session, a property's unit and range, the setpoint's unit and
# range, an enumeration, the hardware's names, the laser, the probe, the modes with a frequency sweep,
# a static-mode setpoint in volts, the approach, the storage settings, imaging with rotation and offsets,
# acquire and withdraw). Written for the twin; only API names and values follow the source.
# twin run: --serve
from nanosurf import Studio

studio = Studio()
session = studio.select_measurement_session(level=1)
print("session", studio.session_id)
workflow = session.workflow
approach, data, device, imaging = workflow.approach, workflow.data, workflow.device, workflow.imaging
laser, mode, probe, z_control = workflow.laser, workflow.mode, workflow.probe, workflow.z_control
print(imaging.scan_range_fast_axis, imaging.scan_range_fast_axis_unit, imaging.scan_range_fast_axis_min,
      imaging.scan_range_fast_axis_max)
print(z_control.setpoint, z_control.setpoint_unit, z_control.setpoint_min, z_control.setpoint_max)
print("units:", z_control.setpoint_units if hasattr(z_control, "setpoint_units") else "one")
calibration = probe.cantilever_calibration
print([name for name in calibration.operation_mode_enum])
calibration.operation_mode = calibration.operation_mode_enum.non_contact
print(device.controller.name, device.controller.serial_number, device.scan_head.name,
      device.scan_head.serial_number, laser.readout.enabled, laser.readout.power)
for step in (laser.alignment.align_all, laser.alignment.align_readout, laser.alignment.optimize_focus):
    print(step()["message"])
print(probe.selected_probe, probe.current_deflection_sensitivity, probe.current_deflection_sensitivity_unit,
      probe.current_spring_constant, probe.current_spring_constant_unit)
calibration.wavemode_calibration_enabled = False
calibration.run()
calibration.apply()
mode.dynamic_mode.load()
print(probe.frequency_sweep.run()["message"])
mode.dynamic_mode.update()
mode.static_mode.load()
z_control.setpoint_unit = "V"
z_control.setpoint = 0.3
approach.approach()
storage = data.storage
print(storage.file_basename, storage.gallery_directory, storage.save_partial_measurements)
storage.file_basename = "notebook_demo_[DATE]_[INDEX]"
storage.save_partial_measurements = False
imaging.line_rate = 5
imaging.scan_range_fast_axis = 20e-6
imaging.scan_range_slow_axis = 20e-6
imaging.rotation = 45
imaging.points_per_line = 200
imaging.lines_per_frame = 200
print(imaging.frame_center_offset_x, imaging.frame_center_offset_y)
imaging.frame_center_offset_x = 2.5e-6
imaging.frame_center_offset_y = -3.4e-6
print("i gain", z_control.i_gain, "setpoint", z_control.setpoint)
print(imaging.acquire()["message"])
approach.withdraw()
print("rehearsal complete")
