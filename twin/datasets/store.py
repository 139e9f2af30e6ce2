"""The dataset on disk: one Zarr store read as an ``xarray.Dataset``, an item per index along ``item``.

Images are chunked one item per chunk, so any item can be written alone; ``done`` marks the items
written completely (it is set last), which is what a resumed run skips. The config and its
fingerprint are in the attributes, so a store is only ever resumed with the config that began it.

The store follows the CF conventions (1.10): every variable has ``long_name`` and udunits ``units``;
each image grid has auxiliary coordinates ``<grid>_x_coord`` (item, <grid>_x) and ``<grid>_y_coord``
(item, <grid>_y), the pixel centres in the sample frame (m, ``axis`` X / Y), so readers find where a
pixel lies without rebuilding it from ``<grid>_x_min`` and ``<grid>_pixel`` (still there). Label
masks carry ``flag_values`` (of the mask's own type) and ``flag_meanings``. Zarr attributes are JSON,
which has no integer types: :func:`open_dataset` gives ``flag_values`` back the mask's type (plain
``xr.open_zarr`` reads them as Python ints), and :func:`to_netcdf` writes the CF-clean NetCDF-4 copy.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import dask.array as da
import numpy as np
import xarray as xr
import yaml
import zarr

from twin.datasets.config import DatasetConfig

CONDITIONS = {  # per-item imaging conditions and where each image lies (SI)
    "sample_seed": ("int64", "1", "seed of the item's specimen"),
    "centre_x": ("float64", "m", "drawn centre of the item (sample frame)"),
    "centre_y": ("float64", "m", "drawn centre of the item (sample frame)"),
    "magnification": ("float64", "1", "TEM nominal magnification"),
    "high_tension": ("float64", "V", "TEM high tension"),
    "focus": ("float64", "m", "TEM objective focus (C10)"),
    "exposure": ("float64", "s", "TEM exposure time"),
    "dose": ("float64", "m-2", "TEM electron dose per area"),
    "tip_radius": ("float64", "m", "AFM tip apex radius"),
    "second_apex_x": ("float64", "m", "AFM second apex offset (0 for a single tip)"),
    "second_apex_y": ("float64", "m", "AFM second apex offset"),
    "second_apex_height": ("float64", "m", "how far the second apex sits above the first"),
    "z_noise": ("float64", "m", "AFM height noise RMS"),
    "tem_x_min": ("float64", "m", "left edge of the TEM image (pixel centres at x_min + (c + 1/2) pixel)"),
    "tem_y_min": ("float64", "m", "bottom edge of the TEM image (rows run along +y)"),
    "tem_pixel": ("float64", "m", "TEM pixel size"),
    "tem_counts_per_electron": ("float64", "", "TEM camera gain: electrons = (counts - offset) / gain"),
    "tem_offset": ("float64", "", "TEM camera dark level (counts of a pixel no electron reached)"),
    "afm_x_min": ("float64", "m", "left edge of the AFM frame"),
    "afm_y_min": ("float64", "m", "bottom edge of the AFM frame"),
    "afm_pixel": ("float64", "m", "AFM pixel size"),
}
STEM_CONDITIONS = {
    "dwell_time": ("float64", "s", "STEM dwell time per pixel"),
    "stem_x_min": ("float64", "m", "left edge of the STEM image"),
    "stem_y_min": ("float64", "m", "bottom edge of the STEM image"),
    "stem_pixel": ("float64", "m", "STEM pixel size"),
}
_CONDITION_CHUNK = 4096


def conditions(config: DatasetConfig) -> dict[str, tuple[str, str, str]]:
    """Per-item numbers: name -> (dtype, unit, description)."""
    return {**CONDITIONS, **(STEM_CONDITIONS if config.stem.size else {})}


def images(config: DatasetConfig) -> dict[str, tuple[tuple[str, str], str, str, str]]:
    """Per-item images: name -> (dims, dtype, unit, description)."""
    tem, afm, stem = ("tem_y", "tem_x"), ("afm_y", "afm_x"), ("stem_y", "stem_x")
    scanned = {
        "stem_image": (stem, "uint16", "1", f"STEM {config.stem.detector} image (detector counts)"),
        "stem_classes": (stem, "uint8", "1", "class of each STEM pixel"),
        "stem_instances": (stem, "int32", "1", "defect instance of each STEM pixel, 0 for none"),
    } if config.stem.size else {}
    return {
        **scanned,
        "tem_image": (tem, "uint16", "1", "HRTEM camera image (detector counts)"),
        "tem_classes": (tem, "uint8", "1", "class of each TEM pixel (see flag_meanings)"),
        "tem_instances": (tem, "int32", "1", "defect instance of each TEM pixel, 0 for none"),
        "afm_topography": (afm, "float32", "m", "AFM topography, forward trace"),
        "afm_phase": (afm, "float32", "degree", "AFM phase, forward trace"),
        "afm_error": (afm, "float32", "percent", "AFM controller input (amplitude), forward trace"),
        "afm_height": (afm, "float32", "m", "true van der Waals surface on the AFM grid"),
        "afm_classes": (afm, "uint8", "1", "class of each AFM pixel"),
        "afm_instances": (afm, "int32", "1", "defect instance of each AFM pixel, 0 for none"),
    }


def grids(config: DatasetConfig) -> dict[str, int]:
    """The image grids of the items: name (``tem``, ``afm``, ``stem``) -> pixels along each side."""
    return {"tem": config.tem.size, "afm": config.afm.size, **({"stem": config.stem.size}
                                                               if config.stem.size else {})}


def open_store(path: str | Path, config: DatasetConfig) -> zarr.Group:
    """The store at ``path``: created empty for ``config``, or opened to resume the same config."""
    path = Path(path)
    if path.exists():
        group = zarr.open_group(str(path), mode="r+")
        if group.attrs.get("fingerprint") != config.fingerprint():
            raise ValueError(f"{str(path)!r} holds a dataset of another config (fingerprint "
                             f"{group.attrs.get('fingerprint')!r}, this one {config.fingerprint()!r}); "
                             "give another output path or delete it")
        return group
    # Zarr format 2 with consolidated metadata: what most readers (xarray, zarr 2 and 3, Julia, ...) open
    template = _template(config)
    no_fill = {name: {"_FillValue": None} for name in template.coords}  # CF: coordinates have no gaps
    template.to_zarr(str(path), compute=False, mode="w-", zarr_format=2, consolidated=True, encoding=no_fill)
    group = zarr.open_group(str(path), mode="r+")
    for name in images(config):
        if name.endswith("_classes"):  # netCDF-C (nczarr) reads the attribute with the mask's type
            group[name].attrs["_nczarr_attr"] = {"types": {"flag_values": np.dtype(_FLAG_TYPE).str}}
    zarr.consolidate_metadata(str(path))
    return zarr.open_group(str(path), mode="r+")


_FLAG_TYPE = "uint8"  # the label masks' type, which their flag_values share


def _template(config: DatasetConfig) -> xr.Dataset:
    from twin.sample.truth import CLASSES

    n = config.items
    variables: dict[str, Any] = {}
    coords: dict[str, Any] = {"item": ("item", np.arange(n), {"long_name": "item index", "units": "1"})}
    for grid, size in grids(config).items():
        chunk = (max(1, min(n, 2**18 // size)), size)  # a few MB of float64 per chunk
        for axis in ("x", "y"):
            coords[f"{grid}_{axis}_coord"] = (
                ("item", f"{grid}_{axis}"), da.zeros((n, size), dtype="float64", chunks=chunk), {
                    "standard_name": f"projection_{axis}_coordinate", "axis": axis.upper(), "units": "m",
                    "long_name": f"{axis} of the {grid.upper()} pixel centres (sample frame)"})
    for name, (dims, dtype, unit, description) in images(config).items():
        shape = (n, grids(config)[dims[0][:-2]], grids(config)[dims[1][:-2]])
        attrs = {"units": unit, "long_name": description}
        if name.endswith("_classes"):
            assert dtype == _FLAG_TYPE
            attrs |= {"flag_values": np.array(list(CLASSES.values()), dtype=dtype),
                      "flag_meanings": " ".join(CLASSES)}
        variables[name] = (("item", *dims), da.zeros(shape, dtype=dtype, chunks=(1, *shape[1:])), attrs)
    chunk = min(n, _CONDITION_CHUNK)
    for name, (dtype, unit, description) in conditions(config).items():
        variables[name] = (("item",), da.zeros(n, dtype=dtype, chunks=chunk),
                           {"units": unit, "long_name": description})
    # int8 on disk (netCDF-C reads no Zarr booleans), which xarray reads as bool (the "dtype" attribute)
    variables["done"] = (("item",), da.zeros(n, dtype="int8", chunks=chunk),
                         {"long_name": "the item is written completely", "units": "1", "dtype": "bool"})
    return xr.Dataset(variables, coords=coords, attrs={
        "Conventions": "CF-1.10",
        "title": f"paired TEM + AFM items of {config.sample.name}",
        "source": "microscope-twin digital twin",
        "history": "made by twin generate",
        "fingerprint": config.fingerprint(),
        "config": yaml.safe_dump({**_plain(config), "sample": config.sample.to_dict()}, sort_keys=False),
        "comment": "SI units, sample frame; <grid>_x_coord and <grid>_y_coord are the pixel centres: "
                   "pixel (r, c) at x_min + (c + 1/2) pixel, y_min + (r + 1/2) pixel (rows run along +y)",
    })


def open_dataset(path: str | Path) -> xr.Dataset:
    """The dataset at ``path`` (the Zarr store, or its NetCDF copy), lazily, with ``flag_values`` of
    their variable's type (Zarr keeps attributes as JSON, which has plain numbers only)."""
    path = Path(path)
    data = xr.open_zarr(str(path)) if path.is_dir() else xr.open_dataset(path, engine="h5netcdf", chunks={})
    for variable in data.variables.values():
        if "flag_values" in variable.attrs:
            variable.attrs["flag_values"] = np.asarray(variable.attrs["flag_values"], dtype=variable.dtype)
    return data


def to_netcdf(path: str | Path, out: str | Path, progress: TextIO | None = None) -> None:
    """A NetCDF-4 copy at ``out`` of the Zarr store at ``path``, as CF-compliant as the store; a large
    one takes a while: ``progress``, a terminal, shows Dask's bar of the copy."""
    from dask.diagnostics import ProgressBar

    data = open_dataset(path)
    encoding = {name: {"_FillValue": None} for name in data.coords}
    for variable in data.variables.values():
        variable.encoding.pop("chunks", None)  # Zarr chunks of a single item; h5netcdf picks its own
        variable.encoding.pop("preferred_chunks", None)
    with ProgressBar(minimum=2.0, out=progress) if progress is not None else contextlib.nullcontext():
        data.to_netcdf(out, engine="h5netcdf", encoding=encoding)


def _plain(config: DatasetConfig) -> dict[str, Any]:
    """The config but its sample as plain lists and numbers (YAML-safe)."""
    return {name: _lists(value) for name, value in asdict(config).items() if name != "sample"}


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value


def done(group: zarr.Group) -> np.ndarray:
    """Which items are written completely."""
    return np.asarray(group["done"][:], dtype=bool)


def write_images(path: str | Path, item: dict[str, Any]) -> None:
    """Write one item's images (its own chunks: any process may do this for its items)."""
    group = zarr.open_group(str(path), mode="r+")
    for name, array in item["arrays"].items():
        group[name][item["index"]] = array


def write_conditions(group: zarr.Group, finished: list[dict[str, Any]]) -> None:
    """Write the conditions of ``finished`` items (``{"index", "conditions"}``) and mark them done; the
    chunks are shared by many items, so one process does this, a batch at a time."""
    if not finished:
        return
    indices = np.array([item["index"] for item in finished])
    order = np.argsort(indices)
    indices = indices[order]
    for name in finished[0]["conditions"]:
        if name not in group:
            continue
        values = np.array([finished[k]["conditions"][name] for k in order])
        _scatter(group[name], indices, values)
    for name in group.array_keys():  # the pixel centres of each grid, from its corner and pixel size
        grid, _, axis = name.removesuffix("_coord").rpartition("_")
        if not name.endswith("_coord") or f"{grid}_pixel" not in finished[0]["conditions"]:
            continue
        corner, pixel = (np.array([finished[k]["conditions"][key] for k in order])
                         for key in (f"{grid}_{axis}_min", f"{grid}_pixel"))
        centres = corner[:, None] + (np.arange(group[name].shape[1]) + 0.5) * pixel[:, None]
        _scatter(group[name], indices, centres)
    _scatter(group["done"], indices, np.ones(len(indices), dtype=bool))


def _scatter(array: zarr.Array, indices: np.ndarray, values: np.ndarray) -> None:
    """``array[indices] = values`` as a few contiguous slice writes (indices sorted)."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    for run_indices, run_values in zip(np.split(indices, breaks), np.split(values, breaks), strict=True):
        array[int(run_indices[0]):int(run_indices[-1]) + 1] = run_values
