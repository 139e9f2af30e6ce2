"""``twin serve --workers N`` / ``--scheduler ADDRESS``: the teams' instances on Dask workers, one front door.

Each instance lives whole (twin, episode, journal writer) in an :class:`~twin.server.hosts.InstanceHost`
actor on some worker process, of this machine or of a cluster. The front door is the usual
:class:`~twin.server.daemon.TwinDaemon`: under each instance's object ids it registers objects with the
same methods as the real services, each forwarding the call (and the caller's address) to the actor, so a
client cannot tell where its twin lives; errors come back with their type and message. The leaderboard
asks every actor for its row at once and waits a short time for each.

A worker that dies takes only its own instances with it: each is built again on a living worker from its
journal (every completed call is journalled before its result is sent), under the same object ids and
tokens. A call cut short by the death is made again there if the journal proves it never ran, else it
gets a :class:`RuntimeError` saying so; calls arriving meanwhile wait for the instance to be back. A
client's hang-up is passed on to its call on the worker, whose long work stops.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from Pyro5 import callcontext
from Pyro5.api import expose

from twin.server.hosts import HostSpec, InstanceHost
from twin.server.instances import HubService, object_ids

log = logging.getLogger(__name__)

ROW_SECONDS = 0.5  # s the leaderboard waits for an instance's row before showing the last one it had
WATCH_SECONDS = 0.5  # s between looks at whether a worker holding instances has been lost
PING_SECONDS = 5.0  # s an instance's worker has to answer before it counts as lost


def _journalled(target: str, method: str) -> bool:
    """Whether the call ``target.method`` of an instance in a challenge goes to its journal (every
    instrument call but reads of work in progress, and the answer)."""
    from twin.server.instances import TARGETS, UNGATED

    return (target in TARGETS and method not in UNGATED) or (target, method) == ("episode", "submit")


class _NotJournalled(Exception):
    """A call's worker was lost before the call reached the journal: it may be made again."""


class InstanceDown(RuntimeError):
    """An instance cannot take calls: it could not be carried on from its journal."""


@dataclass
class Hosted:
    """One instance as the front door sees it: its spec, token, and the actor holding it now."""

    spec: HostSpec
    token: str
    scenario: str  # the scenario's name, for its rows while the actor cannot answer
    future: Any = None  # the Dask future of the actor
    actor: Any = None
    worker: str | None = None  # the address of the worker holding it
    generation: int = 0  # how many times it has been built
    down: str | None = None  # why it takes no calls, if it does not
    journalled: int = 0  # the journal's length as the last call returned (or the host was built) saw it
    forwarded: int = 0  # calls forwarded so far (each one's number)
    writing: int = 0  # calls that write to the journal, forwarded and not yet returned
    written: int = 0  # calls that write to the journal, forwarded so far

    def __post_init__(self) -> None:
        self.ready = threading.Condition()
        self.last_row: dict[tuple[bool, bool, bool], dict[str, Any]] = {}

    @property
    def name(self) -> str:
        return self.spec.name

    def row(self, names: bool = True, seeds: bool = False, budgets: bool = False) -> dict[str, Any]:
        """The row the instance had last (or an empty one, without budgets): its actor did not answer in
        time."""
        if (names, seeds, budgets) in self.last_row:
            return self.last_row[names, seeds, budgets]
        row = {"instance": self.name if names else None, "scenario": self.scenario, "score": None,
               "calls": None, "over": False}
        return {**row, "seed": self.spec.seed} if seeds else row


class Fleet:
    """The hosted instances and the Dask client reaching their workers; builds each instance on a worker
    and builds it again elsewhere when its worker is lost."""

    def __init__(self, client: Any, hosted: list[Hosted]) -> None:
        self.client = client
        self.hosted = hosted
        self._stop = threading.Event()
        self._rebuilding: set[str] = set()
        self._lock = threading.Lock()

    # --- placing instances ------------------------------------------------------------------
    def _workers(self) -> list[str]:
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def _least_busy(self, avoid: str | None = None) -> str | None:
        """The living worker holding fewest instances (not ``avoid`` unless it is the only one)."""
        workers = [w for w in self._workers() if w != avoid] or self._workers()
        if not workers:
            return None
        held = {w: 0 for w in workers}
        for hosted in self.hosted:
            if hosted.worker in held and hosted.down is None:
                held[hosted.worker] += 1
        return min(workers, key=lambda w: held[w])

    def _submit(self, hosted: Hosted, worker: str | None) -> None:
        """Build ``hosted`` on ``worker`` (only there; None: wherever the scheduler likes)."""
        hosted.generation += 1
        hosted.worker = worker
        hosted.future = self.client.submit(
            InstanceHost, hosted.spec, actor=True, key=f"twin-{hosted.name}-{hosted.generation}-"
            f"{secrets.token_hex(4)}", workers=None if worker is None else [worker])

    def _settle(self, hosted: Hosted) -> str:
        """Wait for ``hosted``'s actor, placing it again if its worker leaves before building it; returns
        how it came about (raises what building it raised)."""
        while True:
            try:
                actor = hosted.future.result(timeout=WATCH_SECONDS)
                break
            except TimeoutError:
                if hosted.worker is not None and hosted.worker not in self._workers():
                    hosted.future.release()
                    self._submit(hosted, self._least_busy(avoid=hosted.worker))
        built = actor.origin().result()
        where = self.client.who_has([hosted.future]).get(hosted.future.key) or (None,)
        with hosted.ready:
            hosted.actor, hosted.worker, hosted.down, hosted.journalled = actor, where[0], None, built.calls
            hosted.ready.notify_all()
        if not built.carried_on:
            return "a new episode"
        return (f"carried on its journal ({built.calls} call{'' if built.calls == 1 else 's'} made again; "
                f"{'answered' if built.answered else 'playing'})")

    def start(self, report: Callable[[str], None]) -> None:
        """Build every instance, spread evenly over the workers, all at once (each worker one after another);
        ``report`` gets a line per instance. One that cannot be carried on is dropped (with its line)."""
        workers = self._workers()
        for number, hosted in enumerate(self.hosted):
            self._submit(hosted, workers[number % len(workers)] if workers else None)
        kept = []
        for hosted in self.hosted:
            try:
                report(f"  {hosted.name}: {self._settle(hosted)} on {hosted.worker}")
                kept.append(hosted)
            except ValueError as error:  # one broken journal does not keep every other team waiting
                report(f"  {hosted.name}: NOT SERVED: {error}")
                hosted.future.release()
        if not kept:
            raise ValueError("no instance could be built (see above)")
        self.hosted[:] = kept
        threading.Thread(target=self._watch, name="twin-workers-watch", daemon=True).start()

    # --- calls --------------------------------------------------------------------------------
    def call(self, hosted: Hosted, target: str, method: str, args: tuple, kwargs: dict) -> Any:
        """``target.method(*args, **kwargs)`` on ``hosted``'s actor, as the current Pyro client made it.
        If the actor's worker is lost meanwhile, the instance is built again elsewhere and the call made
        there when it provably was not journalled (a read the journal never holds; or no other journalled
        call of the instance ran alongside and the journal carried on holds no more entries than the front
        door has seen returned); else it fails with :class:`RuntimeError`."""
        address = getattr(callcontext.current_context, "client_sock_addr", None)
        caller = tuple(address[:2]) if address else None
        try:
            return self._forward(hosted, target, method, list(args), kwargs, caller, True)
        except _NotJournalled:
            return self._forward(hosted, target, method, list(args), kwargs, caller, False)

    def _forward(self, hosted: Hosted, target: str, method: str, args: list, kwargs: dict,
                 caller: tuple | None, may_retry: bool) -> Any:
        """One try of :meth:`call`; raises :class:`_NotJournalled` if ``may_retry`` and the worker was lost
        before the call reached the journal."""
        with hosted.ready:
            hosted.ready.wait_for(lambda: hosted.actor is not None or hosted.down is not None)
            if hosted.actor is None:
                raise InstanceDown(f"instance {hosted.name!r} is not available: {hosted.down}")
            actor, generation, seen = hosted.actor, hosted.generation, hosted.journalled
            hosted.forwarded += 1
            number, writes = hosted.forwarded, _journalled(target, method)
            alone = hosted.writing == 0
            if writes:
                hosted.writing += 1
                hosted.written += 1
            mark = hosted.written
        try:
            called = actor.call(target, method, args, kwargs, caller, number)
            result, journalled = self._awaited(actor, called, number)
        except OSError as error:
            if self._answers(actor):
                raise  # the call's own error
            log.warning(f"instance {hosted.name}: {target}.{method} failed with its worker: {error!r}")
            alone = alone and hosted.written == mark
            self._rebuild(hosted, generation)
            if may_retry and (not writes or alone and hosted.journalled == seen):
                raise _NotJournalled from None
            why = "a retry" if not may_retry else "others ran alongside" if not alone else "journal went on"
            log.warning(f"instance {hosted.name}: {target}.{method} not made again ({why})")
            raise RuntimeError(
                f"{target}.{method}: the worker process holding instance {hosted.name!r} stopped during this "
                "call; the instance was carried on from its journal on another worker (every completed call "
                "is kept: episode.journal() shows whether this one was)") from None
        finally:
            if writes:
                with hosted.ready:
                    hosted.writing -= 1
        with hosted.ready:
            hosted.journalled = max(hosted.journalled, journalled)
        return result

    @staticmethod
    def _awaited(actor: Any, future: Any, number: int) -> Any:
        """``future``'s result (call ``number`` on ``actor``), telling the actor if the client hangs up
        meanwhile, so that the call's long work stops as on a one-process server."""
        from twin.server.hangups import PERIOD_SECONDS, WATCHER

        with WATCHER.watching() as gone:
            while True:
                try:
                    return future.result(timeout=PERIOD_SECONDS)
                except TimeoutError:
                    if gone.is_set():
                        actor.hang_up(number)
                        return future.result()

    def _answers(self, actor: Any) -> bool:
        try:
            actor.process().result(timeout=PING_SECONDS)
            return True
        except Exception:
            return False

    def rows(self, names: bool, seeds: bool, budgets: bool = False) -> list[dict[str, Any]]:
        """Every instance's row (see :meth:`Instance.row`), asked of all at once; one not answering within
        :data:`ROW_SECONDS` shows the row it had last."""
        asked = [(h, None if h.actor is None else h.actor.row(names, seeds, budgets)) for h in self.hosted]
        deadline = time.monotonic() + ROW_SECONDS
        rows = []
        for hosted, future in asked:
            try:
                if future is None:
                    raise InstanceDown(hosted.name)
                row = future.result(timeout=max(deadline - time.monotonic(), 0.001))
                hosted.last_row[names, seeds, budgets] = row
            except Exception:  # a busy, lost or rebuilding instance: its last row
                row = hosted.row(names, seeds, budgets)
            rows.append(row)
        return rows

    # --- losing a worker --------------------------------------------------------------------------
    def _watch(self) -> None:
        """Build again, from its journal, every instance whose worker Dask reports lost."""
        while not self._stop.wait(WATCH_SECONDS):
            for hosted in list(self.hosted):
                future = hosted.future
                if future is not None and future.status == "error" and hosted.actor is not None:
                    self._rebuild(hosted, hosted.generation)

    def _rebuild(self, hosted: Hosted, lost: int) -> None:
        """Build ``hosted`` again on another worker (once per loss: ``lost`` is the generation lost);
        returns when it is back or down for good."""
        with self._lock:
            if hosted.generation != lost or hosted.name in self._rebuilding:
                rebuilding = True
            else:
                rebuilding = False
                self._rebuilding.add(hosted.name)
                with hosted.ready:
                    hosted.actor, old, dead = None, hosted.future, hosted.worker
                old.release()
        if rebuilding:
            with hosted.ready:
                hosted.ready.wait_for(lambda: hosted.actor is not None or hosted.down is not None)
            return
        try:
            log.warning(f"instance {hosted.name}: its worker {dead} was lost; carrying it on from "
                        f"{hosted.spec.journal}")
            self._submit(hosted, self._least_busy(avoid=dead))
            log.warning(f"instance {hosted.name}: {self._settle(hosted)} on {hosted.worker}")
        except Exception as error:
            with hosted.ready:
                hosted.down = f"it could not be carried on from its journal ({error})"
                hosted.ready.notify_all()
            log.error(f"instance {hosted.name}: NOT SERVED: {error}")
        finally:
            with self._lock:
                self._rebuilding.discard(hosted.name)

    def close(self) -> None:
        self._stop.set()


class HostedHub(HubService):
    """The hub of a server whose instances live on workers: rows come from the actors, all at once."""

    def __init__(self, fleet: Fleet, private: bool = False, key: Any = None) -> None:
        super().__init__(fleet.hosted, private, key)
        self._fleet = fleet

    def _table(self, names: bool, seeds: bool) -> list[dict[str, Any]]:
        return self._fleet.rows(names, seeds)


def forwarder(fleet: Fleet, hosted: Hosted, target: str, service: type) -> object:
    """A remote object with ``service``'s public methods (the class of the instance's ``target``
    object), each forwarding to ``hosted``'s actor, which checks the arguments as the service does."""

    def route(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def method(_self: object, *args: Any, **kwargs: Any) -> Any:
            return fleet.call(hosted, target, name, args, kwargs)

        method.__name__, method.__doc__ = name, function.__doc__
        return method

    methods = {name: route(name, function) for name, function in vars(service).items()
               if callable(function) and not name.startswith("_")}
    return expose(type(f"Forwarded{service.__name__}", (), methods))()


def service_classes() -> dict[str, type]:
    """Target -> the class of the object a hosted instance serves there."""
    from twin.server.instances import EpisodeService
    from twin.server.services import AfmService, SampleService, TemService

    return {"tem": TemService, "afm": AfmService, "sample": SampleService, "episode": EpisodeService}


def register(daemon: Any, fleet: Fleet, private: bool, key: Any) -> None:
    """The hub and every hosted instance's forwarding objects, under the ids a one-process server uses."""
    from twin.common.wire import HUB_OBJECT

    daemon.register(HostedHub(fleet, private, key), HUB_OBJECT)
    classes = service_classes()
    for hosted in fleet.hosted:
        for target, object_id in object_ids(classes, hosted.token if private else hosted.name).items():
            daemon.register(forwarder(fleet, hosted, target, classes[target]), object_id)


def workers_line(client: Any, cluster: Any) -> str:
    """Where the instances run: the workers and the Dask dashboard."""
    from twin.common.cluster import has_dashboard

    count = len(client.scheduler_info(n_workers=-1)["workers"])
    where = "this machine" if cluster is not None else f"the cluster at {client.scheduler.address}"
    dashboard = client.dashboard_link if has_dashboard(client) else "none (pip install bokeh)"
    return f"{count} worker process(es) on {where}; Dask dashboard: {dashboard}"

