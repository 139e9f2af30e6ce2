"""The same seed and calls give the same image bits in any process: ducc0's FFTs round differently with
a different thread count, so the twin fixes the count whatever ``OMP_NUM_THREADS`` (Dask's workers set
it to 1) or ``DUCC0_NUM_THREADS`` say."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

IMAGE = """
import hashlib, numpy as np
from twin.digital_twin import DigitalTwin
from twin.physics.detectors import point_spread
twin = DigitalTwin.build(seed=3)
frame = twin.tem.acquire_camera_image("BM-Ceta", 256, 0.1)  # a fast-engine multislice and the camera
odd = point_spread(np.random.default_rng(0).random((300, 517)), 0.7, 4.0, 0.15)  # a size that shows it
print(hashlib.sha256(frame["data"].tobytes() + odd.tobytes()).hexdigest())
"""


def _digest(**env: str) -> str:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_NUM_THREADS", "DUCC0_NUM_THREADS", "TWIN_FFT_THREADS")} | env
    done = subprocess.run([sys.executable, "-c", IMAGE], env=environment, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_an_image_has_the_same_bits_whatever_the_thread_settings():
    plain = _digest()
    assert _digest(OMP_NUM_THREADS="1") == plain  # a Dask worker's setting
    assert _digest(DUCC0_NUM_THREADS="1") == plain
    assert _digest(TWIN_FFT_THREADS="1") != plain  # the count matters: why it is fixed


def test_the_mechanism_ducc0_rounds_by_its_thread_count():
    import ducc0

    values = np.random.default_rng(1).random((300, 517)).astype(np.float32)
    one, two = (ducc0.fft.r2c(values, axes=(0, 1), nthreads=n) for n in (1, 2))
    assert not np.array_equal(one, two) and np.allclose(one, two, rtol=1e-5, atol=1e-3)
    assert hashlib.sha256(one.tobytes()).digest() != hashlib.sha256(two.tobytes()).digest()


def test_a_bad_thread_count_is_refused_by_name():
    done = subprocess.run([sys.executable, "-c", "import twin"], capture_output=True, text=True, timeout=60,
                          env=os.environ | {"TWIN_FFT_THREADS": "many"})
    assert done.returncode != 0 and "TWIN_FFT_THREADS = 'many': give an integer from 1 to 256" in done.stderr


@pytest.mark.parametrize("value", ["0", "257"])
def test_thread_counts_out_of_range_are_refused(value, monkeypatch):
    from twin.common import fft_threads

    monkeypatch.setenv("TWIN_FFT_THREADS", value)
    with pytest.raises(ValueError, match="from 1 to 256"):
        fft_threads._configured()
