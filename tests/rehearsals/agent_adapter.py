# Rehearses: sriya-gm/tem-agent autoscript_interface.py (an agent's adapter: read the state, set the
# magnification from the table, defocus, high tension, move all five axes, image by detector name,
# autofocus and read its defocus). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
import math

from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.structures import RunStemAutoFocusSettings, StagePosition

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 7521)
position = microscope.specimen.stage.position
state = {"x": position.x, "y": position.y, "z": position.z, "alpha_deg": math.degrees(position.a),
         "beta_deg": math.degrees(position.b), "stem": microscope.optics.optical_mode == "Stem"}
optics = microscope.optics
state["defocus"] = optics.focusing.stem.objective.defocus if state["stem"] else optics.focusing.tem.defocus
state["magnification"] = optics.magnification.value.nominal
state["high_tension"] = optics.acceleration_voltage.value
state["valves_open"] = microscope.vacuum.column_valves.state == "Opened"
state["blanked"] = optics.blanker.is_beam_blanked
print(state)
optics.acceleration_voltage.value = 80 * 1000.0
optics.focusing.stem.objective.defocus = -10e-9
assert abs(optics.defocus + 10e-9) < 1e-12
microscope.specimen.stage.relative_move(StagePosition(x=5e-9, y=-5e-9, z=0.0, a=math.radians(0.5),
                                                      b=math.radians(-0.5)))
image = microscope.acquisition.acquire_stem_image(scanning_detector="HAADF", size=256, dwell_time=2e-6)
pixel = image.metadata.binary_result.pixel_size
print("pixel", pixel.x)
result = microscope.auto_functions.run_stem_auto_focus(
    RunStemAutoFocusSettings(scanning_detector="HAADF", size=256, dwell_time=2e-6))
print("autofocus defocus", result.defocus * 1e9, "nm")
optics.optical_mode = "Tem"
available = optics.magnification.available_values
optics.magnification.value = min(available, key=lambda m: abs(m.nominal - 500_000))
print("magnification", optics.magnification.value.nominal, optics.magnification.value.label)
camera = microscope.acquisition.acquire_camera_image(camera_detector="BM-Ceta", size=512, exposure_time=0.1)
assert camera.data.shape == (512, 512)
microscope.disconnect()
print("rehearsal complete")
