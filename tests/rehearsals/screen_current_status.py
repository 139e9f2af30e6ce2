# Rehearses: pycroscopy/asyncroscopy asyncroscopy/instruments/electron_microscope/auto_script.py (the
# status snapshot a Tango device publishes, apertures included, and the screen-current calibration
# against the gun lens: screen in, a sweep of monochromator focus with a settling pause, a polynomial
# fit, the focus for a target current). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import time

import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient

microscope = TemMicroscopeClient()
microscope.connect(host="10.46.217.241", port=int("9095"))
optics = microscope.optics
status = {
    "system": microscope.service.system.name, "vacuum": microscope.vacuum.state,
    "valves": microscope.vacuum.column_valves.state, "accelerator_on": optics.is_accelerator_on,
    "high_tension": optics.acceleration_voltage.value, "optical_mode": optics.optical_mode,
    "illumination_mode": optics.illumination_mode, "objective_lens_mode": optics.objective_lens_mode,
    "projector_mode": optics.projector_mode, "spot": optics.spot_size_index,
    "beam_stopper": optics.beam_stopper.insertion_state, "blanked": optics.blanker.is_beam_blanked,
    "eftem": optics.is_eftem_on, "camera_length": optics.camera_length.value.calibrated,
}
if status["optical_mode"] == "Stem":
    status["scan_rotation"], status["fov"] = optics.scan_rotation, optics.scan_field_of_view
apertures = {}
for kind in optics.aperture_mechanisms.get_available():
    mechanism = optics.aperture_mechanisms.get_mechanism(kind)
    if not mechanism.is_enabled:
        apertures[kind] = "Disabled"
    elif mechanism.insertion_state == "Retracted":
        apertures[kind] = "Retracted"
    else:
        apertures[kind] = mechanism.aperture.name
status["apertures"] = apertures
status["deflectors"] = {name: [optics.deflectors.get_deflector_value(name).x,
                               optics.deflectors.get_deflector_value(name).y]
                        for name in optics.deflectors.get_available_deflectors()}
print(status)
screen = microscope.detectors.screen
if screen.position == "Retracted":
    screen.insert()
original = optics.monochromator.focus
focus_values = np.linspace(10, 150, 15)
currents = []
for value in focus_values:
    optics.monochromator.focus = float(value)
    time.sleep(0.01)  # the source waits a second for the gun to settle
    currents.append(screen.measure_current() * 1e12)  # pA
optics.monochromator.focus = original
coefficients = np.polyfit(focus_values, np.log(currents), 2)
target = 0.5 * (max(currents) + min(currents))
coefficients[-1] -= np.log(target)
roots = [r.real for r in np.roots(coefficients) if abs(r.imag) < 1e-9 and 10 <= r.real <= 150]
assert roots, currents
optics.monochromator.focus = float(roots[0])
print("current at focus", roots[0], "=", screen.measure_current() * 1e12, "pA; target", target)
assert abs(screen.measure_current() * 1e12 / target - 1) < 0.05
screen.retract()
print("rehearsal complete")
