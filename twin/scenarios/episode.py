"""One team's run of a scenario: the twin in its hidden state, the budget, the journal and the score.

Every instrument call goes through :meth:`Episode.call`: refused if the scenario forbids it, the episode
is over or a budget is spent; otherwise run (one call at a time, so the journal's order is the order
things happened), charged, journalled, and followed by any hidden event that is due.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twin import __version__
from twin.common.errors import BudgetExhausted
from twin.scenarios.journal import REFUSED_ARGUMENTS_BYTES, Journal, rough_size
from twin.scenarios.scoring import READS_IMAGES, SCORERS, Context, Score
from twin.scenarios.secret import OrganiserKey
from twin.scenarios.spec import Scenario, apply

CALL_ARGUMENTS_BYTES = REFUSED_ARGUMENTS_BYTES  # what one call of a team may send (and so journal)
JOURNAL_BYTES = 64 << 20  # what one team's journal may grow to

IMAGE_CALLS = {"tem.acquire_camera_image": "tem", "tem.acquire_stem_images": "tem", "afm.get_frame": "afm"}
KEPT_IMAGES = 32  # the last images an answer may refer to by frame index ...
KEPT_IMAGE_BYTES = 256 * 2**20  # ... as long as they fit in this


class Episode:
    """A scenario played from ``seed`` by one instance.

    With the organiser's ``key`` (a served challenge) everything hidden is drawn from the key and the
    seed together, so knowing the seed gives nothing; without one (practice, a Gym environment in process)
    from the seed alone."""

    def __init__(self, scenario: Scenario, seed: int, instance: str = "default",
                 journal_path: str | Path | None = None, wall_clock: bool = True,
                 key: OrganiserKey | None = None) -> None:
        """``wall_clock``: enforce the wall-time budget (a replay does not)."""
        self.scenario = scenario
        self.seed = seed
        self.instance = instance
        drawn_from = seed if key is None else key.episode_seed(scenario.name, seed)
        self.hidden = scenario.draw(drawn_from)
        self.twin = scenario.build(drawn_from, self.hidden)
        self.twin.resettable = False  # a reset would undo what the team's calls did
        self.journal = Journal({"scenario": scenario.name, "scenario_digest": scenario.digest,
                                "scenario_file": str(scenario.path) if scenario.path else None,
                                "seed": seed, "key": None if key is None else key.id, "instance": instance,
                                "version": __version__}, journal_path)
        self.wall_clock = wall_clock
        self.calls = 0
        self.started: float | None = None  # wall clock of the first call (since a restart)
        self.earlier = 0.0  # s of wall time the episode used before the server restarted
        self.result: Score | None = None
        self.images: OrderedDict[tuple[str, int], Any] = OrderedDict()
        self._pending = list(self.hidden.events)
        self._lock = threading.RLock()

    # --- the gate every call passes ------------------------------------------------------------
    def call(self, name: str, function: Callable[..., Any], args: tuple, kwargs: dict, caller: str) -> Any:
        """Run ``function(*args, **kwargs)``, the remote call ``name`` ('tem.acquire_camera_image').

        What one team may write is bounded: a call's arguments take at most ``CALL_ARGUMENTS_BYTES``
        (larger ones are refused before anything runs, and journalled by size), and once the journal
        holds ``JOURNAL_BYTES`` every call is refused unjournalled (nothing it could change is lost)."""
        if self.journal.bytes > JOURNAL_BYTES:
            raise BudgetExhausted(f"budget exhausted: this episode's journal holds "
                                  f"{self.journal.bytes >> 20} MiB, the most one team may write "
                                  f"({JOURNAL_BYTES >> 20} MiB)")
        with self._lock:
            began = time.perf_counter()
            instrument_time = self.twin.clock.now()
            admitted = False
            try:
                size = rough_size((args, kwargs))
                if size > CALL_ARGUMENTS_BYTES:
                    raise ValueError(f"{name}: arguments of about {size} bytes; a call in a challenge takes "
                                     f"at most {CALL_ARGUMENTS_BYTES} bytes of arguments")
                self._admit(name)
                self.calls += 1
                admitted = True
                result = function(*args, **kwargs)
            except Exception as error:
                self.journal.record(instrument_time=instrument_time, caller=caller, call=name, args=args,
                                    kwargs=kwargs, error=error, seconds=time.perf_counter() - began,
                                    counted=admitted)
                raise
            self._keep_image(name, result)
            self._fire_events()
            self.journal.record(instrument_time=instrument_time, caller=caller, call=name, args=args,
                                kwargs=kwargs, result=result, seconds=time.perf_counter() - began)
            return result

    def _admit(self, name: str) -> None:
        if self.result is not None:
            raise RuntimeError(f"episode over: the answer was scored ({self.result.value:.3f}); "
                               "no more instrument calls in this episode")
        if name in self.scenario.forbid:
            raise PermissionError(f"{name} is not allowed in scenario {self.scenario.name!r}")
        if self.started is None:  # the clock runs from the first call (after a restart: again from the next)
            self.started = time.monotonic() - self.earlier
        limit = self.scenario.budgets.get("calls")
        if limit is not None and self.calls + 1 > limit:
            raise BudgetExhausted(f"budget exhausted: calls = {self.calls} of {limit:g} made")
        wall = self.scenario.budgets.get("wall_time")
        if self.wall_clock and wall is not None and time.monotonic() - self.started > wall:
            raise BudgetExhausted(f"budget exhausted: wall_time = {time.monotonic() - self.started:.1f} of "
                                  f"{wall:g} s since the first call")

    def _keep_image(self, name: str, result: Any) -> None:
        instrument = IMAGE_CALLS.get(name)
        if instrument is None or self.scenario.score["function"] not in READS_IMAGES:
            return
        for image in result if isinstance(result, list) else [result]:
            metadata = image["metadata"]
            label = (metadata["binary_result"]["detector"] if instrument == "tem"
                     else f"{metadata['channel']['name']}/{metadata['group']}")
            key = (instrument, metadata["acquisition"]["frame_index"], label)
            self.images[key] = image
            self.images.move_to_end(key)
        while len(self.images) > 1 and (len(self.images) > KEPT_IMAGES or sum(
                getattr(i.get("data"), "nbytes", 0) for i in self.images.values()) > KEPT_IMAGE_BYTES):
            self.images.popitem(last=False)

    def counters(self) -> dict[str, int]:
        """What hidden events wait for: frames scanned or exposed so far, calls made."""
        return {"afm_frames": self.twin.afm.frames_scanned, "tem_frames": self.twin.tem.frames_taken,
                "calls": self.calls}

    def _fire_events(self) -> None:
        if not self._pending:
            return
        counters = self.counters()
        due = [e for e in self._pending if counters[e["counter"]] >= e["at"]]
        for event in due:
            for instrument, changes in event["set"].items():
                apply(self.twin, instrument, changes)
            self._pending.remove(event)

    # --- the end ---------------------------------------------------------------------------------
    def submit(self, answer: Any, caller: str = "") -> dict[str, Any]:
        """Score ``answer`` (once; a malformed answer is refused and the episode goes on)."""
        with self._lock:
            began = time.perf_counter()
            try:
                if self.result is not None:
                    raise RuntimeError(f"already scored: {self.result.value:.3f}; an episode takes one "
                                       "answer")
                self.result = self._score(answer)
            except Exception as error:
                self.journal.record(instrument_time=self.twin.clock.now(), caller=caller,
                                    call="episode.submit", args=(answer,), kwargs={}, error=error,
                                    seconds=time.perf_counter() - began)
                raise
            outcome = self.result.as_dict()
            self.journal.record(instrument_time=self.twin.clock.now(), caller=caller,
                                call="episode.submit", args=(answer,), kwargs={}, result=outcome,
                                seconds=time.perf_counter() - began)
            return outcome

    def _score(self, answer: Any) -> Score:
        params = {k: v for k, v in self.scenario.score.items() if k != "function"}
        context = Context(self.twin, self.hidden, params, dict(self.images), self.twin.usage.spent(),
                          self.calls)
        return SCORERS[self.scenario.score["function"]](context, answer)

    def status(self) -> dict[str, Any]:
        """Budgets spent and left, calls made, the score once answered (no seed, no hidden state).
        Reads without waiting for a call in progress (the leaderboard must not stall behind a long
        acquisition)."""
        spent = self.twin.usage.report()
        elapsed = self.earlier if self.started is None else time.monotonic() - self.started
        budgets = self.scenario.budgets
        spent["calls"] = {"spent": self.calls, "limit": budgets.get("calls"), "unit": ""}
        spent["wall_time"] = {"spent": elapsed, "limit": budgets.get("wall_time"), "unit": "s"}
        result = self.result
        return {"scenario": self.scenario.name, "instance": self.instance,
                "budgets": spent, "over": result is not None,
                "score": None if result is None else result.as_dict()}
