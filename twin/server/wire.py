"""How values cross the network: Pyro5 with msgpack, numpy arrays as raw bytes.

An array travels as ``{"__class__": "numpy.ndarray", "dtype": "<f4", "shape": [..], "data": <bytes>}``;
msgpack packs ``data`` as a binary blob, so nothing is converted element by element. numpy scalars
travel as plain Python numbers. Both the server and the clients call :func:`install` once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from Pyro5.api import Proxy
from Pyro5.serializers import MsgpackSerializer, SerializerBase

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9095  # the port AutoScript servers commonly use in labs
TEM_OBJECT, AFM_OBJECT, SAMPLE_OBJECT = "twin.tem", "twin.afm", "twin.sample"
SERIALIZER = "msgpack"
_ARRAY_TAG = "numpy.ndarray"
_SCALAR_TAG = "numpy.scalar"
_installed = False


class _Scalar:
    """Carrier for a numpy scalar: Pyro5's msgpack hook would otherwise mangle it."""

    __slots__ = ("value",)

    def __init__(self, scalar: np.generic) -> None:
        self.value = scalar.item()


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """Describe ``array`` by dtype, shape and its raw (C-ordered) bytes."""
    if array.dtype.hasobject:
        raise TypeError("arrays of Python objects cannot be sent; use a numeric dtype")
    contiguous = np.ascontiguousarray(array)
    return {
        "__class__": _ARRAY_TAG,
        "dtype": contiguous.dtype.str,
        "shape": list(array.shape),
        "data": memoryview(contiguous.reshape(-1).view(np.uint8)),
    }


def decode_array(_classname: str, message: dict[str, Any]) -> np.ndarray:
    """Rebuild the array sent by :func:`encode_array` (a writable array of its own)."""
    data = message["data"]
    array = np.frombuffer(bytearray(data) if isinstance(data, bytes) else data, message["dtype"])
    return array.reshape(message["shape"])


def install() -> None:
    """Register the numpy encoders with Pyro5's msgpack serializer (idempotent)."""
    global _installed
    if _installed:
        return
    SerializerBase.register_class_to_dict(np.ndarray, encode_array, serpent_too=False)
    SerializerBase.register_dict_to_class(_ARRAY_TAG, decode_array)
    SerializerBase.register_class_to_dict(
        _Scalar, lambda s: {"__class__": _SCALAR_TAG, "value": s.value}, serpent_too=False
    )
    SerializerBase.register_dict_to_class(_SCALAR_TAG, lambda _name, message: message["value"])
    for scalar in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                   np.uint32, np.uint64, np.float16, np.float32, np.complex64, np.complex128):
        MsgpackSerializer.register_type_replacement(scalar, _Scalar)
    _installed = True


def connect(uri: str, timeout: float | None = None) -> Proxy:
    """A proxy that speaks msgpack; ``timeout`` (s) bounds connecting and each call."""
    install()
    proxy = Proxy(uri)
    proxy._pyroSerializer = SERIALIZER
    if timeout is not None:
        proxy._pyroTimeout = timeout
    return proxy
