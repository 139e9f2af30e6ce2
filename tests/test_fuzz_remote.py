"""A fuzzer over every remote method of both instruments, the sample, the hub and a challenge.

Hypothesis draws a method and arguments (junk of every kind: NaN, infinities, NUL bytes, long strings,
nested lists, mappings with integer keys, wrong argument counts) and calls it over a real Pyro5
connection to a server on 127.0.0.1. Every call must end in a result or in a refusal a user can act
on: one of the error classes the clients translate, with a message that names no server internals,
and a refused setting or stage move changes nothing. Nonsense numbers (NaN, infinity) are never
accepted. The server must answer throughout. Derandomized: the same calls every run.
"""

from __future__ import annotations

import inspect
import math
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from Pyro5 import errors

from clients._remote import open_proxy
from tests.test_hostile_clients import peak_memory
from twin.server import wire
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"
CALLS = 1500
REFUSALS = (ValueError, TypeError, RuntimeError, PermissionError, KeyError)
INTERNALS = re.compile(r"Traceback|site-packages|File \"|\w+Service\b|\bself\b|object at 0x|strict_map_key")
SETTING_NAMES = ["optics.focus", "optics.magnification", "optics.optical_mode", "optics.beam_shift",
                 "detectors.HAADF.inserted", "source.acceleration_voltage", "twin.drift",
                 "Scan.Points", "Scan.ImageWidth", "ZController.SetPoint", "OperatingMode.OperatingMode"]
FIGURES: Counter[str] = Counter()

leaves = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1), st.integers(-3, 5000),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e-3, 1e-3),
    st.text(max_size=40), st.binary(max_size=40),
    st.sampled_from(SETTING_NAMES + ["HAADF", "BM-Ceta", "Flucam", "x", "a", "", "\0", "../../etc/passwd",
                                     "C:\\Users\\lab", "~", "x" * 10_000, "stem_auto_focus"]),
)
nested = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8) | st.sampled_from("xyzab"), inner, max_size=5),
    ),
    max_leaves=10,
)
values = st.one_of(nested, nested, nested, nested, nested, nested, nested, nested, nested,  # 1 in 10:
                   st.dictionaries(st.integers(-2, 5), nested, min_size=1, max_size=3))  # integer keys


def nonsense_numbers(value: Any) -> bool:
    """Whether ``value`` holds a NaN or an infinity anywhere."""
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(nonsense_numbers(v) for v in value)
    if isinstance(value, dict):
        return any(nonsense_numbers(v) for v in value.values())
    return False


def parameters() -> dict[str, dict[str, list[inspect.Parameter]]]:
    """Each remote object's methods and their parameters, as the clients know them."""
    from twin.server.instances import EpisodeService, HubService
    from twin.server.services import AfmService, SampleService, TemService

    classes = {wire.TEM_OBJECT: TemService, wire.AFM_OBJECT: AfmService, wire.SAMPLE_OBJECT: SampleService,
               wire.HUB_OBJECT: HubService, wire.EPISODE_OBJECT: EpisodeService}
    return {base: {name: list(inspect.signature(function).parameters.values())[1:]
                   for name, function in vars(cls).items() if callable(function) and not name.startswith("_")}
            for base, cls in classes.items()}


def setting_values(setting: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values for one setting as ``describe()`` lists it: allowed ones, edges, just outside, junk."""
    if "allowed" in setting:
        return st.sampled_from(setting["allowed"]) | values
    lo, hi = setting["min"], setting["max"]
    if isinstance(lo, (int, float)) and isinstance(hi, (int, float)):
        edges = st.sampled_from([lo, hi, lo - abs(lo) - 1, hi + abs(hi) + 1])
        inside = st.integers(int(lo), int(hi)) if isinstance(lo, int) else st.floats(lo, hi)
        points = st.tuples(st.floats(lo, hi), st.floats(lo, hi)).map(list)
        return inside | edges | points | values
    return values


SMALL_SIZES = st.sampled_from([16, 32, 64, 128, 256, 512]) | st.integers(-5, 5000)
BY_PARAMETER = {
    "camera": st.sampled_from(["BM-Ceta", "Flucam"]),
    "detectors": st.lists(st.sampled_from(["HAADF", "ADF", "ABF", "BF", "DF-S"]), max_size=3),
    "size": SMALL_SIZES, "rows": SMALL_SIZES, "columns": SMALL_SIZES,
    "exposure_time": st.floats(1e-9, 0.05), "dwell_time": st.floats(1e-9, 1e-5),
    "target": st.dictionaries(st.sampled_from("xyzab"), st.floats(-2e-6, 2e-6) | st.none(), max_size=5),
    "relative": st.booleans(), "safe": st.booleans(), "reset_blanker": st.booleans(),
    "window": st.fixed_dictionaries({k: st.floats(-2e-8, 2e-8) for k in ("x_min", "y_min", "x_max",
                                                                          "y_max")}),
    "axis": st.sampled_from("xyzab") | st.sampled_from(["X", "Y", "Z"]),
    "x": st.floats(-1e-6, 1e-6), "y": st.floats(-1e-6, 1e-6), "z": st.floats(-1e-7, 1e-7),
    "group": st.integers(-1, 3), "channel": st.integers(-1, 5), "line": st.integers(-2, 600),
}


def arguments(data: Any, method: list[inspect.Parameter], settings_of: list[dict[str, Any]]) -> list[Any]:
    """Arguments for a method: mostly as many as it takes, each near what it expects or junk; now and
    then too few or too many."""
    required = sum(p.default is inspect.Parameter.empty for p in method)
    if data.draw(st.integers(0, 9), label="arity wrong?") == 0:
        return data.draw(st.lists(values, max_size=5), label="any arguments")
    count = data.draw(st.integers(required, len(method)), label="count")
    drawn: list[Any] = []
    setting: dict[str, Any] | None = None
    for parameter in method[:count]:
        if parameter.name == "name" and settings_of:
            setting = data.draw(st.sampled_from(settings_of), label="setting")
            strategy = st.just(setting["name"]) | values
        elif parameter.name == "value" and setting is not None:
            strategy = setting_values(setting)
        else:
            strategy = BY_PARAMETER.get(parameter.name, values) | values
        drawn.append(data.draw(strategy, label=parameter.name))
    return drawn


@pytest.fixture(scope="module")
def targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Proxies to every remote object of a plain twin and of a challenge's team, with their methods."""
    files = tmp_path_factory.mktemp("fuzz")
    plain = ServerProcess.start("--data-dir", str(files / "plain"), seed=3)
    challenge = ServerProcess.start("--scenario", "stem-atom-finding", "--teams", "1", "--journal-dir",
                                    str(files / "journals"), "--data-dir", str(files / "challenge"))
    proxies = {}
    for base in (wire.TEM_OBJECT, wire.AFM_OBJECT, wire.SAMPLE_OBJECT, wire.HUB_OBJECT):
        proxies[base] = open_proxy(base, HOST, plain.port)
    proxies["team:" + wire.EPISODE_OBJECT] = open_proxy(wire.EPISODE_OBJECT, HOST, challenge.port, "team-01")
    proxies["team:" + wire.TEM_OBJECT] = open_proxy(wire.TEM_OBJECT, HOST, challenge.port, "team-01")
    for proxy in proxies.values():
        proxy._pyroTimeout = 60.0
    methods = [(name, method) for name, proxy in proxies.items() for method in sorted(proxy._pyroMethods)]
    settings_of = {wire.TEM_OBJECT: proxies[wire.TEM_OBJECT].describe()["settings"],
                   wire.AFM_OBJECT: proxies[wire.AFM_OBJECT].describe()["settings"]}
    settings_of = {base: [s for s in listed if s["name"] != "twin.stem_mode"]  # exact STEM: minutes a frame
                   for base, listed in settings_of.items()}
    yield {"proxies": proxies, "methods": methods, "servers": (plain, challenge), "settings": settings_of,
           "parameters": parameters()}
    for proxy in proxies.values():
        proxy._pyroRelease()
    print("\nfuzzer figures:", dict(sorted(FIGURES.items())))
    for server in (plain, challenge):
        assert server.stop() == 0


def state_of(proxy: Any, method: str, args: list[Any]) -> Any:
    """What a refused ``method(*args)`` must leave as it was (None: nothing to compare)."""
    if method == "set" and args and isinstance(args[0], str) and args[0] in SETTING_NAMES:
        try:
            return proxy.get(args[0])
        except REFUSALS:  # a setting of the other instrument
            return None
    if method == "move_stage":
        return proxy.stage_position()
    return None


@settings(max_examples=CALLS, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_every_remote_call_ends_in_a_result_or_a_clear_refusal(targets: dict[str, Any], data: Any) -> None:
    name, method = data.draw(st.sampled_from(targets["methods"]), label="method")
    base = name.split(":")[-1]
    args = arguments(data, targets["parameters"][base][method], targets["settings"].get(base, []))
    proxy = targets["proxies"][name]
    before = state_of(proxy, method, args)
    FIGURES["calls"] += 1
    try:
        getattr(proxy, method)(*args)
    except REFUSALS as refusal:
        FIGURES[f"refused {type(refusal).__name__}"] += 1
        message = str(refusal)
        assert message and len(message) < 4000, (name, method, args, message[:200])
        assert not INTERNALS.search(message), (name, method, message)
        assert not getattr(refusal, "_pyroTraceback", None)
        if before is not None:
            assert state_of(proxy, method, args) == before, (name, method, args)  # a refusal changes nothing
        return
    except errors.TimeoutError:
        pytest.fail(f"{name}.{method}{tuple(args)!r} took more than 60 s")
    FIGURES["accepted"] += 1
    if method not in ("echo",):
        assert not nonsense_numbers(args), f"{name}.{method}{tuple(args)!r} accepted NaN or infinity"


def test_the_fuzzed_servers_still_serve_and_stayed_small(targets: dict[str, Any]) -> None:
    for server in targets["servers"]:
        assert server.process.poll() is None
        sample = open_proxy(wire.SAMPLE_OBJECT, HOST, server.port,
                            None if server is targets["servers"][0] else "team-01")
        assert sample.ping()
        sample._pyroRelease()
        FIGURES[f"peak MiB {server.port}"] = peak_memory(server.process.pid) >> 20
        assert peak_memory(server.process.pid) < 4 << 30  # bytes
