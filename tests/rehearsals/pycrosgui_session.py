# Rehearses: pycroscopy/pycrosGui pyTEMGui/MicroscopeDialog.py and AcquisitionDialog.py (connect on a
# port typed in, read the stage, a HAADF, look at the metadata; the session noted in the dialog: vacuum
# ready then valves open, holder, axis limits, gun lens, magnification table, TEM mode, focus, probe mode,
# spot size). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=int("9090"))
position = microscope.specimen.stage.position
print("stage", position.x, position.y, position.z, position.a, position.b)
image = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 128, 4e-6)
assert "binary_result" in dir(image.metadata)
print("image", image.data.shape, image.data.dtype)
if microscope.vacuum.state == "Ready":
    microscope.vacuum.column_valves.open()
print("valves", microscope.vacuum.column_valves.state, "holder", microscope.specimen.stage.get_holder_type())
for axis in ("x", "y", "z", "a", "b"):
    limits = microscope.specimen.stage.get_axis_limits(axis)
    print(axis, limits.min, limits.max)
microscope.optics.monochromator.focus = -50
print("gun lens", microscope.optics.monochromator.focus)
print("magnifications", len(microscope.optics.magnification.available_values))
microscope.optics.optical_mode = "Tem"
print("magnification", microscope.optics.magnification.value)
microscope.optics.focus = 50e-9
print("focus", microscope.optics.focus, "probe", microscope.optics.probe_mode,
      "spot", microscope.optics.spot_size_index)
microscope.disconnect()
print("rehearsal complete")
