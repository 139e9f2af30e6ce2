"""One hosted instance on a Dask worker: its twin, episode and journal writer in a Dask actor.

``twin serve --workers N`` (or ``--scheduler ADDRESS``) keeps every team's instance in an
:class:`InstanceHost` actor on some worker process; the front door (:mod:`twin.server.front_door`)
forwards the teams' calls to it. A host is built from its journal when the journal exists, else as a new
episode writing that journal, so building it again anywhere (after its worker died) carries the episode on
where its last completed call left it. This module imports nothing heavy until a host is built: a worker
process starts with Dask alone.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from twin.instruments.work import Limits
    from twin.scenarios.secret import OrganiserKey
    from twin.server.instances import Instance

#: calls of one instance that may run at once on its worker (a team's notebook, agent and progress bar)
CALLS_PER_HOST = 8


@dataclass(frozen=True)
class HostSpec:
    """What a worker needs to build (or rebuild) one instance; never its token."""

    name: str
    scenario: str  # the scenario's name or file, as ``twin serve`` was given it
    seed: int
    journal: str  # the journal it writes (carried on if it exists): a path every worker reaches
    key: OrganiserKey
    score_details: bool
    files_root: str  # where the files its team saves go
    cache_share: float  # of one twin's cache budget (its worker holds a few twins)
    limits: tuple[float, int, float]  # max_call_seconds, memory_bytes, wait_seconds (one Limits a worker)
    warm_up: bool = False  # image the default view once in this worker process, so the first call is quick


@dataclass(frozen=True)
class Built:
    """How a host came about: carried on from its journal or not, with ``calls`` journalled calls made
    again, and whether its episode was answered."""

    carried_on: bool
    calls: int
    answered: bool


_limits: dict[tuple[float, int, float], Limits] = {}
_warm = threading.Event()
_shared = threading.Lock()


def _worker_limits(numbers: tuple[float, int, float]) -> Limits:
    """This worker process's shared :class:`Limits` (every instance on it holds from one budget)."""
    from twin.instruments.work import Limits

    with _shared:
        return _limits.setdefault(numbers, Limits(*numbers))


def _as_any_twin_process() -> None:
    """Undo, before the physics is imported, the thread limits Dask gives its worker processes
    (``OMP_NUM_THREADS=1`` ...): ducc0 sizes its FFT pool by them, and a TEM image's last bits with it, so
    a journal written here would not replay bit for bit in another twin process (see
    :data:`twin.common.cluster.NATIVE_WORKERS`, which does the same for a local cluster from the start)."""
    if "ducc0" not in sys.modules:
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.pop(name, None)


def build_instance(spec: HostSpec) -> tuple[Instance, Built]:
    """``spec``'s instance: its journal carried on if it exists, else a new episode writing it."""
    _as_any_twin_process()
    from twin.scenarios import spec as scenarios
    from twin.scenarios.episode import Episode
    from twin.server.daemon import single_threaded_blas
    from twin.server.instances import Instance
    from twin.server.replay import resume

    single_threaded_blas()
    path = Path(spec.journal)
    if path.is_file():
        done = resume(path, key=spec.key)
        instance, built = done.instance, Built(True, done.calls, done.instance.episode.result is not None)
    else:
        episode = Episode(scenarios.load(spec.scenario), spec.seed, spec.name, path, key=spec.key)
        instance, built = Instance(spec.name, episode.twin, episode), Built(False, 0, False)
    instance.score_details = spec.score_details
    instance.twin.afm.files_root = Path(spec.files_root)
    instance.twin.tem.limits = _worker_limits(spec.limits)
    instance.twin.tem.share_caches(spec.cache_share)
    return instance, built


class InstanceHost:
    """A Dask actor holding one instance; its methods are coroutines, so calls of every host on a worker
    run at once (each host's on its own threads) rather than one after another on Dask's actor thread."""

    def __init__(self, spec: HostSpec) -> None:
        self.instance, self.built = build_instance(spec)
        self._threads = ThreadPoolExecutor(CALLS_PER_HOST, thread_name_prefix=f"twin-{spec.name}")
        self._hangups: dict[int, threading.Event] = {}
        if spec.warm_up and not _warm.is_set():
            _warm.set()
            twin = self.instance.twin
            twin.tem.warm_up((1024,))
            twin.afm.topography(twin.afm.scan_window(), 256, 256, twin.afm.settings.get("twin.tip_radius"))

    async def _run(self, function: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._threads, functools.partial(function,
                                                                                                 *args))

    async def call(self, target: str, method: str, args: list, kwargs: dict, caller: tuple[str, int] | None,
                   number: int) -> tuple[Any, int]:
        """``target.method(*args, **kwargs)`` as the client at address ``caller`` made it remotely, and the
        journal's length once it returned; :meth:`hang_up` with the same ``number`` stops its work."""
        gone = self._hangups[number] = threading.Event()
        try:
            result = await self._run(_called, self.instance.objects[target], method, args, kwargs, caller,
                                     gone)
        finally:
            del self._hangups[number]
        return result, len(self.instance.episode.journal.entries)

    async def hang_up(self, number: int) -> None:
        """The client of call ``number`` has hung up: its long work stops (as on a one-process server)."""
        gone = self._hangups.get(number)
        if gone is not None:
            gone.set()

    async def row(self, names: bool, seeds: bool, budgets: bool = False) -> dict[str, Any]:
        """The instance's leaderboard row (see :meth:`Instance.row`)."""
        return await self._run(self.instance.row, names, seeds, budgets)

    async def origin(self) -> Built:
        """How this host came about (new, or carried on from its journal)."""
        return self.built

    async def process(self) -> int:
        """The worker process's id."""
        return os.getpid()


def _called(service: object, method: str, args: list, kwargs: dict, caller: tuple[str, int] | None,
            gone: threading.Event) -> Any:
    """Call ``service.method`` with Pyro's call context showing ``caller`` (so the journal names the team's
    client, as on a one-process server), its work stopping once ``gone`` is set."""
    from Pyro5 import callcontext

    from twin.server.hangups import hangup_from

    callcontext.current_context.client_sock_addr = caller
    try:
        with hangup_from(gone):
            return getattr(service, method)(*args, **kwargs)
    finally:
        callcontext.current_context.client_sock_addr = None
