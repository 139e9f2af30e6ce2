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

import xarray as xr

from twin.datasets import store
from twin.datasets.config import DatasetConfig
from twin.datasets.items import make_and_store

_FLUSH_EVERY = 1.0  # s between writes of finished items' conditions and done marks


@dataclass(frozen=True)
class Report:
    """What a run did: items written now, items found done, seconds, workers, and when (s from the
    start) each item was written."""

    written: int
    skipped: int
    seconds: float
    workers: int
    times: tuple[float, ...] = ()

    @property
    def rate(self) -> float:
        """Items per second over the whole run, cluster start-up included."""
        return self.written / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_rate(self) -> float:
        """Items per second once every worker has finished its first item (start-up and warm-up
        excluded): what a long run approaches."""
        first = self.workers
        if len(self.times) <= first:
            return self.rate
        return (len(self.times) - first) / (self.times[-1] - self.times[first - 1])


def generate(config: DatasetConfig, out: str | Path, workers: int = 1, scheduler: str | None = None,
             netcdf: bool = False, max_new: int | None = None, progress: TextIO | None = sys.stderr
             ) -> Report:
    """Write ``config``'s items to the Zarr store ``out`` (resuming it if it exists), at most ``max_new``
    new ones; with ``netcdf`` also a NetCDF copy next to it once every item is done."""
    from dask.distributed import Client, LocalCluster, as_completed

    group = store.open_store(out, config)
    done = store.done(group)
    todo = [i for i in range(config.items) if not done[i]]
    if max_new is not None:
        todo = todo[:max_new]
    started = time.perf_counter()
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    written, times = 0, []
    try:
        workers = len(client.scheduler_info()["workers"]) or workers
        shared = client.scatter(config, broadcast=True)
        futures = client.map(make_and_store, [shared] * len(todo), todo, [str(out)] * len(todo), pure=False)
        pending: list[dict] = []  # finished items not yet marked done
        flushed = time.perf_counter()
        for future in as_completed(futures):
            pending.append(future.result())
            future.release()
            written += 1
            times.append(time.perf_counter() - started)
            if time.perf_counter() - flushed > _FLUSH_EVERY or written == len(todo):
                store.write_conditions(group, pending)
                pending, flushed = [], time.perf_counter()
            _show(progress, written, len(todo), int(done.sum()), time.perf_counter() - started)
    finally:
        store.write_conditions(group, pending)  # whatever finished before an interruption
        client.close()
        if cluster is not None:
            cluster.close()
    if progress is not None:
        progress.write("\n")
    if netcdf and store.done(group).all():
        xr.open_zarr(str(out)).to_netcdf(Path(out).with_suffix(".nc"), engine="h5netcdf")  # NetCDF-4
    return Report(written, int(done.sum()), time.perf_counter() - started, workers, tuple(times))


def _show(stream: TextIO | None, written: int, total: int, skipped: int, seconds: float) -> None:
    if stream is None:
        return
    width = 30
    filled = int(width * written / max(total, 1))
    rate = written / seconds if seconds > 0 else 0.0
    stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {written}/{total} items"
                 f"{f' ({skipped} already done)' if skipped else ''}, {rate:.2f} items/s")
    stream.flush()
