"""What every image's metadata says about the twin that made it, the same for the TEM and the AFM."""

from __future__ import annotations

from typing import Any

from twin.sample.frames import FramedSample


def provenance(sample: FramedSample, seed: int) -> dict[str, Any]:
    """The ``twin`` record's common part: pixel convention, the sample and its version, the seed, and
    the instrument's frame (or "hidden")."""
    return {
        "pixel_origin": "centre",
        "row_axis": "y",
        "sample": sample.name,
        "sample_version": sample.version,
        "seed": seed,
        "frame": sample.frame_record,
    }
