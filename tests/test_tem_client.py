"""The AutoScript-shaped TEM client against a real server."""

from __future__ import annotations

import threading
from datetime import datetime

import numpy as np
import pytest

from clients.tem import TemMicroscopeClient
from clients.tem.enumerations import CameraType, ImageSize
from clients.tem.structures import AdornedImage, Limits, StagePosition


def test_connect_without_arguments_fails_clearly_when_no_server_listens_there():
    client = TemMicroscopeClient()
    with pytest.raises(ConnectionError, match="127.0.0.1:1.*twin serve"):
        client.connect("127.0.0.1", 1)


def test_stage_moves_accept_positions_lists_and_tuples(microscope):
    stage = microscope.specimen.stage
    stage.absolute_move(StagePosition(x=2e-6, y=-3e-6, z=0.0))
    assert stage.position == StagePosition(x=2e-6, y=-3e-6, z=0.0, a=0.0, b=0.0)
    stage.relative_move([1e-7, None])
    stage.relative_move((None, 2e-7))
    position = stage.position
    assert (position.x, position.y) == pytest.approx((2.1e-6, -2.8e-6))
    assert position[0] == position.x and len(np.array(position)) == 5
    assert stage.get_axis_limits("x") == Limits(-1e-3, 1e-3)
    assert stage.get_holder_type() == "DoubleTilt"
    assert stage.is_moving is False


def test_optics_and_source_read_back_in_si_units(microscope):
    microscope.optics.defocus = -12e-9
    assert microscope.optics.defocus == pytest.approx(-12e-9)
    voltage = microscope.source.acceleration_voltage
    assert voltage.value == 80e3
    assert voltage.limits == Limits(60e3, 300e3)
    microscope.source.acceleration_voltage = 200e3
    assert microscope.source.acceleration_voltage.value == 200e3
    microscope.source.acceleration_voltage.value = 80e3
    assert float(microscope.source.acceleration_voltage) == 80e3


def test_camera_image_is_an_adorned_image_with_metadata(microscope):
    microscope.specimen.stage.absolute_move(StagePosition(x=1e-6, y=1e-6))
    microscope.optics.defocus = -2.4e-9
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, ImageSize.PRESET_512, 0.2)
    assert isinstance(image, AdornedImage)
    assert (image.width, image.height, image.data.shape) == (512, 512, (512, 512))
    assert image.data.dtype == np.uint16
    meta = image.metadata
    fov = microscope.optics.field_of_view
    assert meta.binary_result.pixel_size.x == pytest.approx(fov / 512)
    assert meta.stage_settings.stage_position.x == pytest.approx(1e-6)
    assert meta.optics.defocus == pytest.approx(-2.4e-9)
    assert meta.optics.acceleration_voltage == 80e3
    assert meta.acquisition.exposure_time == 0.2
    started = datetime.fromisoformat(meta.acquisition.acquisition_start_date_time)
    assert datetime.fromisoformat(meta.acquisition.acquisition_date_time) >= started
    assert image.bit_depth == 16
    assert image.data.mean() > 0

    frame = image.to_xarray()  # coordinates of where the specimen really was (stage error, drift)
    assert frame.dims == ("y", "x")
    window = meta.twin.window
    assert float(frame.x[0]) == pytest.approx(window.x_min + fov / 1024)
    assert abs((window.x_min + window.x_max) / 2 - 1e-6) < 200e-9  # within the stage's error


def test_magnification_sets_the_field_of_view(microscope):
    magnification = microscope.optics.magnification
    table = magnification.available_values
    assert [m.nominal for m in table] == sorted(m.nominal for m in table)
    pixel_sizes = []
    for entry in (table[-1], table[-3]):
        magnification.value = entry
        assert magnification.value == entry
        image = microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 0.1)
        pixel_sizes.append(image.metadata.binary_result.pixel_size.x)
    assert pixel_sizes[1] / pixel_sizes[0] == pytest.approx(table[-1].nominal / table[-3].nominal)
    magnification.value = 2_550_000.0  # plain numbers from the table are accepted too


def test_camera_detectors_list(microscope):
    assert microscope.detectors.camera_detectors == ["BM-Ceta", "Flucam", "BM-Falcon"]


def test_stage_accepts_numpy_positions(microscope):
    microscope.specimen.stage.absolute_move(np.array([3e-6, -1e-6]))
    assert np.array(microscope.specimen.stage.position)[:2].tolist() == pytest.approx([3e-6, -1e-6])


def test_a_client_can_be_handed_to_another_thread(microscope, spm):
    results = []

    def work() -> None:
        microscope.optics.defocus = -3e-9
        results.append(microscope.optics.defocus)
        results.append(spm.application.Scan.Points)
        results.append(len(microscope.twin.defects(0.0, 0.0, 20e-9, 20e-9)) >= 0)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert results == [pytest.approx(-3e-9), spm.application.Scan.Points, True]


def test_adorned_images_save_as_tiff_with_their_metadata(microscope, tmp_path):
    image = microscope.acquisition.acquire_camera_image("BM-Ceta", 128, 0.05)
    path = image.save(tmp_path / "frame")
    assert path.suffix == ".tiff" and path.exists()
    back = AdornedImage.load(path)
    assert np.array_equal(back.data, image.data)
    assert back.metadata.to_dict() == image.metadata.to_dict()
