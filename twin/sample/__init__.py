"""The shared virtual specimen: procedural atoms for any window, and its ground truth.

``Defect``, ``Sample`` and ``Window`` are imported on first use (PEP 562): the command line reads the
sample names from :mod:`twin.sample.catalog` without importing the specimen's atoms (ASE, SciPy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twin.sample.catalog import DEFAULT_SAMPLE, SAMPLES, build_sample

if TYPE_CHECKING:
    from twin.sample.specimen import Defect, Sample, Window

__all__ = ["DEFAULT_SAMPLE", "SAMPLES", "Defect", "Sample", "Window", "build_sample"]
_FROM_SPECIMEN = ("Defect", "Sample", "Window")


def __getattr__(name: str) -> Any:
    """``Defect``, ``Sample`` and ``Window`` from :mod:`twin.sample.specimen`, imported when first asked."""
    if name in _FROM_SPECIMEN:
        from twin.sample import specimen

        return getattr(specimen, name)
    raise AttributeError(f"module 'twin.sample' has no attribute {name!r}")
