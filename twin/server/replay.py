"""Replaying a journal: the same scenario, seed and calls, made again in order, must give the same data."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from twin.common import progress as shown
from twin.scenarios import journal, spec
from twin.scenarios.secret import OrganiserKey, key_for_journal
from twin.server.instances import Instance


@dataclass
class Replay:
    """What a replay did: the calls made again, which of them differ from the journal, the score."""

    instance: Instance
    calls: int
    differing: list[int] = field(default_factory=list)  # entry numbers whose result or error differ
    results: list[Any] | None = None  # every call's result (None where it raised), if asked for
    recorded_score: float | None = None

    @property
    def score(self) -> float | None:
        result = self.instance.episode.result
        return None if result is None else result.value

    @property
    def identical(self) -> bool:
        return not self.differing


def _plain(entry: dict[str, Any]) -> Any:
    return json.loads(json.dumps(journal.deterministic(entry)))


def scenario_of(header: dict[str, Any]) -> spec.Scenario:
    """The scenario a journal was written for; refuses one whose file has changed since."""
    file = header.get("scenario_file")
    scenario = spec.load(file if file and Path(file).is_file() else header["scenario"])
    if scenario.digest != header.get("scenario_digest"):
        raise ValueError(f"scenario {header['scenario']!r} has changed since the journal was written "
                         f"(digest {scenario.digest} != {header.get('scenario_digest')}); replay needs the "
                         "same file")
    return scenario


#: s a call is counted at least, for the time left: the gate and the journal's own work (a read of a
#: setting is journalled as taking a few µs)
_LEAST_CALL_SECONDS = 1e-3


def _bar(name: str, entries: list[dict[str, Any]], show: bool, leave: bool) -> tuple[Any, list[float]]:
    """A bar over the journal's calls whose time left assumes each call takes as long again as it did
    when journalled (an image for seconds, a read for microseconds), not that every call is alike; it
    stays on screen at the end (how long the replay took) if ``leave``."""
    weights = [max(entry.get("seconds", 0.0), _LEAST_CALL_SECONDS) for entry in entries]
    return shown.bar(total=sum(weights), desc=f"replaying {name}", disable=not show or not entries,
                     mininterval=0.5, leave=leave,
                     bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]",
                     postfix=f"0/{len(entries)} calls"), weights


def _replayed(path: str | Path, keep_results: bool = False, key_file: str | Path | None = None,
              progress: bool = False, leave: bool = True, key: OrganiserKey | None = None
              ) -> tuple[dict[str, Any], list[dict[str, Any]], Replay]:
    """The journal at ``path`` (header, entries) and its calls made again on a fresh instance, each
    result compared with the journal's. A journal played with the organiser's key needs it (``key``, or
    read from ``key_file`` or ``organiser.key`` beside the journal). ``progress``: a bar over the calls on
    stderr (a terminal)."""
    header, entries = journal.read(path)
    if key is None or header.get("key") is None:
        key = key_for_journal(path, key_file, header.get("key"))
    elif key.id != header["key"]:
        raise ValueError(f"journal {str(path)!r} was played with key {header['key']}, not this server's key "
                         f"{key.id}")
    instance = Instance.playing(header["instance"], scenario_of(header), header["seed"], wall_clock=False,
                                key=key)
    done = Replay(instance, len(entries), results=[] if keep_results else None)
    bar, weights = _bar(Path(path).name, entries, progress, leave)
    with bar:
        for number, (entry, weight) in enumerate(zip(entries, weights, strict=True), 1):
            _replay_one(instance, entry, done)
            bar.set_postfix_str(f"{number}/{len(entries)} calls", refresh=False)
            bar.update(weight)
    return header, entries, done


def _replay_one(instance: Instance, entry: dict[str, Any], done: Replay) -> None:
    """Make the journalled call ``entry`` again on ``instance``; note in ``done`` whether it differs."""
    if isinstance(entry["args"], dict) and journal.OMITTED in entry["args"]:
        instance.episode.journal.entries.append(entry)  # a refusal too large to keep: it changed nothing
        instance.episode.calls += entry["counted"]
        if done.results is not None:
            done.results.append(None)
        return
    result = None
    args, kwargs = journal.decode(entry["args"]), journal.decode(entry["kwargs"])
    with contextlib.suppress(Exception):  # refusals are journalled and compared like results
        result = instance.invoke(entry["call"], args, kwargs)
    again = instance.episode.journal.entries[-1]
    if again["n"] != entry["n"] or _plain(again) != _plain(entry):
        done.differing.append(entry["n"])
    if done.results is not None:
        done.results.append(result)
    if entry["call"] == "episode.submit" and "result" in entry:
        done.recorded_score = entry["result"]["score"]


def replay(path: str | Path, keep_results: bool = False, key_file: str | Path | None = None,
           progress: bool = False) -> Replay:
    """Make every call journalled at ``path`` again on a fresh instance; compare each result.
    ``progress``: a bar over the calls, with the time left, on stderr when it is a terminal."""
    return _replayed(path, keep_results, key_file, progress)[2]


def resume(path: str | Path, key_file: str | Path | None = None, progress: bool = False,
           key: OrganiserKey | None = None) -> Replay:
    """The instance whose journal is at ``path``, brought back to where its calls left it (a restarted
    server): the calls are made again and must give the same data; new calls are appended to ``path``;
    the wall time the episode had used is carried over, the time the server was down is not. ``key``:
    the organiser's key, if at hand (else read as :func:`replay` does)."""
    header, entries, done = _replayed(path, key_file=key_file, progress=progress, leave=False, key=key)
    if done.differing:
        raise ValueError(f"journal {str(path)!r} cannot be carried on: entries {done.differing[:5]} come out "
                         "differently (another version of the twin, an edited journal or scenario file?); "
                         "start a new episode instead")
    episode = done.instance.episode
    episode.journal.carry_on(path, header, entries)
    episode.wall_clock = True
    if entries:
        used = (datetime.fromisoformat(entries[-1]["wall"]) - datetime.fromisoformat(entries[0]["wall"]))
        episode.earlier = used.total_seconds() + entries[0]["seconds"]  # the first call's own time too
    episode.started = None  # the clock goes on at the team's next call: no downtime is charged
    return done
