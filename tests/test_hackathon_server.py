"""One server, many teams: independent instances over real Pyro5 round trips on 127.0.0.1."""

from __future__ import annotations

import csv
import threading
import time

import numpy as np
import pytest

from clients.challenge import Challenge, leaderboard
from clients.errors import BudgetExhausted
from clients.tem import TemMicroscopeClient
from tests.scenario_files import SLOW_SCENARIO
from twin.cli import main
from twin.server import wire
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"



@pytest.fixture(scope="module")
def hackathon(tmp_path_factory):
    """Teams a and b play a real-time scenario from the same seed, c plays the autofocus challenge."""
    folder = tmp_path_factory.mktemp("hackathon")
    scenario = folder / "slow.scenario.yaml"
    scenario.write_text(SLOW_SCENARIO)
    server = ServerProcess.start("--instance", f"a={scenario}:1", "--instance", f"b={scenario}:1",
                                 "--instance", "c=tem-autofocus:3", "--journal-dir", str(folder / "journals"))
    yield server, folder
    assert server.stop() == 0


def connect(server: ServerProcess, instance: str) -> TemMicroscopeClient:
    microscope = TemMicroscopeClient()
    microscope.connect(HOST, server.port, instance)
    return microscope


def test_teams_are_isolated_and_a_slow_exposure_does_not_hold_up_another_team(hackathon) -> None:
    server, _ = hackathon
    a, b = connect(server, "a"), connect(server, "b")
    challenge_b = Challenge(HOST, server.port, "b")
    a.optics.defocus, b.optics.defocus = 50e-9, -70e-9
    reads_during_the_exposure = 0

    def exposure() -> None:
        a.acquisition.acquire_camera_image("BM-Ceta", 256, 1.5)  # 1.5 s of real time on team a's twin

    worker = threading.Thread(target=exposure)
    started = time.monotonic()
    worker.start()
    time.sleep(0.2)
    while worker.is_alive():
        assert b.optics.defocus == pytest.approx(-70e-9)
        challenge_b.status()
        leaderboard(HOST, server.port)  # the organiser's board does not wait for team a either
        reads_during_the_exposure += worker.is_alive()  # answered while team a's exposure still ran
    worker.join()
    assert time.monotonic() - started >= 1.5
    assert reads_during_the_exposure >= 3  # waiting for team a's exposure, team b would get at most one
    assert a.optics.defocus == pytest.approx(50e-9) and b.optics.defocus == pytest.approx(-70e-9)
    calls_a = [e["call"] for e in Challenge(HOST, server.port, "a").journal()]
    calls_b = [e["call"] for e in challenge_b.journal()]
    assert "tem.acquire_camera_image" in calls_a and "tem.acquire_camera_image" not in calls_b
    assert a.specimen.stage.position.x == b.specimen.stage.position.x
    for client in (a, b):
        client.disconnect()


def test_concurrent_teams_get_the_data_their_own_calls_ask_for(hackathon) -> None:
    server, _ = hackathon
    images: dict[str, list[np.ndarray]] = {"a": [], "b": []}

    def team(name: str, defocus: float) -> None:
        microscope = connect(server, name)
        for _ in range(3):
            microscope.optics.defocus = defocus
            images[name].append(microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 0.05).metadata
                                .optics.defocus)
        microscope.disconnect()

    threads = [threading.Thread(target=team, args=args) for args in (("a", 20e-9), ("b", -30e-9))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert images["a"] == [pytest.approx(20e-9)] * 3 and images["b"] == [pytest.approx(-30e-9)] * 3


def test_a_lab_script_runs_unchanged_on_its_team_instance(hackathon, tmp_path) -> None:
    server, _ = hackathon
    script = tmp_path / "lab.py"
    script.write_text("from autoscript_tem_microscope_client import TemMicroscopeClient\n"
                      "microscope = TemMicroscopeClient()\n"
                      "microscope.connect('10.0.0.17')\n"
                      "microscope.optics.defocus = 33e-9\n")
    assert main(["run", "--port", str(server.port), "--instance", "b", str(script)]) == 0
    assert connect(server, "b").optics.defocus == pytest.approx(33e-9)
    assert connect(server, "a").optics.defocus != pytest.approx(33e-9)


def test_budget_and_forbidden_calls_reach_the_team_as_clear_errors(hackathon) -> None:
    server, _ = hackathon
    a = connect(server, "a")
    before = Challenge(HOST, server.port, "a").status()["budgets"]["electrons"]
    with pytest.raises(BudgetExhausted, match=r"budget exhausted: electrons = .* of 1e\+11 e .* needs 6\.24"):
        a.acquisition.acquire_camera_image("BM-Ceta", 256, 100.0)
    assert Challenge(HOST, server.port, "a").status()["budgets"]["electrons"] == before
    c = connect(server, "c")
    refused = "tem.run_auto_function is not allowed in scenario 'tem-autofocus'"
    with pytest.raises(PermissionError, match=refused):
        c.auto_functions.run_stem_auto_focus()
    assert c.optics.defocus == 0.0  # and the call changed nothing
    with pytest.raises(ConnectionError, match="has no instance 'nobody'"):
        connect(server, "nobody")
    for client in (a, c):
        client.disconnect()


@pytest.mark.slow
def test_a_team_sees_its_score_alone_the_organiser_the_whole_board_and_the_journal_replays(hackathon, capsys
                                                                                          ) -> None:
    server, folder = hackathon
    c = connect(server, "c")  # a short episode: the baselines play whole ones in test_challenges.py
    c.optics.defocus = 12e-9
    c.acquisition.acquire_stem_image("HAADF", 64, 1e-6)
    c.disconnect()
    result = Challenge(HOST, server.port, "c").submit({})
    assert result["details"] == {}  # how the score came about (the true focus) stays with the organiser
    assert Challenge(HOST, server.port, "c").status()["score"] == result
    rows = leaderboard(HOST, server.port)  # what every team may read: no seeds
    assert [r["instance"] for r in rows][0] == "c" and rows[0]["score"] == pytest.approx(result["score"])
    assert {r["instance"] for r in rows} == {"a", "b", "c"} and not any("seed" in r for r in rows)
    key = folder / "journals" / "organiser.key"
    assert key.stat().st_mode & 0o777 == 0o600
    table = folder / "board.csv"
    assert main(["scenario", "leaderboard", "--port", str(server.port), "--csv", str(table), "--key",
                 str(key)]) == 0
    board = capsys.readouterr().out.splitlines()
    assert board[1].split()[:4] == ["1", "c", "tem-autofocus", "3"] and board[2].split()[0] == "-"  # unscored
    written = list(csv.DictReader(table.open()))
    assert written[0]["instance"] == "c" and float(written[0]["score"]) == pytest.approx(result["score"])
    journal = folder / "journals" / "tem-autofocus-seed3-c.jsonl"
    assert main(["scenario", "replay", str(journal)]) == 0  # the key beside the journal
    assert "0 different" in capsys.readouterr().out
    elsewhere = folder / "copied.jsonl"
    elsewhere.write_text(journal.read_text())
    with pytest.raises(SystemExit, match="played with the organiser.s secret key .*give its key file"):
        main(["scenario", "score", str(elsewhere)])
    assert main(["scenario", "score", str(elsewhere), "--key", str(key)]) == 0
    assert f"score {result['score']:.4f}" in capsys.readouterr().out


TEAMS = 17  # 17 x 32 = 544 connections, more than the 512 a small server allows


@pytest.fixture(scope="module")
def private(tmp_path_factory):
    """A private server of 17 teams playing tem-autofocus, each from its own seed (5, 6, ...), and
    taking as many connections from one address as they may hold (all tests run on 127.0.0.1)."""
    folder = tmp_path_factory.mktemp("private")
    tokens = folder / "tokens.csv"
    server = ServerProcess.start("--scenario", "tem-autofocus", "--teams", str(TEAMS), "--seed-per-team",
                                 "--private", "--tokens", str(tokens), "--journal-dir", str(folder),
                                 "--connections-per-address", "1000", seed=5)
    yield server, list(csv.DictReader(tokens.open()))
    assert server.stop() == 0


def test_a_private_server_answers_to_tokens_only(private) -> None:
    server, rows = private
    assert [r["instance"] for r in rows] == [f"team-{k:02d}" for k in range(1, TEAMS + 1)]
    assert len({r["token"] for r in rows}) == TEAMS and [r["seed"] for r in rows] == [
        str(5 + k) for k in range(TEAMS)]
    with pytest.raises(ConnectionError, match="has no instance 'team-01'"):
        connect(server, "team-01")
    microscope = connect(server, rows[1]["token"])
    microscope.optics.defocus = 10e-9
    assert Challenge(HOST, server.port, rows[1]["token"]).status()["instance"] == "team-02"
    microscope.disconnect()
    with wire.connect(f"PYRO:Pyro.Daemon@{HOST}:{server.port}") as daemon:  # Pyro's own listing
        listed = daemon.registered()
    assert listed and not any(r["token"] in object_id for r in rows for object_id in listed)
    printed = "\n".join(server.lines)  # the organiser's console (a log): no token, no name in a URI
    assert "twin.tem.YOUR-TOKEN@" in printed and "team-01@" not in printed
    assert not any(r["token"] in printed for r in rows)


def test_a_restarted_server_carries_on_every_episode_where_it_stopped(tmp_path) -> None:
    tokens, journals = tmp_path / "tokens.csv", tmp_path / "journals"
    options = ("--instance", "a=tem-autofocus:3", "--instance", "b=afm-tip-change:1", "--private",
               "--tokens", str(tokens), "--journal-dir", str(journals))
    server = ServerProcess.start(*options)
    try:
        token = {r["instance"]: r["token"] for r in csv.DictReader(tokens.open())}
        microscope = connect(server, token["a"])
        microscope.optics.defocus = 42e-9
        before = microscope.acquisition.acquire_stem_image("HAADF", 64, 1e-6).data
        status = Challenge(HOST, server.port, token["a"]).status()
        Challenge(HOST, server.port, token["b"]).submit({"frame_index": 3})
        microscope.disconnect()
    finally:
        assert server.stop() == 0
    server = ServerProcess.start(*options, "--resume")
    try:
        printed = "\n".join(server.lines)
        assert "a: carried on tem-autofocus-seed3-a.jsonl (2 calls made again; playing)" in printed
        assert "b: carried on afm-tip-change-seed1-b.jsonl (1 call made again; answered)" in printed
        microscope = connect(server, token["a"])  # the same token still opens the same team's twin
        assert microscope.optics.defocus == pytest.approx(42e-9)
        after = microscope.acquisition.acquire_stem_image("HAADF", 64, 1e-6).data
        assert after.shape == before.shape and not np.array_equal(after, before)  # new noise, same twin
        again = Challenge(HOST, server.port, token["a"]).status()
        assert again["budgets"]["calls"]["spent"] == status["budgets"]["calls"]["spent"] + 2
        assert again["budgets"]["wall_time"]["spent"] < status["budgets"]["wall_time"]["spent"] + 30
        assert Challenge(HOST, server.port, token["b"]).status()["over"]
        microscope.disconnect()
    finally:
        assert server.stop() == 0
    assert sorted(p.name for p in journals.iterdir()) == ["afm-tip-change-seed1-b.jsonl", "organiser.key",
                                                          "tem-autofocus-seed3-a.jsonl"]  # the same key
    assert main(["scenario", "replay", str(journals / "tem-autofocus-seed3-a.jsonl")]) == 0


def challenge_when_free(server: ServerProcess, token: str, deadline: float) -> Challenge:
    """A team's Challenge connection, once a worker is free. A hang-up is noticed by the worker holding
    it: it reads the end of the stream, closes its socket and only then is returned to the pool, so a
    slot frees some time after close() returns. On a busy machine with 544 worker threads that moment may
    be seconds away; wait for it (``deadline`` only ends a failing run)."""
    while True:
        try:
            return Challenge(HOST, server.port, token)
        except ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_server_holds_32_connections_per_team_and_says_so_when_full(private) -> None:
    """(On the private server: connections an earlier test closed may still hold their workers a moment.)"""
    from twin.server.daemon import CONNECTIONS_PER_INSTANCE

    server, rows = private
    token = [r["token"] for r in rows]
    opened: list[Challenge] = []
    try:
        deadline = time.monotonic() + 60.0
        for k in range(TEAMS * CONNECTIONS_PER_INSTANCE):  # each holds one connection
            opened.append(challenge_when_free(server, token[k % TEAMS], deadline))
        with pytest.raises(ConnectionError, match="refused the connection: server busy: every worker is "
                                                  "serving a connection"):
            Challenge(HOST, server.port, token[0])
        opened.pop().close()
        again = challenge_when_free(server, token[1], time.monotonic() + 60.0)
        assert again.status()["instance"] == "team-02"
        opened.append(again)
    finally:
        for challenge in opened:
            challenge.close()
    freed = [challenge_when_free(server, token[0], time.monotonic() + 60.0) for _ in range(4)]
    for challenge in freed:  # the server has workers for whatever test comes next
        challenge.close()
