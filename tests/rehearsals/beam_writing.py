# Rehearses: pycroscopy/pyAutoMic TEM/stemOrchestrator/notebooks/beam_movements/write_name.py (writing
# letters with the parked probe: unblank, STEM mode, a small field of view, the probe stepped along each
# stroke and held there, a large HAADF afterwards saved and plotted, disconnect in finally). Written for
# the twin; only API names and values follow the source. The twin runs a hundred times faster than the
# instrument, so each pause holds the probe 0.5 s of instrument time: at 300 kV it writes into graphene.
# twin run: --serve --state tem --time-scale 0.01 --set "source.acceleration_voltage=300 kV"
import time

import autoscript_tem_toolkit.vision as vision_toolkit
from autoscript_tem_microscope_client import TemMicroscopeClient
from autoscript_tem_microscope_client.enumerations import DetectorType, ImageSize, OpticalMode

STROKES = {"T": [((0.40, 0.70), (0.60, 0.70)), ((0.50, 0.70), (0.50, 0.40))]}
STEP, DWELL = 0.02, 0.005  # fraction of the field per step, seconds held at each point

microscope = TemMicroscopeClient()
microscope.connect("10.46.217.241", 9095)
try:
    microscope.optics.blanker.unblank()
    microscope.optics.optical_mode = OpticalMode.STEM
    microscope.optics.scan_field_of_view = 16.4e-9
    microscope.optics.blanker.unblank()
    for (x0, y0), (x1, y1) in STROKES["T"]:
        steps = max(1, int(max(abs(x1 - x0), abs(y1 - y0)) / STEP))
        for k in range(steps + 1):
            x = min(max(x0 + (x1 - x0) * k / steps, 0.0), 1.0)
            y = min(max(y0 + (y1 - y0) * k / steps, 0.0), 1.0)
            microscope.optics.paused_scan_beam_position = [x, y]
            time.sleep(DWELL)
    # wherever the specimen drifted since the twin started (1.2 nm per instrument minute)
    damage = microscope.twin.defects(-450e-9, -450e-9, 450e-9, 450e-9)
    written = [d for d in damage if d.origin == "beam damage"]
    print(len(written), "atoms knocked out by the parked probe")  # the twin's ground truth
    assert written  # the letter is in the sample now
    acquisition = microscope.acquisition
    image = acquisition.acquire_stem_image(DetectorType.HAADF, ImageSize.PRESET_2048, dwell_time=1e-6)
    image.save(f"written_{int(time.time())}.tiff")
    vision_toolkit.plot_image(image)
    assert image.data.shape == (2048, 2048)
finally:
    microscope.disconnect()
print("rehearsal complete")
