"""One twin, many clients: shared state, clear errors that change nothing, arrays as bytes."""

from __future__ import annotations

import numpy as np
import pytest

from clients.afm import SPM
from clients.tem import TemMicroscopeClient
from clients.tem.structures import StagePosition
from twin.server import wire

from .conftest import HOST


def test_two_clients_see_the_same_stage_and_sample(server, microscope):
    other = TemMicroscopeClient()
    other.connect(HOST, server.port)
    try:
        microscope.specimen.stage.absolute_move(StagePosition(x=4e-6, y=5e-6))
        assert other.specimen.stage.position.x == pytest.approx(4e-6)
        other.optics.defocus = -7e-9
        assert microscope.optics.defocus == pytest.approx(-7e-9)
        assert other.twin.info() == microscope.twin.info()
        box = (4e-6 - 50e-9, 5e-6 - 50e-9, 4e-6 + 50e-9, 5e-6 + 50e-9)
        assert other.twin.defects(*box) == microscope.twin.defects(*box)
    finally:
        other.disconnect()


def test_afm_settings_are_shared_between_connections(server, spm):
    other = SPM(HOST, server.port)
    try:
        spm.application.Scan.ImageWidth = 33e-9
        assert other.application.Scan.ImageWidth == pytest.approx(33e-9)
    finally:
        other.close()


def _tem_state(client):
    return (client.specimen.stage.position, client.optics.defocus,
            client.source.acceleration_voltage.value, client.optics.magnification.value)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda m: m.specimen.stage.absolute_move(StagePosition(x=5e-3)), ValueError,
         r"stage x = 0\.005 is out of range; allowed -0\.001 to 0\.001 m"),
        (lambda m: m.specimen.stage.relative_move(StagePosition(y=2e-3)), ValueError,
         r"stage y step = 0\.002 would reach .* allowed -0\.001 to 0\.001 m"),
        (lambda m: m.acquisition.acquire_camera_image("BM-Ceta", 512, -0.1), ValueError,
         r"exposure_time = -0\.1 is out of range; allowed 0\.001 to 100 s"),
        (lambda m: m.acquisition.acquire_camera_image("EF-Falcon", 512, 0.1), ValueError,
         r"camera = 'EF-Falcon' is not allowed; allowed values: 'BM-Ceta'"),
        (lambda m: m.acquisition.acquire_camera_image("BM-Ceta", 500, 0.1), ValueError,
         r"size = 500 is not allowed; allowed values: 4096, 2048"),
        (lambda m: setattr(m.optics, "defocus", "a lot"), TypeError,
         r"optics\.defocus must be a number, got 'a lot' \(str\); allowed -0\.001 to 0\.001 m"),
        (lambda m: setattr(m.optics, "defocus", float("nan")), ValueError,
         r"optics\.defocus = nan is out of range"),
        (lambda m: setattr(m.source, "acceleration_voltage", 30e3), ValueError,
         r"source\.acceleration_voltage = 30000\.0 is out of range; allowed 60000 to 300000 V"),
        (lambda m: setattr(m.optics.magnification, "value", 123.0), ValueError,
         r"optics\.magnification = 123\.0 is not allowed"),
        (lambda m: m.specimen.stage.relative_move([float("inf")]), ValueError,
         r"stage x step = inf is out of range; allowed -0\.002 to 0\.002 m"),
        (lambda m: m.acquisition.acquire_camera_image(np.array([1, 2]), 512, 0.1), ValueError,
         r"camera = \[1, 2\] is not allowed; allowed values: 'BM-Ceta', 'Flucam'"),
        (lambda m: m.specimen.stage.get_axis_limits("q"), ValueError,
         r"axis = 'q' is not allowed; allowed values: 'x', 'y', 'z', 'a', 'b'"),
    ],
)
def test_bad_tem_input_is_refused_clearly_and_changes_nothing(microscope, action, error, message):
    microscope.specimen.stage.absolute_move(StagePosition(x=1e-6, y=2e-6))
    before = _tem_state(microscope)
    with pytest.raises(error, match=message):
        action(microscope)
    assert _tem_state(microscope) == before
    assert microscope.acquisition.acquire_camera_image("BM-Ceta", 64, 0.01).data.shape == (64, 64)


@pytest.mark.parametrize(
    ("action", "error", "message"),
    [
        (lambda s: setattr(s.application.Scan, "Points", 0), ValueError,
         r"Scan\.Points = 0 is out of range; allowed 4 to 2048"),
        (lambda s: setattr(s.application.Scan, "Lines", 12.5), TypeError,
         r"Scan\.Lines must be an integer, got 12\.5"),
        (lambda s: setattr(s.application.Scan, "ImageWidth", 1.0), ValueError,
         r"Scan\.ImageWidth = 1\.0 is out of range"),
        (lambda s: s.application.Scan.GetLine(0, 7, 0, 0, 1), ValueError,
         r"channel = 7 is not allowed; allowed values: 0, 1"),
        (lambda s: s.application.Scan.GetLine(0, 1, 99999, 0, 1), ValueError,
         r"line = 99999 is out of range; allowed 0 to"),
        (lambda s: setattr(s.twin, "tip_radius", -1e-9), ValueError,
         r"twin\.tip_radius = -1e-09 is out of range"),
    ],
)
def test_bad_afm_input_is_refused_clearly_and_changes_nothing(spm, action, error, message):
    app = spm.application
    app.Approach.StartApproach()
    app.Scan.Points = app.Scan.Lines = 32
    app.Scan.StartFrameUp()
    before = (app.Scan.Points, app.Scan.Lines, app.Scan.ImageWidth, spm.twin.tip_radius)
    with pytest.raises(error, match=message):
        action(spm)
    assert (app.Scan.Points, app.Scan.Lines, app.Scan.ImageWidth, spm.twin.tip_radius) == before
    assert app.Scan.GetLine(0, 1, 0, 0, 1).count(";") == 31


def test_a_frame_outside_the_scanner_range_is_refused(spm):
    scan = spm.application.Scan
    scan.CenterPosX, scan.ImageWidth = 49.9e-6, 1e-6
    with pytest.raises(ValueError, match=r"outside the scanner range; allowed -5e-05 to 5e-05 m"):
        scan.StartFrameUp()
    scan.CenterPosX, scan.ImageWidth = 0.0, 20e-9


def test_a_2048_squared_float32_array_round_trips_bit_exactly(server):
    array = np.random.default_rng(1).standard_normal((2048, 2048)).astype(np.float32)
    proxy = wire.connect(f"PYRO:{wire.SAMPLE_OBJECT}@{HOST}:{server.port}")
    try:
        back = proxy.echo(array)
    finally:
        proxy._pyroRelease()
    assert isinstance(back, np.ndarray) and back.dtype == np.float32 and back.shape == array.shape
    assert back.tobytes() == array.tobytes()


def test_ground_truth_windows_are_validated(microscope):
    with pytest.raises(ValueError, match="window area = .* is too large"):
        microscope.twin.atoms(0.0, 0.0, 1e-6, 1e-6)
    with pytest.raises(ValueError, match="is empty"):
        microscope.twin.defects(1e-6, 0.0, 0.0, 1e-6)
    atoms = microscope.twin.atoms(0.0, 0.0, 3e-9, 3e-9)
    assert len(atoms) > 300 and atoms.info["window"]["x_max"] == 3e-9
