"""``twin bench --hackathon``: many teams on one ``twin serve`` process beside the same teams on N Dask
worker processes (``twin serve --workers N``), in the same run; and what the front door adds to a call.

Each team takes one 1024² TEM image and one 256² HAADF image, all teams at once (a client thread each),
each team on its own seed (the same specimen would be computed once per process and then come from the
cache).
A cheap call (a setting read) is timed on an idle server of each kind: the difference is the front
door's forwarding to the worker. Both servers are then restarted with ``--resume``: every team's journal
is carried on, one after another in the one process, in parallel on the workers.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from twin.bench import median_time
from twin.common import wire

TEAMS = 40
WORKERS = 2
TEM_SIZE, STEM_SIZE = 1024, 256
CHEAP_CALLS = 300  # reads timed for the per-call figure
HAADF_REPEATS = 5
START_SECONDS = 900.0  # s a server of many teams is given to report ready (their twins built or resumed)

SCENARIO = """\
title: hackathon bench
goal: take one TEM and one HAADF image
sample: graphene
budgets: {calls: 100000}
score: {function: tem_focus, focus_tolerance: 5 nm, astigmatism_tolerance: 2 nm}
"""


def _team(port: int, instance: str) -> Any:
    from clients.tem import TemMicroscopeClient

    microscope = TemMicroscopeClient()
    microscope.connect(wire.DEFAULT_HOST, port, instance)
    return microscope


def _session(microscope: Any) -> float:
    """Seconds for one team's TEM 1024² image, the switch to STEM and a HAADF 256² image."""
    began = time.perf_counter()
    microscope.acquisition.acquire_camera_image("BM-Ceta", TEM_SIZE, 0.1)
    microscope.optics.optical_mode = "Stem"
    microscope.acquisition.acquire_stem_image("HAADF", STEM_SIZE, 1e-6)
    return time.perf_counter() - began


def all_teams(port: int, teams: int) -> tuple[float, float]:
    """Wall seconds for every team's session at once (one client thread each, started together) and the
    median team's own seconds."""
    clients = [_team(port, f"team-{k:02d}") for k in range(1, teams + 1)]
    start, seconds = threading.Barrier(teams + 1), [0.0] * teams

    def run(k: int) -> None:
        start.wait()
        seconds[k] = _session(clients[k])

    threads = [threading.Thread(target=run, args=(k,)) for k in range(teams)]
    for thread in threads:
        thread.start()
    start.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    for client in clients:
        client.disconnect()
    return wall, statistics.median(seconds)


def server_figures(options: tuple[str, ...], teams: int, folder: Path) -> dict[str, float]:
    """One server of ``teams`` teams (``twin serve`` with ``options``): its start-up, a cheap call and a
    HAADF 256² on it idle, all teams' sessions at once, and its restart carrying on every journal."""
    from twin.server.launcher import ServerProcess

    folder.mkdir(parents=True, exist_ok=True)
    scenario = folder / "bench.scenario.yaml"
    scenario.write_text(SCENARIO)
    common = ("--scenario", str(scenario), "--teams", str(teams), "--seed-per-team", "--journal-dir",
              str(folder / "journals"), "--data-dir", str(folder / "files"), *options)
    server = ServerProcess.start(*common, timeout=START_SECONDS)
    try:
        figures = {"start_s": server.seconds_until("ready in")}
        probe = _team(server.port, "team-01")
        probe.optics.defocus  # noqa: B018 - the connection made before timing
        figures["cheap_call_ms"] = median_time(lambda: probe.optics.defocus, CHEAP_CALLS) * 1e3
        figures["all_teams_s"], figures["median_team_s"] = all_teams(server.port, teams)
        figures["haadf_256_s"] = median_time(
            lambda: probe.acquisition.acquire_stem_image("HAADF", STEM_SIZE, 1e-6), HAADF_REPEATS)
        probe.disconnect()
    finally:
        server.stop()
    server = ServerProcess.start(*common, "--resume", timeout=START_SECONDS)
    try:
        figures["resume_s"] = server.seconds_until("ready in")
    finally:
        server.stop()
    return figures


def measure(teams: int = TEAMS, workers: int = WORKERS) -> dict[str, Any]:
    """Both servers' figures and how they compare."""
    with tempfile.TemporaryDirectory(prefix="twin-bench-hackathon-") as folder:
        one = server_figures((), teams, Path(folder) / "one")
        many = server_figures(("--workers", str(workers)), teams, Path(folder) / "workers")
    overhead_ms = many["cheap_call_ms"] - one["cheap_call_ms"]
    return {"teams": teams, "workers": workers, "one_process": one, "on_workers": many,
            "speedup_all_teams": one["all_teams_s"] / many["all_teams_s"],
            "speedup_resume": one["resume_s"] / many["resume_s"],
            "front_door_overhead_ms": overhead_ms,
            "overhead_over_haadf_256": overhead_ms / (one["haadf_256_s"] * 1e3)}


def report(f: dict[str, Any]) -> str:
    """The figures as a table: one process beside the workers."""
    one, many = f["one_process"], f["on_workers"]
    rows = [("start-up (every twin built), s", "start_s", 1.0, ".1f"),
            (f"all teams' TEM {TEM_SIZE}² + HAADF {STEM_SIZE}² at once, s", "all_teams_s", 1.0, ".1f"),
            ("  the median team's own, s", "median_team_s", 1.0, ".2f"),
            ("a cheap call (a setting read), idle, ms", "cheap_call_ms", 1.0, ".2f"),
            (f"a HAADF {STEM_SIZE}², idle, ms", "haadf_256_s", 1e3, ".1f"),
            ("a restart carrying on every journal, s", "resume_s", 1.0, ".1f")]
    workers = f"{f['workers']} workers"
    lines = [f"twin bench --hackathon: {f['teams']} teams on 1 process and on {workers} (this machine)",
             f"  {'':<48}{'1 process':>11}{workers:>11}"]
    lines += [f"  {label:<48}{one[key] * scale:>11{form}}{many[key] * scale:>11{form}}"
              for label, key, scale, form in rows]
    lines += [f"  speed-up with workers: all teams x{f['speedup_all_teams']:.2f}, the restart "
              f"x{f['speedup_resume']:.2f}",
              f"  front door per call: {f['front_door_overhead_ms']:+.2f} ms "
              f"({f['overhead_over_haadf_256']:+.1%} of a HAADF {STEM_SIZE}²)"]
    return "\n".join(lines)


def main(as_json: bool = False, teams: int = TEAMS, workers: int = WORKERS) -> int:
    figures = measure(teams, workers)
    print(json.dumps(figures, indent=2) if as_json else report(figures))
    return 0
