"""``twin bench``'s plumbing: its helpers measure what they say, its report and JSON show every figure.

The bench itself is a measurement (minutes of 1024² images, datasets, transport); its figures are not
asserted anywhere. What can break without a slow machine noticing is the plumbing around them, tested
here on tiny inputs in this process.
"""

from __future__ import annotations

import io
import json
import re
import sys

import numpy as np
import pytest

from twin import bench
from twin.cli import main

SECTIONS = {"machine", "startup", "tem_1024", "tem_engines", "tem_low_magnification", "stem", "analytical",
            "afm_256", "afm_512", "afm_1024", "live_view", "datasets", "transport", "episodes"}


def figures() -> dict:
    """Figures shaped as ``bench.measure()`` returns them; every number distinct (findable in a report)."""
    numbers = iter(np.arange(1.0, 200.0) * 1.125)
    sections = {
        "startup": ["serve_to_ready_s", "serve_to_first_1024_image_s"],
        "tem_1024": ["first_acquire_s", "first_new_window_s", "warm_new_window_s", "warm_same_window_s",
                     "warm_new_defocus_s", "ratio_new_defocus_to_new_window", "direct_abtem_same_window_s",
                     "ratio_warm_new_window_to_direct", "field_of_view_m"],
        "tem_engines": [f"{name}_{size}{unit}" for size in bench.ENGINE_SIZES for name, unit in (
            ("fast_new_window", "_s"), ("abtem_new_window", "_s"), ("direct_abtem", "_s"),
            ("fast_over_direct", ""), ("abtem_engine_over_direct", ""), ("fast_over_abtem_engine", ""),
            ("fast_exit_wave", "_s"), ("abtem_exit_wave", "_s"), ("fast_over_abtem_exit_wave", ""))],
        "tem_low_magnification": ["warm_new_window_s", "warm_same_window_s", "field_of_view_m"],
        "stem": ["interactive_haadf_256_s", "exact_per_position_s", "direct_abtem_per_position_s",
                 "ratio_exact_to_direct"],
        "analytical": ["eds_spectrum_s", "eds_spectrum_image_s", "eds_spectrum_image_counts", "raster_4d_s",
                       "raster_4d_per_frame_s"],
        "afm_256": ["frame_s", "time_scale"], "afm_512": ["frame_s", "time_scale"],
        "afm_1024": ["frame_s", "time_scale"],
        "live_view": ["acquisition_s", "acquisition_with_page_s", "with_page_over_without",
                      "pictures_fetched"],
        "transport": ["pyro_msgpack_4mib_mb_s", "raw_socket_4mib_mb_s", "pyro_vs_raw_4mib",
                      "pyro_msgpack_16mib_mb_s", "raw_socket_16mib_mb_s", "pyro_vs_raw_16mib",
                      "list_msgpack_mb_s", "list_serpent_mb_s", "bytes_vs_list_msgpack",
                      "bytes_vs_list_serpent"],
        "episodes": ["direct_get_us", "gated_get_us", "direct_haadf_256_s", "gated_haadf_256_s",
                     "replayed_calls", "replay_s"],
        "datasets": ["items", "one_worker_items_per_s", "two_workers_items_per_s", "two_over_one",
                     "one_worker_with_startup_items_per_s", "two_workers_with_startup_items_per_s",
                     "per_item_s", "acquisitions_alone_s", "per_item_over_acquisitions", "ground_truth_s",
                     "per_item_over_acquisitions_and_truth"],
    }
    result = {name: {key: float(next(numbers)) for key in keys} for name, keys in sections.items()}
    result["machine"] = {"cpus": 2, "python": "3.x", "abtem": "a.b", "pyro5": "p.q"}
    result["episodes"]["replay_identical"] = True
    return result


def test_the_report_shows_the_headline_figures_and_says_when_a_replay_differs():
    shown = figures()
    text = bench.report(shown)
    assert text.startswith("twin bench: 2 CPUs, Python 3.x, abTEM a.b, Pyro5 p.q")
    assert f"{shown['afm_1024']['frame_s']:7.3f} s" in text
    for size in bench.ENGINE_SIZES:  # each engine's new window beside direct abTEM, with the ratios
        engines = shown["tem_engines"]
        assert f"{engines[f'abtem_new_window_{size}_s']:.3f} s" in text
        assert f"{engines[f'fast_over_direct_{size}']:.2f}" in text
        assert f"({engines[f'fast_over_abtem_exit_wave_{size}']:.2f})" in text
    assert f"{shown['datasets']['two_over_one']:.2f} x" in text
    assert f"= {shown['live_view']['with_page_over_without']:.3f}   (target <= 1.05" in text
    assert "Pyro5 = " in text and text.count("(target >= 80 %)") == 2  # both echo sizes
    assert "(identical)" in text
    shown["episodes"]["replay_identical"] = False
    assert "(DIFFERENT)" in bench.report(shown)


def test_twin_bench_json_prints_what_measure_returns(monkeypatch, capsys):
    shown = figures()
    monkeypatch.setattr(bench, "measure", lambda: shown)
    assert main(["bench", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == shown
    assert set(shown) == SECTIONS
    assert main(["bench"]) == 0
    assert capsys.readouterr().out.strip() == bench.report(shown)


def test_the_timing_helpers_take_medians_and_count_both_ways(monkeypatch):
    clock = iter([0.0, 1.0, 10.0, 13.0, 20.0, 22.0])  # three runs: 1 s, 3 s, 2 s
    monkeypatch.setattr(bench.time, "perf_counter", lambda: next(clock))
    assert bench.median_time(lambda: None, 3) == 2.0
    assert bench._rate(4_000_000, 2.0) == 4.0  # 4 MB each way in 2 s
    assert [bench._mib(shape) for shape in bench.ECHO_SHAPES] == [4, 16]


class _EchoProxy:
    def __init__(self):
        self.received = []

    def echo(self, array):
        self.received.append(np.array(array, copy=True))
        return array


@pytest.mark.slow
def test_the_transport_baseline_echoes_through_a_plain_socket_in_another_process():
    array = np.random.default_rng(0).random((32, 32), dtype=np.float32)  # 4 KiB: the plumbing, not a rate
    proxy = _EchoProxy()
    pyro_s, raw_s = bench.transport_seconds(proxy, array, rounds=2)
    assert pyro_s > 0 and raw_s > 0
    assert len(proxy.received) == 3 and all(np.array_equal(r, array) for r in proxy.received)
    with bench.RawEcho() as echo:
        reply = bytearray(array.nbytes)
        echo.echo(array.tobytes(), reply)
    assert np.array_equal(np.frombuffer(reply, dtype=np.float32).reshape(array.shape), array)


@pytest.mark.slow
def test_episode_figures_replay_the_gated_calls_identically():
    measured = bench.episode_figures(calls=3)
    assert measured["replay_identical"] is True
    # the gate journals 3 reads and 4 HAADF scans (a warm-up and the median's three repeats)
    assert measured["replayed_calls"] == 3 + 1 + bench.REPEATS
    assert all(measured[key] > 0 for key in ("direct_get_us", "gated_get_us", "replay_s"))


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Server:
    host, port = "127.0.0.1", 1

    def stop(self) -> int:
        return 0


class _Report:
    rate, steady_rate = 1.0, 2.0


def test_the_bench_shows_each_step_it_runs_on_a_terminal_with_the_time_left(monkeypatch):
    """Every step of ``measure`` is one of ``STEPS`` (whose durations weigh the time left), run once, in
    order, each named on the bar while it runs (the measurements themselves stand-ins here)."""
    from twin.server import launcher

    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.delenv("TWIN_PROGRESS", raising=False)
    monkeypatch.setattr(launcher.ServerProcess, "start", lambda *args, **kwargs: _Server())
    for name in ("startup_figures", "tem_figures", "engine_figures", "low_magnification_figures",
                 "stem_figures", "analytical_figures", "live_view_figures", "transport_figures",
                 "episode_figures"):
        monkeypatch.setattr(bench, name, lambda *args: {"serve_to_first_1024_image_s": 1.0})
    monkeypatch.setattr(bench, "afm_figures", lambda server: {})
    monkeypatch.setattr(bench, "acquisition_seconds", lambda config: (0.5, 0.25))
    monkeypatch.setattr("twin.datasets.generate", lambda *args, **kwargs: _Report())
    steps = bench.Steps()
    figures = bench.measure(steps)
    assert list(steps.seconds) == list(bench.STEPS)
    assert figures["datasets"]["two_workers_items_per_s"] == 2.0
    shown = stream.getvalue()
    where = [shown.index(f"twin bench: {name}: ") for name in bench.STEPS]
    assert where == sorted(where) and "<?]" in shown  # no estimate before the first step has ended
    last = shown[where[-1]:].split("\r")[0]
    before = sum(list(bench.STEPS.values())[:-1]) / sum(bench.STEPS.values())
    assert f"{100 * before:3.0f}%|" in last  # the steps done, weighed by their usual durations


def test_the_bench_shows_no_bar_in_a_log_file_or_when_progress_is_switched_off(monkeypatch):
    for stream, switch in ((io.StringIO(), "1"), (_Terminal(), "0")):
        monkeypatch.setattr(sys, "stderr", stream)
        monkeypatch.setenv("TWIN_PROGRESS", switch)
        steps = bench.Steps()
        with steps("STEM"):
            pass
        steps.close()
        assert stream.getvalue() == "" and list(steps.seconds) == ["STEM"]


def test_the_hackathon_bench_reports_both_servers_side_by_side_and_the_front_door_cost(monkeypatch, capsys):
    from twin import bench_hackathon

    def side(start: float) -> dict:
        return {"start_s": start, "all_teams_s": start * 10, "median_team_s": start * 3,
                "cheap_call_ms": start / 10, "haadf_256_s": start / 100, "resume_s": start * 2}

    fake = {"teams": 7, "workers": 3, "one_process": side(2.0), "on_workers": side(5.0),
            "speedup_all_teams": 1.75, "speedup_resume": 1.25, "front_door_overhead_ms": 0.3,
            "overhead_over_haadf_256": 0.15}
    calls = []

    def measure(teams: int, workers: int) -> dict:
        calls.append((teams, workers))
        return fake

    monkeypatch.setattr(bench_hackathon, "measure", measure)
    assert main(["bench", "--hackathon", "--teams", "7", "--workers", "3"]) == 0
    text = capsys.readouterr().out
    assert calls == [(7, 3)]
    assert "7 teams on 1 process and on 3 workers" in text
    for one, many in (("20.0", "50.0"), ("0.20", "0.50"), ("20.0", "50.0"), ("4.0", "10.0")):
        assert re.search(rf"{re.escape(one)}\s+{re.escape(many)}", text), text
    assert "all teams x1.75, the restart x1.25" in text and "+0.30 ms (+15.0% of a HAADF 256²)" in text
    assert main(["bench", "--hackathon", "--json", "--teams", "7", "--workers", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == fake
    with pytest.raises(SystemExit, match="--workers = 1"):
        main(["bench", "--hackathon", "--workers", "1"])
