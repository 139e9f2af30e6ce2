"""Twin instances: one sample, one pair of instruments and (in a challenge) one episode each.

A server hosts one or many. Each instance's remote objects carry its key in their ids
(``twin.tem.<key>``; the default instance keeps the plain ``twin.tem``), the key being its name or,
on a private server, a secret token. In a challenge, every call of an instance passes its episode's
gate (:meth:`Episode.call`): budgets, forbidden calls, hidden events, the journal.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from Pyro5 import callcontext
from Pyro5.api import expose

from twin import validation
from twin.common import wire
from twin.digital_twin import DigitalTwin
from twin.scenarios.episode import Episode
from twin.scenarios.secret import OrganiserKey
from twin.scenarios.spec import Scenario
from twin.server.live.board import Board
from twin.server.live.publish import publish_afm_frame
from twin.server.services import AfmService, SampleService, TemService
from twin.server.signatures import checked_calls

DEFAULT = "default"
TARGETS = {"tem": wire.TEM_OBJECT, "afm": wire.AFM_OBJECT, "sample": wire.SAMPLE_OBJECT}


def caller() -> str:
    """Who is calling: the client's address on a remote call, 'local' otherwise."""
    address = getattr(callcontext.current_context, "client_sock_addr", None)
    return f"{address[0]}:{address[1]}" if address else "local"


UNGATED = ("progress",)  # reads of work in progress: neither counted nor journalled, never waiting


def _gated(service: object, target: str, episode: Episode) -> object:
    """A remote object with ``service``'s public methods, each passing ``episode``'s gate (but the
    :data:`UNGATED` ones, which must not wait for the call they report on)."""

    def route(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        bound = functools.partial(function, service)
        if name in UNGATED:
            return lambda _self, *args, **kwargs: bound(*args, **kwargs)

        def method(_self: object, *args: Any, **kwargs: Any) -> Any:
            return episode.call(f"{target}.{name}", bound, args, kwargs, caller())

        method.__name__, method.__doc__ = name, function.__doc__
        return method

    methods = {name: route(name, function) for name, function in vars(type(service)).items()
               if callable(function) and not name.startswith("_")}
    return expose(type(f"Gated{type(service).__name__}", (), methods))()


def object_ids(targets: Iterable[str], key: str) -> dict[str, str]:
    """Target ('tem', 'episode', ...) -> the Pyro object id of an instance's ``target`` under ``key``."""
    bases = TARGETS | {"episode": wire.EPISODE_OBJECT}
    return {target: wire.object_id(bases[target], None if key == DEFAULT else key) for target in targets}


def journal_path(journal_dir: str | Path, scenario: str, seed: int, name: str, number: int = 1) -> Path:
    """Where episode ``number`` of ``name`` playing ``scenario`` from ``seed`` writes its journal."""
    stem = f"{scenario}-seed{seed}-{name}"
    return Path(journal_dir) / (f"{stem}.jsonl" if number == 1 else f"{stem}-{number}.jsonl")


def journals_of(journal_dir: str | Path, scenario: str, seed: int, name: str) -> list[Path]:
    """The journals of ``name``'s episodes of ``scenario`` from ``seed`` so far, oldest first."""
    found: list[Path] = []
    while (path := journal_path(journal_dir, scenario, seed, name, len(found) + 1)).exists():
        found.append(path)
    return found


@dataclass
class Instance:
    """One independent twin behind its own remote objects."""

    name: str
    twin: DigitalTwin
    episode: Episode | None = None
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    objects: dict[str, object] = field(default_factory=dict)  # target ('tem', ...) -> remote object
    score_details: bool = True  # whether the team sees how its score came about (the truth, often)
    board: Board = field(default_factory=Board)  # what the live page shows of this instance

    def __post_init__(self) -> None:
        board, reveal = self.board, self.twin.ground_truth
        self.twin.afm.on_frame = lambda frame, clock: publish_afm_frame(board, frame, clock, reveal)
        services = {"tem": TemService(self.twin, self.board), "afm": AfmService(self.twin),
                    "sample": SampleService(self.twin)}
        for target, service in services.items():
            self.objects[target] = service if self.episode is None else _gated(service, target, self.episode)
        if self.episode is not None:
            self.objects["episode"] = EpisodeService(self.episode, self)

    @classmethod
    def playing(cls, name: str, scenario: Scenario, seed: int, journal_dir: str | Path | None = None,
                wall_clock: bool = True, key: OrganiserKey | None = None) -> Instance:
        """An instance playing ``scenario`` from ``seed`` (with the organiser's ``key``, if given: see
        :class:`Episode`); its journal goes to ``journal_dir`` if given."""
        path = None
        if journal_dir is not None:  # a restarted server never overwrites an earlier episode's journal
            stem = f"{scenario.name}-seed{seed}-{name}"
            path, again = Path(journal_dir) / f"{stem}.jsonl", 1
            while path.exists():
                again += 1
                path = Path(journal_dir) / f"{stem}-{again}.jsonl"
        episode = Episode(scenario, seed, name, path, wall_clock, key)
        return cls(name, episode.twin, episode)

    def object_ids(self, key: str) -> dict[str, str]:
        """Target -> the Pyro object id under ``key``."""
        return object_ids(self.objects, key)

    def invoke(self, call: str, args: list, kwargs: dict) -> Any:
        """Make the call ``call`` ('tem.set', 'episode.submit') locally, as a client would remotely."""
        target, method = call.split(".", 1)
        return getattr(self.objects[target], method)(*args, **kwargs)

    def row(self, names: bool = True, seeds: bool = False, budgets: bool = False) -> dict[str, Any]:
        """This instance's leaderboard row (never its token or hidden state); its name and seed only if
        asked for (the organiser's view), its budgets (spent, limit, unit) only if asked for (an open
        server's live scoreboard)."""
        name = self.name if names else None
        if self.episode is None:
            return {"instance": name, "scenario": None, "score": None, "calls": None, "over": False}
        status = self.episode.status()
        score = status["score"]
        row = {"instance": name, "scenario": self.episode.scenario.name,
               "score": None if score is None else score["score"],
               "calls": status["budgets"]["calls"]["spent"], "over": status["over"]}
        if budgets:
            row["budgets"] = {kind: {"spent": b["spent"], "limit": b.get("limit"), "unit": b.get("unit", "")}
                              for kind, b in status["budgets"].items()}
        return {**row, "seed": self.episode.seed} if seeds else row


def shown_to_team(outcome: dict[str, Any] | None, details: bool) -> dict[str, Any] | None:
    """A scored answer as its team sees it: the score, and how it came about only if the organiser allows
    (details name true positions, focus, frames: a team could pass them to another with the same seed)."""
    if outcome is None or details:
        return outcome
    return {"score": outcome["score"], "details": {}}


@expose
@checked_calls("episode")
class EpisodeService:
    """The challenge as seen by a team: goal, budgets, the answer, the journal."""

    def __init__(self, episode: Episode, instance: Instance) -> None:
        self._episode = episode
        self._instance = instance

    def scenario(self) -> dict[str, Any]:
        """Title, goal, answer format, budgets and refused calls."""
        return self._episode.scenario.describe()

    def status(self) -> dict[str, Any]:
        """Budgets spent and left, whether the episode is over, the score once answered."""
        status = self._episode.status()
        return {**status, "score": shown_to_team(status["score"], self._instance.score_details)}

    def submit(self, answer: Any = None) -> dict[str, Any]:
        """Hand in the answer (once): returns ``{"score": 0..1, "details": {...}}`` (details only where the
        organiser allows them)."""
        outcome = self._episode.submit(answer if answer is not None else {}, caller())
        return shown_to_team(outcome, self._instance.score_details)

    def journal(self, start: int = 0) -> list[dict[str, Any]]:
        """Journal entries from number ``start`` on (a scored answer's details only where allowed)."""
        entries = self._episode.journal.entries[validation.integer("start", start, 0, 2**31):]
        if self._instance.score_details:
            return entries
        return [{**e, "result": shown_to_team(e["result"], False)} if e["call"] == "episode.submit"
                and "result" in e else e for e in entries]


@expose
@checked_calls("hub")
class HubService:
    """A server's instances and their scores: to everyone, names (none on a private server) and scores;
    to the organiser (who shows :meth:`OrganiserKey.organiser_token`), names and seeds as well."""

    def __init__(self, instances: list[Any], private: bool = False, key: OrganiserKey | None = None
                 ) -> None:
        """``instances``: :class:`Instance` (or, on a server with workers, what stands for them there)."""
        self._instances = instances
        self._private = private
        self._key = key

    def _rows(self, organiser: str | None) -> list[dict[str, Any]]:
        trusted = self._key is not None and self._key.is_organiser(organiser)
        if organiser is not None and not trusted:
            raise PermissionError("organiser = that is not this server's organiser token (give the key file "
                                  "of this event: twin scenario leaderboard --key FILE)")
        return self._table(trusted or not self._private, trusted)

    def _table(self, names: bool, seeds: bool) -> list[dict[str, Any]]:
        """Every instance's row, in order (see :meth:`Instance.row`)."""
        return [i.row(names=names, seeds=seeds) for i in self._instances]

    def instances(self, organiser: str | None = None) -> list[dict[str, Any]]:
        return self._rows(organiser)

    def leaderboard(self, organiser: str | None = None) -> list[dict[str, Any]]:
        """Answered instances by score (best first), then the ones still playing."""
        rows = [r for r in self._rows(organiser) if r["scenario"] is not None]  # instances in a challenge
        return sorted(rows, key=lambda r: (r["score"] is None, -(r["score"] or 0.0), r["instance"] or ""))

    def ping(self) -> bool:
        return True
