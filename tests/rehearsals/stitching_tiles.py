# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/tutorials/1_Autoscript_tut.ipynb
# (stitching: stage position plus a StagePosition offset per tile with 10 % overlap, HAADF by detector
# name, back to the start; the toolkit's plots and scale bar). Written for the twin; only API names and
# values follow the source.
# twin run: --serve --state stem
import autoscript_tem_toolkit.vision as vision_toolkit
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.structures import StagePosition

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port="9095")  # the port as read from a settings file: a string
stage = microscope.specimen.stage
print("holder", stage.get_holder_type())
fov = microscope.optics.scan_field_of_view
p0 = stage.position
tiles = []
for row in range(2):
    for column in range(2):
        shift_x, shift_y = column * 0.9 * fov, row * 0.9 * fov
        stage.absolute_move(p0 + StagePosition(x=shift_y, y=shift_x))  # the source swaps x and y
        tiles.append(microscope.acquisition.acquire_stem_image("HAADF", 512, 1e-6))
stage.absolute_move(p0)
assert abs(stage.position.x - p0.x) < 1e-12 and len(tiles) == 4
vision_toolkit.plot_images(tiles)
vision_toolkit.plot_image(vision_toolkit.add_scale_bar(tiles[0]))
print("rehearsal complete")
