"""``twin serve --workers 2``: the teams' twins on two Dask worker processes behind one front door; a worker
killed mid-episode takes only its own teams down, who come back from their journals."""

from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

from clients._remote import open_proxy
from clients.challenge import Challenge, leaderboard
from clients.errors import InvalidValue
from clients.tem import TemMicroscopeClient
from twin.cli import main
from twin.common import wire
from twin.scenarios.secret import OrganiserKey
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


SLOW_SCENARIO = """\
title: a slow camera
goal: take pictures
sample: graphene
time_scale: 1
settings: {tem: {twin.drift: false}}
budgets: {electrons: 1e11}
score: {function: tem_focus, focus_tolerance: 5 nm, astigmatism_tolerance: 2 nm}
"""


@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """Private instances on two workers, placed in turn: 'slow' (a camera in real time) and team-02 on one,
    team-01 and team-03 on the other; the teams play tem-autofocus from seeds 5, 6, 7."""
    folder = tmp_path_factory.mktemp("workers")
    tokens, slow = folder / "tokens.csv", folder / "slow.scenario.yaml"
    slow.write_text(SLOW_SCENARIO)
    server = ServerProcess.start("--workers", "2", "--instance", f"slow={slow}:1", "--scenario",
                                 "tem-autofocus", "--teams", "3", "--seed-per-team", "--private", "--tokens",
                                 str(tokens),
                                 "--journal-dir", str(folder), seed=5)
    yield server, {r["instance"]: r["token"] for r in csv.DictReader(tokens.open())}, folder
    assert server.stop() == 0, "\n".join(server.lines)


def connect(server: ServerProcess, instance: str) -> TemMicroscopeClient:
    microscope = TemMicroscopeClient()
    microscope.connect(HOST, server.port, instance)
    return microscope


def worker_of(server: ServerProcess, team: str) -> psutil.Process:
    """The worker process holding ``team`` now, as the server last reported it."""
    lines = [line for line in server.lines if re.match(rf"\s*(instance )?{team}: .* on tcp://", line)]
    port = int(lines[-1].rsplit(":", 1)[1])
    for child in psutil.Process(server.process.pid).children(recursive=True):
        if any(c.laddr.port == port for c in child.net_connections() if c.status == psutil.CONN_LISTEN):
            return child
    raise LookupError(f"no process listens on {port} for {team}")


def test_teams_reach_their_twins_on_two_workers_through_one_address(hosted) -> None:
    server, token, folder = hosted
    assert worker_of(server, "team-01").pid == worker_of(server, "team-03").pid != worker_of(server,
                                                                                             "team-02").pid
    with pytest.raises(ConnectionError, match="has no instance 'team-01'"):
        connect(server, "team-01")  # tokens only, as on a one-process private server
    one, two = connect(server, token["team-01"]), connect(server, token["team-02"])
    one.optics.defocus = 20e-9
    assert one.optics.defocus == pytest.approx(20e-9) and two.optics.defocus == 0.0
    out_of_range = r"optics.defocus = 1.0 is out of range; allowed -0.001 to 0.001 m"
    with pytest.raises(InvalidValue, match=out_of_range):
        one.optics.defocus = 1.0  # the worker's error, its type and message intact
    refused = "tem.run_auto_function is not allowed in scenario 'tem-autofocus'"
    with pytest.raises(PermissionError, match=refused):
        one.auto_functions.run_stem_auto_focus()
    journal = Challenge(HOST, server.port, token["team-01"]).journal()
    assert [e["call"] for e in journal][:2] == ["tem.set", "tem.get"]
    assert journal[0]["caller"].startswith("127.0.0.1:")  # the team's own client, not the front door
    board = leaderboard(HOST, server.port)
    assert len(board) == 4 and all(row["instance"] is None for row in board)
    assert sorted(row["calls"] for row in board) == [0, 0, 1, 3]  # a refused value counts, a forbidden not
    organiser = OrganiserKey.load(folder / "organiser.key").organiser_token()
    rows = {row["instance"]: row for row in leaderboard(HOST, server.port, organiser)}
    assert {name: row["seed"] for name, row in rows.items()} == {"slow": 1, "team-01": 5, "team-02": 6,
                                                                 "team-03": 7}
    for client in (one, two):
        client.disconnect()


def test_a_killed_worker_takes_only_its_teams_who_carry_on_from_their_journals(hosted) -> None:
    server, token, folder = hosted
    victim, bystander = worker_of(server, "team-02"), worker_of(server, "team-01")
    assert worker_of(server, "slow").pid == victim.pid
    two, slow = connect(server, token["team-02"]), connect(server, token["slow"])
    two.optics.defocus = 42e-9
    frame = two.acquisition.acquire_stem_image("HAADF", 64, 1e-6).metadata.acquisition.frame_index
    two.optics.optical_mode = "Tem"
    two.acquisition.acquire_camera_image("BM-Ceta", 1024, 0.1)  # a TEM image: FFTs on every core
    two.optics.optical_mode = "Stem"
    spent = Challenge(HOST, server.port, token["team-02"]).status()["budgets"]["calls"]["spent"]

    other = Challenge(HOST, server.port, token["team-01"])
    failures: list[BaseException] = []
    reads = 0
    stop = threading.Event()

    def keep_reading() -> None:  # the other worker's team, all along
        nonlocal reads
        while not stop.is_set():
            try:
                other.status()  # not counted: the team's budget is not spent by the test
                reads += 1
                time.sleep(0.01)
            except BaseException as error:  # noqa: BLE001 - any failure is what the test looks for
                failures.append(error)

    exposed: list = []
    exposure = threading.Thread(target=lambda: exposed.append(
        slow.acquisition.acquire_camera_image("BM-Ceta", 128, 2.0)))  # 2 s of real time on 'slow'
    reader = threading.Thread(target=keep_reading)
    reader.start()
    try:
        exposure.start()
        time.sleep(0.8)
        os.kill(victim.pid, signal.SIGKILL)  # during the exposure
        for name in ("slow", "team-02"):
            server.wait_for(f"{name}: carried on its journal", 60.0)
        # every journalled call is back: the focus, the frame count, the calls spent
        assert two.optics.defocus == pytest.approx(42e-9)
        again = two.acquisition.acquire_stem_image("HAADF", 64, 1e-6).metadata.acquisition.frame_index
        assert again == frame + 2  # after the camera image's frame
        status = Challenge(HOST, server.port, token["team-02"]).status()
        assert status["budgets"]["calls"]["spent"] == spent + 2  # the read and the image, each once
        exposure.join(30.0)
    finally:
        stop.set()
        reader.join()
    # the exposure cut short never reached the journal: it was made again on the instance carried on
    assert exposed and exposed[0].data.shape == (128, 128)
    journal = Challenge(HOST, server.port, token["slow"]).journal()
    assert [e["call"] for e in journal] == ["tem.acquire_camera_image"]
    assert not failures and reads > 10, failures[:3]
    assert worker_of(server, "team-01").pid == bystander.pid and bystander.is_running()
    assert worker_of(server, "team-02").pid != victim.pid
    for client in (two, slow):
        client.disconnect()
    other.close()
    # a journal written on two workers replays bit for bit in a process of its own (this one)
    assert main(["scenario", "replay", str(folder / "tem-autofocus-seed6-team-02.jsonl")]) == 0


CLIENT = textwrap.dedent('''
    import sys
    from clients.tem import TemMicroscopeClient
    microscope = TemMicroscopeClient()
    microscope.connect("127.0.0.1", int(sys.argv[1]), sys.argv[2])
    microscope.optics.optical_mode = "Stem"
    microscope.optics.scan_field_of_view = 8e-9
    print("scanning", flush=True)
    microscope.acquisition.acquire_stem_image("HAADF", 96, 1e-6, mode="exact")  # ~a minute of multislice
''')


def test_a_client_that_hangs_up_stops_its_work_on_the_worker(hosted) -> None:
    server, token, _ = hosted
    client = subprocess.Popen([sys.executable, "-c", CLIENT, str(server.port), token["slow"]],
                              stdout=subprocess.PIPE, text=True)
    watcher = open_proxy(wire.TEM_OBJECT, HOST, server.port, token["slow"])
    try:
        assert client.stdout.readline().strip() == "scanning"
        deadline = time.monotonic() + 60.0
        while not (watcher.progress() or {}).get("fraction", 0) and time.monotonic() < deadline:
            time.sleep(0.2)
        report = watcher.progress()  # forwarded to the worker, read while the scan runs there
        assert report["task"] == "an exact STEM scan of 96 x 96 pixels with HAADF"
        assert report["seconds_left"] > 20
        client.kill()  # kill -9: the connection to the front door drops without a word
        client.wait()
        stopped = time.monotonic()
        while watcher.progress() is not None and time.monotonic() - stopped < 60.0:
            time.sleep(0.2)
        assert watcher.progress() is None and time.monotonic() - stopped < 15.0  # stopped, not finished
    finally:
        client.kill()
        client.wait()
        watcher._pyroRelease()


def test_workers_host_challenge_instances_only() -> None:
    with pytest.raises(SystemExit, match="--workers and --scheduler host challenge instances"):
        main(["serve", "--workers", "2", "--port", "0"])


def test_each_instance_carries_on_its_latest_journal_or_starts_the_next(tmp_path) -> None:
    from twin.scenarios.secret import OrganiserKey
    from twin.serve_workers import specs_from

    for name in ("tem-autofocus-seed5-a.jsonl", "tem-autofocus-seed5-a-2.jsonl"):
        (tmp_path / name).write_text("{}\n")
    plays = [("a", "tem-autofocus", 5), ("b", "tem-autofocus", 5)]

    def journals(resume: bool) -> list[str]:
        specs = specs_from(plays, tmp_path, resume, OrganiserKey.generate(), False, tmp_path / "files",
                           (600.0, 2**30, 10.0), 2, False)
        assert [scenario for _, scenario in specs] == ["tem-autofocus"] * 2
        return [Path(spec.journal).name for spec, _ in specs]

    assert journals(True) == ["tem-autofocus-seed5-a-2.jsonl", "tem-autofocus-seed5-b.jsonl"]
    assert journals(False) == ["tem-autofocus-seed5-a-3.jsonl", "tem-autofocus-seed5-b.jsonl"]
