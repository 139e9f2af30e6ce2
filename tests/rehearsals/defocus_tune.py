# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/BO_related/GP-surrogate/defocus-tune.ipynb
# (a defocus search: set optics.defocus from a value in micrometres, a small HAADF, its contrast
# sigma/mean; keep the best). Written for the twin; only API names and values follow the source.
# twin run: --serve --state stem --set twin.focus_offset=30e-9
import numpy as np
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", port=9095)
microscope.optics.scan_field_of_view = 4e-9
contrasts = {}
for z in np.linspace(-0.1, 0.1, 11):  # micrometres
    microscope.optics.defocus = z / 1e6
    data = microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 128, 2e-6).data.astype(float)
    contrasts[z] = data.std() / data.mean()
best = max(contrasts, key=contrasts.get)
microscope.optics.defocus = best / 1e6
print("sharpest at", round(best * 1e3), "nm defocus")
assert abs(best * 1e3 - 30) <= 20, best  # the column's true focus sits 30 nm from the displayed zero
print("rehearsal complete")
