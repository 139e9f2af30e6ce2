"""``twin run``: a script written for AutoScript runs unchanged; nothing is installed under its names."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from twin.cli import main

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


def test_a_vendor_script_runs_unchanged_against_the_twin(server, tmp_path, monkeypatch, capsys):
    script = tmp_path / "beamtime.py"
    script.write_text(SCRIPT)
    monkeypatch.chdir(tmp_path)  # in this process: `twin run` runs the script here too (runpy)
    # --reset: the shared twin as it started, whatever the tests before left on it (STEM mode, say)
    assert main(["run", "--port", str(server.port), "--host", "127.0.0.1", "--reset", str(script), "first",
                 "second"]) == 0
    printed = capsys.readouterr().out
    assert "refused: optics.defocus must be a number, got 'far'" in printed
    assert "acquired 256 256 ['first', 'second']" in printed
    assert not any(name.startswith("autoscript") for name in sys.modules)  # mapped for the run only


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


def test_a_nanosurf_script_runs_unchanged_against_the_twin(server, server_files, tmp_path, monkeypatch,
                                                          capsys, no_vendor_modules):
    script = tmp_path / "afm_session.py"
    script.write_text("GALLERY = 'C:/Users/lab/Documents/gallery'\n" + NANOSURF_SCRIPT)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--port", str(server.port), "--host", "127.0.0.1", "--reset", str(script)]) == 0
    assert "lines 32 points 32" in capsys.readouterr().out
    gallery = server_files / "Users" / "lab" / "Documents" / "gallery"  # under the server's own folder
    assert sorted(p.name for p in gallery.iterdir()) == ["Sample-0000.gwy", "Sample-0000.nc"]


@pytest.fixture
def no_vendor_modules():
    """Forget every ``nanosurf`` module before and after (a test may install a stand-in package)."""
    def forget() -> None:
        for name in [n for n in sys.modules if n == "nanosurf" or n.startswith("nanosurf.")]:
            del sys.modules[name]

    forget()
    yield
    forget()


def test_without_the_vendor_package_the_twin_provides_the_demos_helpers(no_vendor_modules) -> None:
    from twin.script_runner import installed, vendor_modules

    assert installed("nanosurf") is None  # the test environment has no vendor package
    with vendor_modules():
        import nanosurf
        from nanosurf.datatypes.sci_stream import SciStream

        assert nanosurf.sci_val.convert.to_string(1.234e-6, "m") == "1.23 µm"
        assert nanosurf.sci_val.from_str("0.1mm").value() == pytest.approx(1e-4)
        stream = SciStream(([0.0, 1.0, 2.0], [5.0, 6.0, 7.0]), x_unit="Hz", x_name="Frequency")
        assert stream.get_stream_unit() == "Hz" and list(stream.get_channel(0).value) == [5.0, 6.0, 7.0]
        assert len(nanosurf.SciChannel([1, 2], unit="V")) == 2
    assert "nanosurf" not in sys.modules


def test_an_installed_vendor_package_keeps_its_helpers_and_loses_only_its_connection(
        no_vendor_modules, tmp_path, monkeypatch) -> None:
    """A stand-in for the vendor's package (its real connection needs Windows): its own helpers stay,
    ``SPM`` and ``nanosurf.com_proxy`` are the twin's for the run, and everything is as before after."""
    package = tmp_path / "nanosurf"
    package.mkdir()
    (package / "__init__.py").write_text("marker = 'vendor'\ndef helper():\n    return 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from clients.afm import SPM
    from twin.script_runner import vendor_modules

    with vendor_modules():
        import nanosurf
        from nanosurf.com_proxy import SPM as proxied

        assert nanosurf.marker == "vendor" and nanosurf.helper() == 42
        assert nanosurf.SPM is SPM and proxied is SPM
    assert not hasattr(sys.modules["nanosurf"], "SPM") and "nanosurf.com_proxy" not in sys.modules
