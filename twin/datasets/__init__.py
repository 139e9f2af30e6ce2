"""Paired TEM + AFM datasets with ground truth, generated on Dask distributed into Zarr."""

from twin.datasets.config import DatasetConfig, load_config
from twin.datasets.generate import generate

__all__ = ["DatasetConfig", "generate", "load_config"]
