"""``twin run``: a script written for AutoScript runs unchanged; nothing is installed under its names."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent('''
    # written for the instrument: vendor imports only, the lab's address
    import sys
    from autoscript_tem_microscope_client import TemMicroscopeClient
    from autoscript_tem_microscope_client.enumerations import *
    from autoscript_tem_microscope_client.structures import *
    from autoscript_core.common import ApplicationServerException

    microscope = TemMicroscopeClient()
    microscope.connect("10.46.217.241", 9095)
    microscope.vacuum.column_valves.open()
    assert microscope.optics.optical_mode == OpticalMode.TEM
    microscope.specimen.stage.relative_move(StagePosition(x=5e-9))
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, ImageSize.PRESET_256, 0.1)
    try:
        microscope.optics.defocus = "far"
    except ApplicationServerException as refused:
        print("refused:", refused)
    print("acquired", image.width, image.height, sys.argv[1:])
''')


def test_a_vendor_script_runs_unchanged_against_the_twin(server, tmp_path):
    script = tmp_path / "beamtime.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, "-m", "twin", "run", "--port", str(server.port),
                             "--host", "127.0.0.1", str(script), "first", "second"],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "refused: optics.defocus must be a number, got 'far'" in result.stdout
    assert "acquired 256 256 ['first', 'second']" in result.stdout


def test_outside_twin_run_the_vendor_names_do_not_exist(tmp_path):
    script = tmp_path / "beamtime.py"
    script.write_text(SCRIPT)
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode != 0
    assert "No module named 'autoscript_tem_microscope_client'" in result.stderr


NANOSURF_SCRIPT = textwrap.dedent('''
    # written for a Nanosurf controller (classic scripting interface, nanosurf 1.x)
    import nanosurf

    spm = nanosurf.SPM()
    assert spm.is_connected() and spm.is_scripting_enabled()
    app = spm.application
    app.SetGalleryHistoryDirectoryPath(GALLERY)
    app.SetGalleryHistoryFilenameMask("Sample-")
    app.ScanHead.CantileverByGUID = spm.CantileverGUID.Dyn190Al
    app.OperatingMode.OperatingMode = spm.OperatingMode.DynamicAFM
    app.OperatingMode.VibratingAmpl = 0.5
    app.ZController.SetPoint = 70
    app.ZController.PGain = 3100
    app.ZController.IGain = 3500
    app.Approach.StartApproach()
    while app.Approach.IsMoving:
        pass
    assert app.Approach.Status == spm.ApproachStatus.ApproachDone
    scan = app.Scan
    if scan.IsScanning:
        scan.Stop()
    scan.ImageWidth = scan.ImageHeight = 5e-9
    scan.Points = scan.Lines = 32
    scan.Scantime = 0.55
    scan.CenterPosX = scan.CenterPosY = 0
    scan.SlopeX = scan.SlopeY = 0
    scan.Overscan = 5
    scan.AutoCapture = True
    scan.StartFrameUp()
    rows, line = [], 0
    while line < scan.Lines:
        while line > scan.Currentline - 1 and scan.IsScanning:
            pass
        text = scan.GetLine(0, 1, line, spm.DataFilter.LineFit, spm.DataConversion.Physical)
        rows.append([float(v) for v in text.replace(",", ".").split(";")])
        line += 1
    app.Approach.WithdrawSteps = 300
    app.Approach.StartWithdraw()
    print("lines", len(rows), "points", len(rows[0]))
''')


def test_a_nanosurf_script_runs_unchanged_against_the_twin(server, server_files, tmp_path):
    script = tmp_path / "afm_session.py"
    script.write_text("GALLERY = 'C:/Users/lab/Documents/gallery'\n" + NANOSURF_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "twin", "run", "--port", str(server.port),
                             "--host", "127.0.0.1", str(script)],
                            capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "lines 32 points 32" in result.stdout
    gallery = server_files / "Users" / "lab" / "Documents" / "gallery"  # under the server's own folder
    assert sorted(p.name for p in gallery.iterdir()) == ["Sample-0000.gwy", "Sample-0000.nc"]
