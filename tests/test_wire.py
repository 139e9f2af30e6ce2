"""Arrays cross the wire as raw bytes with dtype and shape, never as lists."""

from __future__ import annotations

import numpy as np
import pytest
from Pyro5.serializers import serializers

from twin.server import wire

wire.install()
MSGPACK = serializers["msgpack"]


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.arange(24, dtype=">i4").reshape(2, 3, 4)[:, ::2],  # big-endian, non-contiguous
        np.array(2.5),
        np.zeros((0, 7), dtype=np.uint16),
        np.array([True, False]),
        (np.arange(6) + 1j).astype(np.complex64),
    ],
)
def test_arrays_round_trip_exactly_and_arrive_writable(array):
    back = MSGPACK.loads(MSGPACK.dumps({"value": array}))["value"]
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)
    back[...] = back  # writable, like any local array


def test_an_array_costs_its_bytes_plus_a_small_header():
    array = np.random.default_rng(0).random((256, 256)).astype(np.float32)
    assert len(MSGPACK.dumps(array)) < array.nbytes + 128


def test_numpy_scalars_arrive_as_python_numbers():
    back = MSGPACK.loads(MSGPACK.dumps([np.float32(2.5), np.int64(-3), np.bool_(True), np.uint16(7)]))
    assert back == [2.5, -3, True, 7]
    assert [type(v) for v in back] == [float, int, bool, int]


def test_object_arrays_are_refused_and_the_next_message_is_clean():
    with pytest.raises(TypeError, match="Python objects"):
        MSGPACK.dumps({"before": np.arange(3), "bad": np.array([object()])})
    assert MSGPACK.loads(MSGPACK.dumps({"after": 1})) == {"after": 1}
