"""One dataset item: a TEM image and an AFM frame of the same place, with their ground truth.

Runs in a worker: builds the twin in process (no server), sets the drawn conditions, acquires, and
labels both images on their own pixel grids (the TEM's and the AFM's share the field of view, so an
AFM pixel covers a whole number of TEM pixels when the sizes divide).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from twin.common.wire import keep_freed_memory
from twin.datasets.config import DatasetConfig
from twin.digital_twin import DigitalTwin
from twin.sample import Window
from twin.sample.truth import height_map, label_masks

CAMERA = "BM-Ceta"


@lru_cache(maxsize=4)
def _twin(config: DatasetConfig, sample_seed: int) -> DigitalTwin:
    """The twin of one specimen (kept while items of the same specimen follow)."""
    keep_freed_memory()  # Dask workers start with malloc trimming hard, refaulting every image's pages
    twin = DigitalTwin.build(config.sample, seed=sample_seed)
    twin.tem.set("twin.stage_errors", False)  # the window is still read back from each image's metadata
    twin.afm.set("twin.drift_velocity", (0.0, 0.0))
    twin.afm.set("twin.piezo_creep", 0.0)
    twin.afm.motion.start_approach(None)
    return twin


def make_item(config: DatasetConfig, index: int) -> dict[str, Any]:
    """Item ``index``: images, labels, heights and every condition, as numpy arrays and numbers."""
    conditions = config.draw(index)
    twin = _twin(config, conditions["sample_seed"])
    tem, afm = twin.tem, twin.afm
    centre = (conditions["centre_x"], conditions["centre_y"])
    tem.set("optics.magnification", conditions["magnification"])
    tem.set("source.acceleration_voltage", conditions["high_tension"])
    tem.set("optics.focus", conditions["focus"])
    tem.move_stage({"x": centre[0], "y": centre[1]})
    image = tem.acquire_camera_image(CAMERA, config.tem.size, conditions["exposure"])
    tem_window = Window(**image["metadata"]["twin"]["window"])
    tem_shape = (config.tem.size, config.tem.size)
    tem_classes, tem_instances, _ = label_masks(twin.sample, tem_window, tem_shape)

    for name, value in (("twin.tip_radius", conditions["tip_radius"]),
                        ("twin.z_noise", conditions["z_noise"]),
                        ("twin.second_apex", (conditions["second_apex_x"], conditions["second_apex_y"])),
                        ("twin.second_apex_height", conditions["second_apex_height"]),
                        ("twin.ideal_feedback", config.afm.ideal_feedback),
                        ("Scan.ImageWidth", tem_window.width), ("Scan.ImageHeight", tem_window.height),
                        ("Scan.Points", config.afm.size), ("Scan.Lines", config.afm.size),
                        ("Scan.CenterPosX", tem_window.centre[0]),
                        ("Scan.CenterPosY", tem_window.centre[1])):
        afm.set(name, value)
    stem = _stem(twin, config, tem_window, conditions) if config.stem.size else {}

    afm.start_frame_up()
    topography = afm.get_frame(0, 1)
    afm_window = Window(**topography["metadata"]["twin"]["window"])
    afm_shape = (config.afm.size, config.afm.size)
    afm_classes, afm_instances, _ = label_masks(twin.sample, afm_window, afm_shape)
    return {
        "index": index,
        "arrays": {
            "tem_image": image["data"].astype(np.uint16),
            "tem_classes": tem_classes, "tem_instances": tem_instances,
            "afm_topography": topography["data"].astype(np.float32),
            "afm_phase": afm.get_frame(0, 2)["data"].astype(np.float32),
            "afm_error": afm.get_frame(0, 0)["data"].astype(np.float32),
            "afm_height": height_map(twin.sample, afm_window, afm_shape).astype(np.float32),
            "afm_classes": afm_classes, "afm_instances": afm_instances,
            **stem.get("arrays", {}),
        },
        "conditions": {
            **conditions,
            "tem_x_min": tem_window.x_min, "tem_y_min": tem_window.y_min,
            "tem_pixel": tem_window.width / config.tem.size,
            "tem_counts_per_electron": image["metadata"]["binary_result"]["counts_per_electron"],
            "tem_offset": image["metadata"]["binary_result"]["offset"],
            "afm_x_min": afm_window.x_min, "afm_y_min": afm_window.y_min,
            "afm_pixel": afm_window.width / config.afm.size,
            "dose": image["metadata"]["optics"]["dose_per_area"],
            **stem.get("conditions", {}),
        },
    }


def _stem(twin: DigitalTwin, config: DatasetConfig, window: Window, conditions: dict[str, Any]
          ) -> dict[str, dict[str, Any]]:
    """A STEM image of the same field of view as the TEM image, with its labels."""
    tem = twin.tem
    tem.set("optics.optical_mode", "Stem")
    tem.set("optics.scan_field_of_view", window.width)
    try:
        reply = tem.acquire_stem_images(config.stem.detector, config.stem.size, conditions["dwell_time"])[0]
    finally:
        tem.set("optics.optical_mode", "Tem")
    stem_window = Window(**reply["metadata"]["twin"]["window"])
    shape = (config.stem.size, config.stem.size)
    classes, instances, _ = label_masks(twin.sample, stem_window, shape)
    return {
        "arrays": {"stem_image": reply["data"].astype(np.uint16), "stem_classes": classes,
                   "stem_instances": instances},
        "conditions": {"dwell_time": conditions["dwell_time"], "stem_x_min": stem_window.x_min,
                       "stem_y_min": stem_window.y_min, "stem_pixel": stem_window.width / config.stem.size},
    }


def make_and_store(config: DatasetConfig, index: int, path: str) -> dict[str, Any]:
    """Make item ``index``, write its images into the store at ``path`` from here (the worker), and
    return its conditions for the one process that marks items done."""
    from twin.datasets.store import write_images

    item = make_item(config, index)
    write_images(path, item)
    return {"index": index, "conditions": item["conditions"]}
