"""The TEM challenges' rules that an agent could otherwise get round: the beam-sensitive image must cover
the whole square and not be clipped, and the dopant census's high tension really destroys dopants.

(Baseline bands and the scorers' perfect and useless answers are checked in test_challenges.py.)
"""

from __future__ import annotations

import numpy as np
import pytest

from twin.sample import Window
from twin.scenarios import spec
from twin.server.instances import Instance


def haadf(instance: Instance, size: int, dwell: float, region: list[float] | None = None) -> int:
    """Scan once with the HAADF detector; the frame index."""
    image = instance.invoke("tem.acquire_stem_images", [["HAADF"], size, dwell, region], {})[0]
    return image["metadata"]["acquisition"]["frame_index"]


@pytest.mark.parametrize(("field", "region"), [(0.5e-9, None), (None, [0.45, 0.45, 0.1, 0.1])])
def test_a_smaller_field_or_a_sub_region_cannot_spare_the_rest_of_the_square(field, region) -> None:
    instance = Instance.playing("a", spec.load("tem-beam-sensitive"), 1)  # 300 kV: sulphur sputters
    if field is not None:
        instance.invoke("tem.set", ["optics.scan_field_of_view", field], {})
    # over 0.5 nm, 64 pixels (0.08 A steps): 256 would sample the probe at 0.02 A, seconds of work the rule
    # (the image's span, not its pixels) does not need
    small = haadf(instance, 64 if field is not None else 256, 1.6e-5, region)
    with pytest.raises(ValueError, match=f"answer frame_index = {small}: that image spans .* less than the"):
        instance.invoke("episode.submit", [{"frame_index": small}], {})
    instance.invoke("tem.set", ["optics.scan_field_of_view", 4e-9], {})
    whole = instance.invoke("episode.submit", [{"frame_index": haadf(instance, 256, 1.6e-5)}], {})
    assert whole["score"] < 0.2 and whole["details"]["intact"] < 0.2  # the honest image at 300 kV


def test_a_clipped_image_scores_less_than_one_well_exposed() -> None:
    scenario = spec.load("tem-beam-sensitive")
    results = {}
    for label, spot, dwell in (("exposed", 5, 2e-5), ("clipped", 1, 1e-3)):
        instance = Instance.playing("a", scenario, 1)
        instance.invoke("tem.set", ["source.acceleration_voltage", 60e3], {})  # no sputtering at all
        tem = instance.twin.tem  # focused and stigmated from the hidden state, as a perfect operator would
        astigmatism = np.array(tem.settings.get("twin.objective_astigmatism"))
        instance.invoke("tem.set", ["optics.focus", tem.settings.get("twin.focus_offset")], {})
        instance.invoke("tem.set", ["optics.objective_stigmator",
                                    (-astigmatism / tem.hardware.stigmator_strength).tolist()], {})
        instance.invoke("tem.set", ["optics.spot_size_index", spot], {})
        results[label] = instance.invoke("episode.submit", [{"frame_index": haadf(instance, 64, dwell)}], {})
    exposed, clipped = results["exposed"], results["clipped"]
    assert exposed["score"] > 0.95 and exposed["details"]["saturated"] == 0.0
    assert clipped["details"]["intact"] == 1.0 and clipped["details"]["saturated"] > 0.5
    assert clipped["score"] < 0.5


@pytest.mark.parametrize(("voltage", "destroyed"), [(300e3, True), (60e3, False)])
def test_zooming_onto_dopants_at_300_kv_destroys_them_and_at_60_kv_does_not(voltage, destroyed) -> None:
    instance = Instance.playing("a", spec.load("tem-dopant-census"), 1)
    dopants = [d for d in instance.twin.tem.sample.defects_in_window(Window.around(0.0, 0.0, 16e-9, 16e-9))
               if d.kind == "substitution" and d.species == "Si"]
    instance.invoke("tem.set", ["source.acceleration_voltage", voltage], {})
    instance.invoke("tem.set", ["optics.scan_field_of_view", 2e-9], {})
    for dopant in dopants[:4]:  # 2 nm zooms of ~1e27 e/m² (Si: 15 barn at 300 kV), all the budget allows
        instance.invoke("tem.set", ["optics.beam_shift", [dopant.x, dopant.y]], {})
        haadf(instance, 128, 4e-5)
    truth = [[d.x, d.y] for d in dopants]
    result = instance.invoke("episode.submit", [{"positions": truth}], {})["details"]
    if destroyed:
        assert result["knocked_out"] >= 2 and result["recall"] < 0.8
    else:
        assert result["knocked_out"] == 0 and result["recall"] == 1.0
