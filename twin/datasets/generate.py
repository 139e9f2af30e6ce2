"""``twin generate``: items made on Dask distributed workers, written to Zarr as they finish.

A local cluster of single-threaded worker processes by default, or an existing cluster at
``scheduler`` (its workers must reach the output path: a shared file system). Workers write each
item's images into the store themselves; this process writes the per-item conditions and marks items
done. Each item depends only on ``(seed, item)``, so the data do not depend on how many
workers made them or in which order; a run that stops (Ctrl-C, a crash, ``max_new``) resumes where it
left off, skipping the items already marked done.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from twin.common.cluster import close, has_dashboard
from twin.common.cluster import connect as cluster_of
from twin.datasets import store
from twin.datasets.config import DatasetConfig
from twin.datasets.items import make_and_store

_FLUSH_EVERY = 1.0  # s between writes of finished items' conditions and done marks


@dataclass(frozen=True)
class Report:
    """What a run did: items written now, items found done, seconds, workers, when (s from the start)
    each item was written, and how long the cluster took to start (its workers up)."""

    written: int
    skipped: int
    seconds: float
    workers: int
    times: tuple[float, ...] = ()
    cluster_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Items per second over the whole run, cluster start-up included."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def startup(self) -> float:
        """Seconds until every worker had finished its first item: the cluster's start and each worker's
        warm-up (imports, the first specimen built)."""
        first = min(self.workers, len(self.times))
        return self.times[first - 1] if first else self.seconds

    @property
    def steady_rate(self) -> float:
        """Items per second once every worker has finished its first item (start-up and warm-up
        excluded): what a long run approaches."""
        first = self.workers
        if len(self.times) <= first:
            return self.rate
        return (len(self.times) - first) / (self.times[-1] - self.times[first - 1])

    def summary(self) -> str:
        """One line: the start-up and the steady throughput apart, then the whole run's."""
        steady = (f"then {self.steady_rate:.2f} items/s steady" if len(self.times) > self.workers
                  else "too few items for a steady rate")
        return (f"start-up {self.startup:.1f} s (cluster {self.cluster_seconds:.1f} s, then each worker's "
                f"first item), {steady}; {self.rate:.2f} items/s overall")


def generate(config: DatasetConfig, out: str | Path, workers: int = 1, scheduler: str | None = None,
             netcdf: bool = False, max_new: int | None = None, progress: TextIO | None = sys.stderr
             ) -> Report:
    """Write ``config``'s items to the Zarr store ``out`` (resuming it if it exists), at most ``max_new``
    new ones; with ``netcdf`` also a NetCDF copy next to it once every item is done.

    ``progress``: where the Dask dashboard's address goes and, when it is a terminal, a progress bar
    with the time left (nothing but the address on a file or a pipe; None for nothing at all)."""
    from dask.distributed import as_completed

    group = store.open_store(out, config)
    done = store.done(group)
    todo = [i for i in range(config.items) if not done[i]]
    if max_new is not None:
        todo = todo[:max_new]
    started = time.perf_counter()
    client, cluster = cluster_of(workers, scheduler)
    written, times, futures, pending = 0, [], [], []  # pending: finished items not yet marked done
    bar = None
    try:
        if cluster is not None:
            client.wait_for_workers(workers)
        workers = len(client.scheduler_info()["workers"]) or workers
        cluster_seconds = time.perf_counter() - started
        _say(progress, f"Dask dashboard: {client.dashboard_link}" if has_dashboard(client)
             else "Dask dashboard: none (pip install bokeh)")
        bar = tqdm(total=len(todo), file=progress, disable=None if progress is not None else True,
                   desc="items", unit="item", smoothing=0.1, mininterval=0.5,
                   postfix=f"{int(done.sum())} already done" if done.any() else None)
        shared = client.scatter(config, broadcast=True)
        futures = client.map(make_and_store, [shared] * len(todo), todo, [str(out)] * len(todo), pure=False)
        flushed = time.perf_counter()
        for future in as_completed(futures):
            pending.append(future.result())
            future.release()
            written += 1
            times.append(time.perf_counter() - started)
            if time.perf_counter() - flushed > _FLUSH_EVERY or written == len(todo):
                store.write_conditions(group, pending)
                pending, flushed = [], time.perf_counter()
            bar.update()
    finally:
        if bar is not None:
            bar.close()
        store.write_conditions(group, pending)  # whatever finished before an interruption
        close(client, cluster, futures)
    if netcdf and store.done(group).all():
        _say(progress, f"writing the NetCDF copy {Path(out).with_suffix('.nc')}")
        store.to_netcdf(out, Path(out).with_suffix(".nc"), progress=_terminal(progress))  # NetCDF-4
    return Report(written, int(done.sum()), time.perf_counter() - started, workers, tuple(times),
                  cluster_seconds)


def _say(stream: TextIO | None, line: str) -> None:
    if stream is not None:
        print(line, file=stream, flush=True)


def _terminal(stream: TextIO | None) -> TextIO | None:
    """``stream`` if it is a terminal (where a progress bar goes), else None."""
    isatty = getattr(stream, "isatty", None)
    return stream if isatty is not None and isatty() else None
