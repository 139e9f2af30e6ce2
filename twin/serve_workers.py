"""``twin serve --workers N`` / ``--scheduler ADDRESS``: the challenge instances on Dask workers behind one
front door (:mod:`twin.server.front_door`), started from the ``twin serve`` options."""

from __future__ import annotations

import logging
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from twin.scenario_commands import CACHED_TWINS, kept_tokens, write_tokens

if TYPE_CHECKING:
    import argparse
    import ssl

    from twin.instruments.work import Limits
    from twin.scenario_commands import Plan
    from twin.server.hosts import HostSpec
    from twin.server.live.site import LiveOptions

log = logging.getLogger(__name__)

WORKERS_SECONDS = 120.0  # s to wait for the workers (a cluster's first one) before giving up


def serve_on_workers(args: argparse.Namespace, plan: Plan, limits: Limits, tls: ssl.SSLContext | None,
                     secret: str | None, live: LiveOptions | None = None) -> None:
    """``twin serve`` with ``--workers N`` (N local processes) or ``--scheduler ADDRESS`` (a cluster): the
    instances of ``plan`` on Dask workers behind one front door, until SIGINT or SIGTERM; ``live``: serve the
    live page (the scoreboard: the instruments live on the workers) as these options say."""
    from twin.common.cluster import close, connect
    from twin.instruments.files import default_data_dir
    from twin.server.daemon import announce, open_daemon, open_live, ready_line, run
    from twin.server.front_door import Fleet, Hosted, register, workers_line
    from twin.server.live.site import LiveSite

    started = time.perf_counter()
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    # the twin has its own memory limits; calls go straight to the workers (not through the scheduler)
    client, cluster = connect(args.workers, args.scheduler, memory_limit=0, direct_to_workers=True,
                              native=True)
    fleet = live_server = None
    try:
        client.wait_for_workers(args.workers if cluster is not None else 1, timeout=WORKERS_SECONDS)
        log.info(workers_line(client, cluster))
        workers = len(client.scheduler_info(n_workers=-1)["workers"])
        specs = specs_from(plan.plays, plan.folder, args.resume, plan.key, args.score_details, data_dir,
                           (limits.max_call_seconds, limits.memory_bytes, limits.wait_seconds), workers,
                           args.warm_up)
        kept = kept_tokens(args)
        fleet = Fleet(client, [Hosted(spec, kept.get(spec.name) or secrets.token_hex(16), scenario)
                               for spec, scenario in specs])
        log.info(f"{'carrying on' if args.resume else 'building'} {len(specs)} instance(s) on the workers")
        fleet.start(log.info)
        write_tokens(args, [(h.name, h.scenario, h.spec.seed, h.token) for h in fleet.hosted])
        daemon = open_daemon(args.host, args.port, len(fleet.hosted), args.private, args.idle_timeout,
                             args.connections_per_address, tls, secret)
        register(daemon, fleet, args.private, plan.key)
        log.info(f"Digital twins: {len(fleet.hosted)} instance(s) on {workers} worker process(es), journals "
                 f"in {plan.folder.resolve()}")
        announce(daemon, fleet.hosted[0].name, [h.row(seeds=True) for h in fleet.hosted], args.private,
                 data_dir, limits, args.idle_timeout, args.connections_per_address, tls, secret)
        if live is not None:
            site = LiveSite([], args.private,
                            hosted_rows=lambda names, budgets: fleet.rows(names, False, budgets))
            live_server = open_live(site, live, daemon, "the scoreboard: the instruments live on the workers")
        accepting = time.perf_counter()
        run(daemon, lambda: log.info(ready_line(started, accepting, time.perf_counter())))
    finally:
        if live_server is not None:
            live_server.stop()
        if fleet is not None:
            fleet.close()
        close(client, cluster, [])


def specs_from(plays: list[tuple[str, str, int]], folder: Path, resume: bool, key: Any, score_details: bool,
               data_dir: Path, limits: tuple[float, int, float], workers: int, warm_up: bool
               ) -> list[tuple[HostSpec, str]]:
    """Each play's :class:`HostSpec` and its scenario's name. Its journal is the latest one on ``resume``
    (a new one if it has none), else the next free name (a restarted server never overwrites an earlier
    episode)."""
    from twin.scenarios import spec as scenarios
    from twin.server.hosts import HostSpec
    from twin.server.instances import journal_path, journals_of

    names = {which: scenarios.load(which).name for _, which, _ in plays}
    per_worker = -(-len(plays) // max(workers, 1))
    specs = []
    for name, which, seed in plays:
        earlier = journals_of(folder, names[which], seed, name)
        path = earlier[-1] if resume and earlier else journal_path(folder, names[which], seed, name,
                                                                     len(earlier) + 1)
        specs.append((HostSpec(name, which, seed, str(path.resolve()), key, score_details,
                               str(data_dir.resolve() / name), min(1.0, CACHED_TWINS / per_worker), limits,
                               warm_up), names[which]))
    return specs
