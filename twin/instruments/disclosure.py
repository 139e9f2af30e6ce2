"""What an image's metadata may tell a client when the ground truth is off (a challenge): what the
instrument itself knows, nothing of the simulation's hidden state."""

from __future__ import annotations

from typing import Any

#: what image metadata's "twin" record keeps when the ground truth is off (no aberrations, seed, tip,
#: frame or stage error: a challenge hides them)
OPEN_IMAGE_RECORD = frozenset({"pixel_origin", "row_axis", "sample", "simulation", "instrument_time",
                               "window", "pixel_size", "scan_rotation", "scan_centre", "stem_mode",
                               "tem_engine",
                               "tip_speed",
                               "beam_reaches_camera", "beam_reaches_detector"})


def public_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """``metadata`` as the instrument would record it: the window where the stage believes it is, the
    open part of the twin's record, no tip."""
    metadata = dict(metadata)
    record = metadata.get("twin", {})
    dx, dy = record.get("specimen_offset", (0.0, 0.0))
    shown = {k: v for k, v in record.items() if k in OPEN_IMAGE_RECORD}
    if "window" in shown:
        w = shown["window"]
        shown["window"] = {"x_min": w["x_min"] - dx, "y_min": w["y_min"] - dy,
                           "x_max": w["x_max"] - dx, "y_max": w["y_max"] - dy}
    if "scan_centre" in shown:
        shown["scan_centre"] = {"x": shown["scan_centre"]["x"] - dx, "y": shown["scan_centre"]["y"] - dy}
    metadata["twin"] = shown
    metadata.pop("tip", None)
    return metadata
