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
