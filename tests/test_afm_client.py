"""The Nanosurf-shaped AFM client against a real server."""

from __future__ import annotations

import gwyfile
import numpy as np
import pytest

from twin.cf import nested_attributes


def _scan(spm, width=10e-9, points=64, lines=48, centre=(0.0, 0.0)):
    app = spm.application
    app.Approach.StartApproach()
    assert app.Approach.Status == spm.ApproachStatus.ApproachDone
    assert app.Approach.IsMoving is False
    scan = app.Scan
    scan.ImageSize(width, width)
    scan.Points, scan.Lines = points, lines
    scan.CenterPosX, scan.CenterPosY = centre
    scan.StartFrameUp()
    return scan


def test_a_frame_scans_and_reads_back_as_vendor_strings(spm):
    scan = _scan(spm)
    assert scan.IsScanning is False  # time scale 0: the frame completes at once
    assert scan.Currentline == 48
    text = scan.GetLine(spm.ScanGroupID.Forward, spm.ScanChannel.Topography, 5,
                        spm.DataFilter.RAW, spm.DataConversion.Physical)
    values = np.array([float(v) for v in text.split(";")])
    assert values.shape == (64,)
    frame = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography)
    assert frame.shape == (48, 64) and frame.dims == ("y", "x")
    assert np.allclose(values, frame.values[5], rtol=1e-6, atol=0)
    assert 0 < values.mean() < 5e-10  # the graphene's top surface sits a few Å above its plane


def test_line_filters_and_binary_conversion(spm):
    scan = _scan(spm)
    raw = np.array(scan.GetLine(0, 1, 3, spm.DataFilter.RAW, spm.DataConversion.Physical).split(";"), float)
    mean_fit = np.array(scan.GetLine(0, 1, 3, spm.DataFilter.MeanFit, 1).split(";"), float)
    line_fit = np.array(scan.GetLine(0, 1, 3, spm.DataFilter.LineFit, 1).split(";"), float)
    assert mean_fit == pytest.approx(raw - raw.mean(), abs=1e-15)
    assert abs(line_fit.mean()) < 1e-15 and abs(np.polyfit(np.arange(64), line_fit, 1)[0]) < 1e-16
    binary = np.array(scan.GetLine(0, 1, 3, 0, spm.DataConversion.Binary32).split(";"), float)
    assert binary * 2e-6 / 2**32 == pytest.approx(raw, abs=1e-15)


def test_forward_and_backward_traces_differ_only_by_noise(spm):
    _scan(spm)
    forward = spm.get_frame(spm.ScanGroupID.Forward).values
    backward = spm.get_frame(spm.ScanGroupID.Backward).values
    difference = forward - backward
    assert 0 < difference.std() < 0.5e-10
    assert abs(difference.mean()) < 0.1e-10


def test_frame_coordinates_are_pixel_centres_in_the_sample_frame(spm):
    _scan(spm, width=12e-9, points=96, lines=96, centre=(3e-6, -2e-6))
    frame = spm.get_frame()
    assert float(frame.x[0]) == pytest.approx(3e-6 - 6e-9 + 12e-9 / 192)
    assert float(frame.y[-1]) == pytest.approx(-2e-6 + 6e-9 - 12e-9 / 192)
    assert frame.attrs["twin.window.x_min"] == pytest.approx(3e-6 - 6e-9)


def test_tip_radius_noise_and_feedback_are_twin_settings(spm):
    twin = spm.twin
    twin.tip_radius = 5e-9
    assert twin.tip_radius == 5e-9
    twin.z_noise = 0.0
    twin.ideal_feedback = True
    try:
        _scan(spm)
        ideal = spm.get_frame(0).values
        assert np.array_equal(ideal, spm.get_frame(1).values)  # no noise, no loop: identical traces
        twin.ideal_feedback = False
        _scan(spm)
        forward, backward = spm.get_frame(0).values, spm.get_frame(1).values
        assert 0 < np.abs(forward - backward).max() < 0.3e-10  # a tuned loop lags a little, both ways
        assert spm.get_frame(0).attrs["twin.feedback"] == "pid"
    finally:
        twin.tip_radius, twin.z_noise, twin.ideal_feedback = 2e-9, 20e-12, False


def test_member_names_resolve_case_insensitively_and_typos_raise(spm):
    scan = spm.application.Scan
    scan.rotation = 15.0
    assert scan.Rotation == 15.0 and scan.ROTATION == 15.0
    scan.Rotation = 0.0
    with pytest.raises(AttributeError, match="Scan has no member 'ImageWdth'; members: .*ImageWidth"):
        scan.ImageWdth = 1e-9
    assert spm.application.operatingmode.OperatingMode == spm.OperatingMode.DynamicAFM == 3


def test_stage_moves_only_with_the_tip_withdrawn_and_carries_the_frame(spm):
    app = spm.application
    app.Approach.StartApproach()
    stage = app.Stage
    stage.ClearMoveTransaction()
    stage.AppendToMoveTransaction(0, 2e-6, True)
    stage.AppendToMoveTransaction(1, -1e-6, False)
    with pytest.raises(RuntimeError, match="cannot move the stage while the tip is approached"):
        stage.CommitMoveTransaction()
    app.Approach.WithdrawSteps = 50
    app.Approach.StartWithdraw()
    assert app.Approach.Status == spm.ApproachStatus.Standby and not app.Approach.IsMoving
    try:
        with pytest.raises(ValueError, match=r"value = 0.005 is out of range; allowed -0.001 to 0.001 m"):
            stage.AppendToMoveTransaction(0, 5e-3, False)
        stage.CommitMoveTransaction()  # the refused append left the transaction as it was
        assert (stage.GetAxisPosition(0), stage.GetAxisPosition(1)) == (2e-6, -1e-6)
        assert stage.GetState == spm.StageState.Idle
        scan = app.Scan
        scan.ImageSize(4e-9, 4e-9)
        scan.Points, scan.Lines = 16, 8
        scan.StartFrameDown()  # withdrawn, the controller scans in free air: the z-loop at its limit
        air = spm.get_frame()
        assert air.attrs["twin.simulation"] == "free air"
        assert float(abs(air.values + 1e-6).max()) < 2e-10  # the piezo fully extended (2 µm z range)
        app.Approach.StartApproach()
        scan = _scan(spm, width=4e-9, points=32, lines=16)
        scan.StartFrameDown()
        frame = spm.get_frame()
        assert frame.attrs["twin.window.x_min"] == pytest.approx(2e-6 - 2e-9)
        assert frame.attrs["acquisition.direction"] == "down"
        assert float(frame.y[0]) > float(frame.y[-1])  # line 0 is the top line
    finally:
        app.Approach.StartRetract()
        app.Approach.Stop()
        stage.ClearMoveTransaction()
        stage.AppendToMoveTransaction(0, 0.0, False)
        stage.AppendToMoveTransaction(1, 0.0, False)
        stage.CommitMoveTransaction()
        app.Approach.StartApproach()


def test_captures_are_gwyddion_and_netcdf_files_of_the_frame(spm, server_files):
    import xarray as xr

    app = spm.application
    app.SetGalleryHistoryDirectoryPath("D:\\AFM data\\captures")  # as named on the instrument PC
    assert app.GetGalleryHistoryDirectoryPath() == "D:\\AFM data\\captures"
    app.Scan.AutoCapture = False  # whatever an earlier script left set
    scan = _scan(spm, width=5e-9, points=40, lines=24)
    gwy, nc = map(__import__("pathlib").Path, scan.StartCapture())
    assert gwy.parent == nc.parent == server_files / "AFM data" / "captures"  # kept in the server's folder
    topography = spm.get_frame(0, spm.ScanChannel.Topography)

    container = gwyfile.load(str(gwy))  # Gwyddion's format as a third-party reader sees it
    assert container["/3/data/title"] == "Topography Backward"
    field = container["/2/data"]  # channels in order, forward then backward: 2 is Topography Forward
    assert container["/2/data/title"] == "Topography Forward"
    assert (field["xres"], field["yres"]) == (40, 24)
    assert field["xreal"] == pytest.approx(5e-9) and field["si_unit_z"]["unitstr"] == "m"
    image = field.data[::-1]  # Gwyddion's rows run top-down
    assert np.allclose(image, topography.values, rtol=1e-6, atol=0)

    saved = xr.open_dataset(nc, engine="scipy")
    assert np.allclose(saved["Topography_Forward"].values, topography.values, rtol=1e-6, atol=0)
    assert np.allclose(saved.x.values, topography.x.values)
    saved.close()

    scan.AutoCapture = True
    try:
        scan.StartFrameUp()
        assert len(list(gwy.parent.glob("*.gwy"))) == 2 and len(list(gwy.parent.glob("*.nc"))) == 2
    finally:
        scan.AutoCapture = False


def test_spectroscopy_through_the_client(spm):
    app = spm.application
    app.Approach.StartApproach()
    spec = app.Spec
    spec.ClearPositionList()
    spec.Start()  # an empty list: one curve where the tip is, as the vendor's demos expect
    assert spec.Currentline == 1 and len(spec.GetLine2(0, 0, 0)) == spec.FwdModDataPoints
    spec.FwdModDataPoints = spec.BwdModDataPoints = 128
    spec.AddPosition(1e-9, -2e-9, 0)
    spec.AddPosition(4e-9, 3e-9, 0)
    spec.Start()
    assert spec.IsMeasuring is False  # time scale 0
    deflection = spec.GetLine2(0, 0, 1, spm.DataFilter.RAW, spm.DataConversion.Physical)
    z = spec.GetLine2(0, 1, 1)
    assert len(deflection) == len(z) == 128
    assert z[0] > z[-1] and deflection[-1] > 0 > min(deflection)  # attracted, then pressed
    with pytest.raises(ValueError, match="line = 2 is out of range; allowed 0 to 1"):
        spec.GetLine2(0, 0, 2)


def test_spectroscopy_lines_take_the_vendor_filters_and_conversions(spm):
    app = spm.application
    app.Approach.StartApproach()
    spec = app.Spec
    spec.ClearPositionList()
    spec.FwdModDataPoints = spec.BwdModDataPoints = 64
    spec.AddPosition(0.0, 0.0, 0)
    spec.Start()
    raw = np.array(spec.GetLine2(0, 0, 0, spm.DataFilter.RAW, spm.DataConversion.Physical))
    z = np.array(spec.GetLine2(0, 1, 0))
    line_fit = np.array(spec.GetLine2(0, 0, 0, spm.DataFilter.LineFit, spm.DataConversion.Physical))
    assert line_fit == pytest.approx(raw - np.polyval(np.polyfit(z, raw, 1), z), abs=1e-9)
    binary = spec.GetLine2(0, 0, 0, spm.DataFilter.RAW, spm.DataConversion.Binary16)
    assert all(isinstance(v, int) for v in binary)
    assert np.array(binary) * 20.0 / 2**16 == pytest.approx(raw, abs=20.0 / 2**16)
    with pytest.raises(ValueError, match="filter = 9 is out of range; allowed 0 to 5"):
        spec.GetLine2(0, 0, 0, 9, 1)


def test_continuous_scanning_alternates_up_and_down_until_stopped(spm):
    scan = _scan(spm, lines=16, points=16)
    scan.Start()
    assert scan.IsScanning is True  # time scale 0: the first frame is complete at once ...
    first = nested_attributes(spm.get_frame().attrs)["acquisition"]
    assert scan.Currentline == 16 and scan.IsScanning  # ... and every later look starts the next
    second = nested_attributes(spm.get_frame().attrs)["acquisition"]
    assert (first["direction"], second["direction"]) == ("up", "down")
    assert second["frame_index"] == first["frame_index"] + 1 and second["continuous"] == 1  # a flag: 0 or 1
    assert second["instrument_time"] == pytest.approx(first["instrument_time"] + 16 * scan.Scantime)
    scan.Stop()
    assert scan.IsScanning is False and scan.Currentline == 16
    assert spm.get_frame().attrs["acquisition.frame_index"] == second["frame_index"]
