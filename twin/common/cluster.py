"""A Dask distributed cluster for the commands that spread work over processes (``twin generate``,
``twin serve --workers``): a local one of single-threaded worker processes, or an existing one at a
scheduler's address; and closing either cleanly."""

from __future__ import annotations

import asyncio
from typing import Any

#: s a worker process is given to end by itself when the run closes (~1 s on an idle machine, the
#: interpreter's teardown of abTEM and Dask; several times that on a busy one)
WORKER_EXIT_SECONDS = 30.0


#: Dask's worker processes start with ``OMP_NUM_THREADS=1`` (and the BLAS alike) and a low malloc trim
#: threshold; these unset them, so that a worker is a process like any other ``twin serve``: ducc0 sizes
#: its FFT thread pool from ``OMP_NUM_THREADS``, and a TEM image's last bits depend on that pool (a
#: journal written on a worker must replay bit for bit in ``twin scenario replay``, and the other way)
NATIVE_WORKERS = {f"distributed.nanny.pre-spawn-environ.{name}": None for name in (
    "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MALLOC_TRIM_THRESHOLD_")}


def connect(workers: int, scheduler: str | None, memory_limit: str | int = "auto",
            direct_to_workers: bool | None = None, native: bool = False) -> tuple[Any, Any]:
    """A Dask client and the local cluster it runs on (None with ``scheduler``: the cluster there).
    Local workers are ``workers`` single-threaded processes on 127.0.0.1, the dashboard on a free port
    (8787 is often taken: another run, a notebook, a test); ``memory_limit`` per worker (0: none);
    ``direct_to_workers``: the client reaches the workers itself, not through the scheduler; ``native``:
    the workers' environment as this process's (see :data:`NATIVE_WORKERS`)."""
    import dask
    from dask.distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, direct_to_workers=direct_to_workers), None
    with dask.config.set(NATIVE_WORKERS if native else {}):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0", memory_limit=memory_limit)
    return Client(cluster, direct_to_workers=direct_to_workers), cluster


def has_dashboard(client: Any) -> bool:
    """Whether the scheduler serves the dashboard (it needs bokeh)."""
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return bool(client.scheduler_info().get("services", {}).get("dashboard"))


def close(client: Any, cluster: Any, futures: list, worker_exit: float = WORKER_EXIT_SECONDS) -> None:
    """Stop the work still queued, then the client, then each worker (given ``worker_exit`` s to end its
    process by itself), then the scheduler: no worker is left to be killed after a grace time."""
    try:
        if futures:
            client.cancel(futures)
        client.close()
    finally:
        if cluster is not None:
            try:
                cluster.sync(_close_nannies, list(cluster.workers.values()), worker_exit)
            finally:
                cluster.close()


async def _close_nannies(nannies: list, timeout: float) -> None:
    """Ask every worker to stop and wait until its process has ended (killing it only after 0.8
    ``timeout``: distributed's own close allows 4 s, which a busy machine's interpreter teardown of
    abTEM, Dask and friends exceeds)."""
    await asyncio.gather(*(nanny.close(timeout=timeout) for nanny in nannies))
