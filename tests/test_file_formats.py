"""Every file the twin writes, opened with the reader people use: north up, with units and pixel size.

Orientation is checked with a feature at a known corner: the AFM scans a flake corner whose flake fills
the image's lower-left part (y below its top edge, x left of a slanted edge), and a TEM image carries a
marker in its array's first element (row 0 = the lowest y, column 0 = the lowest x: the lower-left corner).
"""

from __future__ import annotations

import gwyfile
import numpy as np
import pytest
import tifffile
import xarray as xr

from clients.tem.structures import AdornedImage
from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.instruments.tem import TemInstrument
from twin.sample import build_sample

NM = 1e-9


@pytest.fixture(scope="module")
def tem_image() -> AdornedImage:
    tem = TemInstrument(build_sample("graphene", 0), Clock(0.0), seed=0)
    frame = tem.acquire_camera_image("BM-Ceta", 64, 0.01)
    return AdornedImage(frame["data"], frame["metadata"])


def _marked(image: AdornedImage) -> AdornedImage:
    data = image.data.copy()
    data[0, 0] = 60000  # lower-left corner of the field of view
    return AdornedImage(data, image.metadata)


def test_a_tem_tiff_opens_north_up_and_calibrated_in_tifffile_and_rosettasciio(tem_image, tmp_path):
    import rsciio.tiff

    image = _marked(tem_image)
    path = image.save(tmp_path / "ceta")
    pixel = image.metadata.binary_result.pixel_size.x  # m
    with tifffile.TiffFile(path) as tiff:
        shown = tiff.pages[0].asarray()
        assert tiff.is_imagej and tiff.imagej_metadata["unit"] == "micron"
        x_resolution = tiff.pages[0].tags["XResolution"].value
    assert shown[-1, 0] == 60000 and shown[0, 0] != 60000  # the marker at the lower left, as shown
    assert x_resolution[1] / x_resolution[0] * 1e-6 == pytest.approx(pixel, rel=1e-6)  # µm per pixel
    read = rsciio.tiff.file_reader(str(path))[0]
    assert read["data"][-1, 0] == 60000
    for axis in read["axes"]:
        assert axis["units"] == "µm" and axis["scale"] == pytest.approx(pixel * 1e6, rel=1e-6)
    back = AdornedImage.load(path)  # the twin's own reader: rows along +y again, metadata unchanged
    assert np.array_equal(back.data, image.data)
    assert back.metadata.to_dict() == image.metadata.to_dict()


def test_a_tem_image_as_xarray_saves_to_netcdf_and_zarr_as_it_is(tem_image, tmp_path):
    array = _marked(tem_image).to_xarray()
    array.to_netcdf(tmp_path / "image.nc")
    array.to_dataset().to_zarr(tmp_path / "image.zarr")
    for opened in (xr.open_dataarray(tmp_path / "image.nc"), xr.open_zarr(tmp_path / "image.zarr")["counts"]):
        assert opened.attrs["optics.acceleration_voltage"] == pytest.approx(80e3)
        assert opened.attrs["units"] == "count"
        assert (opened.x.attrs["axis"], opened.y.attrs["axis"], opened.x.attrs["units"]) == ("X", "Y", "m")
        corner = opened.sel(x=opened.x.min(), y=opened.y.min())  # the lowest x and y: the marker
        assert int(corner) == 60000
        opened.close()


@pytest.fixture(scope="module")
def flake_corner(tmp_path_factory):
    """A partial AFM capture (16 of 32 lines) over a corner of graphene-features' large flake: the flake
    lies below y = 1.732 µm and left of the edge running down to (2 µm, 0)."""
    afm = AfmInstrument(build_sample("graphene-features", 0), Clock(0.0), seed=0)
    afm.files_root = tmp_path_factory.mktemp("files")
    corner = afm.sample.layers[0].flakes[0].outline()[1]  # (1 µm, 1.732 µm)
    afm.set("twin.piezo_creep", 0.0)  # the scanner has settled after its 2 µm offset ...
    afm.set("twin.drift_velocity", [0.0, 0.0])  # ... and nothing drifts: the frame is where it says
    for name, value in (("Scan.ImageWidth", 40 * NM), ("Scan.ImageHeight", 40 * NM), ("Scan.Points", 32),
                        ("Scan.Lines", 32), ("Scan.CenterPosX", corner[0]), ("Scan.CenterPosY", corner[1])):
        afm.set(name, value)
    afm.start_approach()
    afm.start_frame_up()
    full = afm.get_frame(0, 1)
    frame = afm._frame
    gwy, nc = afm._save(frame, 16)  # a capture mid-frame: the first 16 lines (y from the bottom)
    return full, gwy, nc


def test_an_afm_capture_opens_north_up_with_its_mask_in_gwyddions_reader(flake_corner):
    full, gwy, _ = flake_corner
    container = gwyfile.load(gwy)
    titles = {key: value for key, value in container.items() if key.endswith("/data/title")}
    index = next(k.split("/")[1] for k, v in titles.items() if v == "Topography Forward")
    field = container[f"/{index}/data"]
    assert (field["xres"], field["yres"]) == (32, 32)
    assert field["xreal"] == pytest.approx(40 * NM) and field["si_unit_xy"]["unitstr"] == "m"
    shown = field.data  # gwyfile gives rows as Gwyddion shows them: the top first
    mask = container[f"/{index}/mask"].data
    assert mask[:16].all() and not mask[16:].any()  # the unscanned upper half is masked
    bottom_left, bottom_right = shown[-4:, :4].mean(), shown[-4:, -4:].mean()
    assert bottom_left - bottom_right > 2e-10  # the flake at the lower left stands above the support
    assert np.allclose(shown[16:], full["data"][:16][::-1], rtol=1e-6, atol=0)


def test_an_afm_capture_is_cf_netcdf_with_nan_for_lines_not_scanned(flake_corner):
    full, _, nc = flake_corner
    with xr.open_dataset(nc) as saved:
        topography = saved["Topography_Forward"]
        assert saved.attrs["Conventions"] == "CF-1.10"
        assert topography.attrs["long_name"] == "Topography Forward" and topography.attrs["units"] == "m"
        assert (saved.x.attrs["axis"], saved.y.attrs["axis"]) == ("X", "Y")
        assert np.isnan(topography.values[16:]).all()
        assert np.allclose(topography.values[:16], full["data"][:16], rtol=1e-6, atol=0)
        low = topography.sel(x=topography.x[:4], y=topography.y[:4]).mean()  # lowest x, lowest y
        assert float(low) - float(topography.sel(x=topography.x[-4:], y=topography.y[:4]).mean()) > 2e-10
        assert all(" " not in name for name in saved.data_vars)
    from scipy.io import netcdf_file

    with netcdf_file(nc, mmap=False) as raw:  # a reader of the file as written, not through xarray
        assert all("_FillValue" not in raw.variables[axis]._attributes for axis in ("x", "y"))
        assert np.isnan(raw.variables["Topography_Forward"]._attributes["_FillValue"])
