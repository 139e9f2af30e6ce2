# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/sample-exploration/sample-explore-STEM.ipynb
# (a mosaic of HAADF tiles over the stage: axis limits, the field of view, absolute moves keeping z,
# a TIFF per tile). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType
from autoscript_tem_microscope_client.structures import StagePosition

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
stage = microscope.specimen.stage
x_limits, y_limits = stage.get_axis_limits(axis="x"), stage.get_axis_limits(axis="y")
assert x_limits.min < 0 < x_limits.max and y_limits.min < 0 < y_limits.max
microscope.optics.scan_field_of_view = 16e-9
fov = microscope.optics.scan_field_of_view
p0 = stage.position
for i in range(2):
    for j in range(2):
        stage.absolute_move(StagePosition(x=p0.x + i * fov, y=p0.y + j * fov, z=p0.z))
        here = stage.position
        image = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 128, 2e-6)
        pixel = image.metadata.binary_result.pixel_size.x
        assert abs(pixel - fov / 128) < 1e-15, pixel
        image.save(f"tile_{i}_{j}.tiff")
        print("tile", i, j, "at", round(here.x * 1e9, 1), round(here.y * 1e9, 1), "nm")
stage.absolute_move(p0)
print("rehearsal complete")
