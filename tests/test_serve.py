"""``twin serve`` as a user starts it: banner, snapshot, instrument time, clean stop on signals."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from clients.afm import SPM
from clients.tem import TemMicroscopeClient
from twin.cli import main
from twin.server.launcher import ServerProcess

from .conftest import HOST


@pytest.mark.slow
def test_serve_prints_uris_and_snippet_saves_a_first_look_and_stops_on_sigterm(tmp_path):
    snapshot = tmp_path / "first-look.png"
    server = ServerProcess.start("--snapshot", str(snapshot), "--port", "0")  # any free port
    try:
        output = "\n".join(server.lines)
        for name in ("twin.tem", "twin.afm", "twin.sample"):
            assert f"PYRO:{name}@{HOST}:{server.port}" in output
        assert f'microscope.connect("{HOST}", {server.port})' in output
        assert f'SPM("{HOST}", {server.port})' in output
        line = server.wait_for("first look", 120.0)
        assert "saved" in line, line
        # how many of the defects in view stand out of each image's noise (the others are drawn dashed)
        found = re.search(r"(\d+) defects in view .*above the noise \(contrast >= 3 x noise\) (\d+) in the "
                          r"TEM image and (\d+) in the AFM frame", line)
        assert found, line
        assert int(found[2]) <= int(found[1]) and int(found[3]) <= int(found[1])
        assert snapshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0
    assert server.lines[-1] == "stopped"


@pytest.mark.slow
def test_time_scale_one_runs_at_the_instruments_pace():
    server = ServerProcess.start("--time-scale", "1")
    spm = SPM(HOST, server.port)
    try:
        app = spm.application
        app.Approach.ApproachSpeed = 100.0  # % (50 %, the default, takes 3 s): 1.5 s
        app.Approach.StartApproach()
        assert app.Approach.Status == spm.ApproachStatus.Approaching and app.Approach.IsMoving
        while app.Approach.IsMoving:
            time.sleep(0.05)
        assert app.Approach.Status == spm.ApproachStatus.ApproachDone

        scan = app.Scan
        scan.Points, scan.Lines, scan.Scantime = 32, 20, 0.1
        scan.StartFrameUp()  # computes the frame, then starts the scanner's clock
        started = time.monotonic()
        assert scan.IsScanning and scan.Currentline < 20
        with pytest.raises(ValueError, match="has not been scanned yet"):
            scan.GetLine(0, 1, 19, 0, 1)
        seen = []
        while scan.IsScanning:
            seen.append(scan.Currentline)
            time.sleep(0.01)
        assert time.monotonic() - started >= 0.95 * 20 * 0.1  # never sooner than the scanner's 20 lines
        assert seen == sorted(seen) and len(set(seen)) > 10  # lines arrive one by one
        assert np.isfinite(spm.get_frame().values).all()

        scan.StartFrameUp()
        time.sleep(0.35)
        scan.Stop()
        done = scan.Currentline
        assert not scan.IsScanning and 2 <= done < 20
        assert np.isnan(spm.get_frame().values[done:]).all()

        microscope, observer = TemMicroscopeClient(), TemMicroscopeClient()
        microscope.connect(HOST, server.port)
        observer.connect(HOST, server.port)
        started = time.monotonic()
        microscope.acquisition.acquire_camera_image("BM-Ceta", 64, 0.5)
        assert time.monotonic() - started >= 0.5  # the exposure takes its time
        seen_moving = []

        def watch() -> None:  # another client polls the stage while it moves
            for _ in range(20):
                seen_moving.append(observer.specimen.stage.is_moving)
                time.sleep(0.02)

        watcher = threading.Thread(target=watch)
        started = time.monotonic()
        watcher.start()
        microscope.specimen.stage.relative_move([10e-6])  # 10 µm at 25 µm/s
        assert time.monotonic() - started >= 0.4 * 0.95  # at the stage's speed, not at once
        watcher.join()
        assert any(seen_moving) and not observer.specimen.stage.is_moving
        microscope.disconnect()
        observer.disconnect()
    finally:
        spm.close()
        code = server.stop(signal.SIGINT)
    assert code == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--sample", "graphite"], "sample = 'graphite' is not a built-in sample or a sample file"),
        (["--sample", "missing.yaml"], "sample file 'missing.yaml' cannot be read"),
        (["--time-scale", "-1"], "time_scale = -1.0 is out of range; allowed 0 to 100"),
        (["--port", "70000"], "--port = 70000 is out of range; allowed 0 to 65535"),
        (["--seed", "-3"], "seed = -3 is out of range"),
    ],
)
def test_bad_options_are_refused_before_serving(options, message):
    with pytest.raises(SystemExit) as refused:  # in this process: the same main() `twin serve` runs
        main(["serve", *options])
    assert f"twin serve: {message}" in str(refused.value.code)  # a message exits with status 1


def test_a_bad_option_is_refused_without_importing_the_physics():
    check = ("import sys\nfrom twin.cli import main\ntry:\n    main(['serve', '--seed', '-3'])\n"
             "except SystemExit as exit:\n    print(exit.code)\nprint('abtem' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    printed, physics = result.stdout.splitlines()
    assert printed.startswith("twin serve: seed = -3 is out of range") and physics == "False"


def test_the_server_lifts_a_low_open_file_limit_to_hold_every_connection():
    resource = pytest.importorskip("resource")
    from twin.server.daemon import allow_open_files

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    expected = 2048 if hard == resource.RLIM_INFINITY else min(2048, hard)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # a desktop's usual limit is 1024
        assert allow_open_files(2048) == expected == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        assert allow_open_files(100) == expected  # never lowered
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
