# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/BO_related/GP-surrogate/
# sample-height-tune.ipynb (the eucentric-height search: a safe absolute move to each trial height in
# micrometres at fixed x, y, a small HAADF, its contrast sigma/mean; keep the best). Written for the twin;
# only API names and values follow the source.
# twin run: --serve --state stem --set twin.focus_offset=40e-9
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType
from autoscript_tem_microscope_client.structures import StagePosition

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
microscope.optics.scan_field_of_view = 4e-9
stage = microscope.specimen.stage
x0, y0 = stage.position.x, stage.position.y
contrasts = {}
for z in np.linspace(-0.1, 0.1, 11):  # micrometres
    stage.absolute_move_safe(StagePosition(x=x0, y=y0, z=z / 1e6))
    data = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 128, 2e-6).data.astype(float)
    contrasts[z] = data.std() / data.mean()
best = max(contrasts, key=contrasts.get)
stage.absolute_move_safe(StagePosition(x=x0, y=y0, z=best / 1e6))
print("best height", round(best * 1e3), "nm")
assert abs(best * 1e3 + 40) <= 20, best  # raising the specimen underfocuses it: in focus 40 nm down
print("rehearsal complete")
