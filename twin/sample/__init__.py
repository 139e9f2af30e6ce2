"""The shared virtual specimen: procedural atoms for any window, and its ground truth."""

from twin.sample.catalog import DEFAULT_SAMPLE, SAMPLES, build_sample
from twin.sample.specimen import Defect, Sample, Window

__all__ = ["DEFAULT_SAMPLE", "SAMPLES", "Defect", "Sample", "Window", "build_sample"]
