"""``twin serve --workers 2``: the teams' twins on two Dask worker processes behind one front door; a worker
killed mid-episode takes only its own teams down, who come back from their journals."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from clients._remote import open_proxy
from clients.challenge import Challenge, leaderboard
from clients.errors import InvalidValue
from clients.tem import TemMicroscopeClient
from tests.scenario_files import SLOW_SCENARIO
from tests.test_fairness import everything_a_team_can_read
from twin.cli import main
from twin.common import wire
from twin.scenarios.secret import OrganiserKey
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"




@pytest.fixture(scope="module")
def hosted(tmp_path_factory):
    """Private instances on two workers, placed in turn: 'slow' (a camera in real time) and team-02 on one,
    team-01 and team-03 on the other; the teams play tem-autofocus from seeds 5, 6, 7."""
    folder = tmp_path_factory.mktemp("workers")
    tokens, slow = folder / "tokens.csv", folder / "slow.scenario.yaml"
    slow.write_text(SLOW_SCENARIO)
    key = folder / "organiser.key"  # a fixed key: the teams' hidden focus within 31 nm (quick Ronchigrams)
    key.write_text(hashlib.sha256(b"tests/test_workers.py 6").hexdigest())
    key.chmod(0o600)
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


def live_state(server: ServerProcess, path: str = "api/state") -> tuple[int, str]:
    """The live page's answer at ``path``, from the address ``twin serve`` printed."""
    line = next(line for line in server.lines if "Live view:" in line)
    url = re.search(r"http://\S+/", line).group(0) + path
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for_rows(server: ServerProcess, done: Callable[[list[dict]], bool], seconds: float = 10.0) -> list:
    """The live scoreboard's rows once ``done`` holds for them (the page asks the workers once a second)."""
    deadline = time.monotonic() + seconds
    while True:
        rows = json.loads(live_state(server)[1])["scoreboard"]
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_the_private_live_page_shows_the_workers_scoreboard_and_no_name_or_token(hosted) -> None:
    server, token, _ = hosted
    assert any("Live view: open http://127.0.0.1:" in line and "scoreboard" in line for line in server.lines)
    state = json.loads(live_state(server)[1])
    assert state["instances"] == [] and state["private"] is True and "tem" not in state
    before = state["scoreboard"]
    assert len(before) == 4 and all(row["instance"] is None and "budgets" not in row for row in before)
    calls = sum(row["calls"] for row in before)
    three = connect(server, token["team-03"])
    three.optics.defocus = 5e-9  # one counted call
    three.disconnect()
    rows = wait_for_rows(server, lambda rows: sum(row["calls"] for row in rows) > calls)
    assert sum(row["calls"] for row in rows) == calls + 1
    status, answer = live_state(server, "api/map")
    assert status == 404 and "private" in answer
    page = json.dumps(rows) + live_state(server)[1]
    assert "team-0" not in page and not any(secret in page for secret in token.values())


def test_no_reply_to_a_team_on_workers_carries_the_key_or_another_team(hosted) -> None:
    """Every read a team can make (images, refusals, Pyro's daemon object, the hub, its answer and
    journal) through the front door: the worker's replies carry no key, no seed drawn from it and no
    other team (team-01's episode ends here)."""
    server, token, folder = hosted
    key = OrganiserKey.load(folder / "organiser.key")
    drawn = key.episode_seed("tem-autofocus", 5)
    secrets_ = {"key": key.secret.hex(), "key id": key.id, "organiser token": key.organiser_token(),
                "drawn seed": str(drawn), "drawn seed (hex)": f"{drawn:x}", "team-02": "team-02",
                "team-03": "team-03", **{f"{name}'s token": token[name] for name in ("team-02", "team-03",
                                                                                       "slow")}}
    replies = everything_a_team_can_read(server, token["team-01"])
    assert len(replies) > 40 and any("HAADF" in r for r in replies) and any("score" in r for r in replies)
    for what, secret in secrets_.items():
        leaking = [r[:200] for r in replies if secret in r]
        assert not leaking, f"a reply carries the {what}: {leaking}"


def test_an_open_live_page_shows_every_teams_budgets_on_workers(tmp_path) -> None:
    """An open hackathon on two workers: the page names the teams, with their budgets, and follows a
    team's calls and answer; no token anywhere."""
    tokens = tmp_path / "tokens.csv"
    server = ServerProcess.start("--workers", "2", "--scenario", "tem-autofocus", "--teams", "2", "--tokens",
                                 str(tokens), "--journal-dir", str(tmp_path), "--live-port", "0", seed=4)
    try:
        rows = {r["instance"]: r for r in json.loads(live_state(server)[1])["scoreboard"]}
        assert sorted(rows) == ["team-01", "team-02"] and rows["team-02"]["budgets"]["calls"]["limit"] == 1000
        assert rows["team-02"]["over"] is False and rows["team-02"]["score"] is None
        microscope = connect(server, "team-02")
        microscope.optics.defocus = 30e-9
        microscope.acquisition.acquire_stem_image("HAADF", 64, 2e-6)
        microscope.disconnect()
        challenge = Challenge(HOST, server.port, "team-02")
        score = challenge.submit({})["score"]
        spent = challenge.status()["budgets"]
        challenge.close()
        shown = wait_for_rows(server, lambda rows: any(r["over"] for r in rows))
        row = next(r for r in shown if r["instance"] == "team-02")
        assert row["over"] is True and row["score"] == pytest.approx(score)
        assert row["budgets"]["calls"]["spent"] == spent["calls"]["spent"] == row["calls"] == 2
        assert row["budgets"]["electrons"]["spent"] == pytest.approx(spent["electrons"]["spent"])
        assert spent["electrons"]["spent"] > 0
        assert shown[0]["instance"] == "team-02"  # answered first
        page = json.dumps(shown)
        assert not any(team["token"] in page for team in csv.DictReader(tokens.open()))
    finally:
        assert server.stop() == 0


def test_the_live_page_on_workers_takes_no_control() -> None:
    with pytest.raises(SystemExit, match="scoreboard with --workers or --scheduler.*drop --live-control"):
        main(["serve", "--workers", "2", "--scenario", "tem-autofocus", "--live-control", "--port", "0"])


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
