"""How many threads the twin's ducc0 FFTs use: a fixed number, the same on every machine; and the pool of
as many threads that runs the rest of the twin's frame-sized work (elementwise products, noise draws)
in parts.

ducc0 splits a transform's lines over its threads and treats the lines left over from its SIMD batches
apart, so a real transform (and a complex one of some sizes) rounds differently with a different thread
count: a TEM image's last bits then depend on the machine's cores, on ``OMP_NUM_THREADS`` (which Dask
sets to 1 in its workers, and which caps ducc0's pool) or on the test runner. The same seed and the same
calls give the same bits only at the same count, so it is fixed: ``TWIN_FFT_THREADS`` (default 2, the
machine the twin is measured on). A larger value is faster on a machine with more cores, and its images
differ from the default's in the last bits (a journal replays bit for bit only at the count it was
written with). SciPy's FFTs round the same whatever their workers.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

DEFAULT = 2


def _configured() -> int:
    text = os.environ.get("TWIN_FFT_THREADS", str(DEFAULT))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise ValueError(f"TWIN_FFT_THREADS = {text!r}: give an integer from 1 to 256")
    return value


FFT_THREADS = _configured()
#: runs parts of frame-sized work side by side (numpy and the numba kernels release the GIL); its
#: threads start on first use. A part must not wait for another part.
WORKERS = ThreadPoolExecutor(max_workers=FFT_THREADS, thread_name_prefix="twin-work")


def size_ducc0_pool() -> None:
    """Let ducc0's thread pool hold :data:`FFT_THREADS` threads: ``OMP_NUM_THREADS`` (or a smaller
    ``DUCC0_NUM_THREADS``) would otherwise cap it, and the count with it. Takes effect if called before
    ducc0 is imported (the ``twin`` package does, on import)."""
    current = os.environ.get("DUCC0_NUM_THREADS", "")
    if not current.isdigit() or int(current) < FFT_THREADS:
        os.environ["DUCC0_NUM_THREADS"] = str(max(FFT_THREADS, os.cpu_count() or 1))
