"""How values cross the network: Pyro5 with msgpack, numpy arrays as raw bytes.

An array travels as ``{"__class__": "numpy.ndarray", "dtype": "<f4", "shape": [..], "data": <bytes>}``;
msgpack packs ``data`` as a binary blob, so nothing is converted element by element. numpy scalars
travel as plain Python numbers. Both the server and the clients call :func:`install` once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import threading
from typing import Any

import msgpack
import numpy as np
import Pyro5
from Pyro5 import errors, protocol, serializers
from Pyro5.api import Proxy
from Pyro5.serializers import MsgpackSerializer, SerializerBase

from twin.common.errors import BudgetExhausted

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 9095  # the port AutoScript servers commonly use in labs
TEM_OBJECT, AFM_OBJECT, SAMPLE_OBJECT = "twin.tem", "twin.afm", "twin.sample"
EPISODE_OBJECT, HUB_OBJECT = "twin.episode", "twin.hub"
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


class ReusingMsgpackSerializer(MsgpackSerializer):
    """Pyro5's msgpack serializer, packing into one reusable buffer per thread.

    A fresh packer grows its buffer by doubling for every large message and so faults new pages
    in each time; a kept packer reuses its buffer (16 MiB echo: 34 ms -> 27 ms). Packers that grew
    past ``KEEP_BYTES`` are dropped after use, so idle threads do not hold huge buffers.
    """

    KEEP_BYTES = 64 << 20

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()

    def _pack(self, value: Any) -> bytes:
        packer = getattr(self._local, "packer", None)
        if packer is None:
            packer = msgpack.Packer(use_bin_type=True, default=self.default)
        self._local.packer = None  # a packer that fails half-way is not reused
        data = packer.pack(value)
        if len(data) <= self.KEEP_BYTES:
            self._local.packer = packer
        return data

    def dumps(self, data: Any) -> bytes:
        return self._pack(data)

    def loads(self, data: Any) -> Any:
        return _unpacked(super().loads, data)

    def loadsCall(self, data: Any) -> Any:  # noqa: N802
        return _unpacked(super().loadsCall, data)

    def dumpsCall(self, obj: str, method: str, vargs: Any, kwargs: Any) -> bytes:  # noqa: N802
        return self._pack((obj, method, vargs, kwargs))


class RefusingCompression:
    """Stands in for ``zlib`` in Pyro5's protocol module: a message flagged as compressed is refused
    before anything is inflated. Pyro5 inflates such a message without a limit (1 MiB on the wire can
    become gigabytes of server memory), and the twin's clients never compress."""

    error = errors.ProtocolError

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:
        raise errors.ProtocolError("the twin does not compress messages: leave Pyro5.config.COMPRESSION off")

    @staticmethod
    def decompress(data: bytes) -> bytes:
        raise errors.ProtocolError(f"a compressed message ({len(data)} bytes) was refused: the twin accepts "
                                   "uncompressed messages only")


class RefusingSerializer:
    """Stands in for a serializer the twin does not speak (marshal, serpent, json): what arrives in it is
    refused unread (marshal, for one, is not safe on untrusted data); a refusal can still be answered."""

    def __init__(self, inner: SerializerBase) -> None:
        self._inner = inner
        self.serializer_id = inner.serializer_id

    def loads(self, data: bytes) -> Any:
        raise errors.SerializeError(f"the twin speaks {SERIALIZER} only; connect with its clients (or set "
                                    f"proxy._pyroSerializer = {SERIALIZER!r})")

    loadsCall = loads  # noqa: N815 (Pyro5's name)

    def dumps(self, data: Any) -> bytes:
        return self._inner.dumps(data)

    def dumpsCall(self, obj: str, method: str, vargs: Any, kwargs: Any) -> bytes:  # noqa: N802
        return self._inner.dumpsCall(obj, method, vargs, kwargs)


def accept_only_msgpack() -> None:
    """Refuse, unread, messages in any serializer but the twin's own (a server calls this)."""
    ours = serializers.serializers[SERIALIZER]
    for serializer_id, serializer in list(serializers.serializers_by_id.items()):
        if serializer is not ours and not isinstance(serializer, RefusingSerializer):
            serializers.serializers_by_id[serializer_id] = RefusingSerializer(serializer)


def keep_freed_memory(one_arena: bool = False) -> bool:
    """Ask glibc to keep freed large blocks for reuse instead of returning them to the OS.

    Every message allocates buffers of the array's size (packing, receiving, decoding), and a new 1024²
    image ~40 frame-sized arrays. By default glibc gives such blocks back and the next use faults fresh
    pages in one by one, which costs more than the copies themselves (a 4 MiB echo: 13.5 ms instead of
    5 ms; ~15 % of a new image's time). Blocks up to 64 MiB now come from the heap, and up to 512 MiB of
    free heap stays with the process. ``one_arena``: every thread allocates from that one heap (a
    server's calls run on Pyro's worker threads, whose own arenas would give their pages back: ~10 % of
    a new window); it takes effect only before a second thread has allocated. Returns whether the
    allocator took the settings (not off glibc)."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    m_trim_threshold, m_mmap_threshold, m_arena_max = -1, -3, -8  # glibc's malloc.h
    kept = bool(mallopt(m_trim_threshold, 512 << 20) and mallopt(m_mmap_threshold, 64 << 20))
    return kept and (not one_arena or bool(mallopt(m_arena_max, 1)))


def install() -> None:
    """Register the numpy encoders with Pyro5's msgpack serializer and tune malloc (idempotent)."""
    global _installed
    if _installed:
        return
    keep_freed_memory()
    protocol.zlib = RefusingCompression  # no decompression bombs
    reusing = ReusingMsgpackSerializer()
    serializers.serializers[SERIALIZER] = reusing
    serializers.serializers_by_id[reusing.serializer_id] = reusing
    SerializerBase.register_class_to_dict(np.ndarray, encode_array, serpent_too=False)
    SerializerBase.register_dict_to_class(_ARRAY_TAG, decode_array)
    SerializerBase.register_class_to_dict(
        _Scalar, lambda s: {"__class__": _SCALAR_TAG, "value": s.value}, serpent_too=False
    )
    SerializerBase.register_dict_to_class(_SCALAR_TAG, lambda _name, message: message["value"])
    SerializerBase.register_dict_to_class(  # a spent budget arrives as itself, not as a generic error
        f"{BudgetExhausted.__module__}.{BudgetExhausted.__name__}",
        lambda _name, message: SerializerBase.make_exception(BudgetExhausted, message))
    for scalar in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                   np.uint32, np.uint64, np.float16, np.float32, np.complex64, np.complex128):
        MsgpackSerializer.register_type_replacement(scalar, _Scalar)
    _installed = True


def object_id(base: str, instance: str | None) -> str:
    """The Pyro object id of ``base`` ('twin.tem') on ``instance`` (a name or token; None: the default)."""
    if instance is None or instance == "default":
        return base
    if not isinstance(instance, str) or not instance or any(c in instance for c in "@: /"):
        raise ValueError(f"instance = {instance!r}: give a name or token without '@', ':', '/' or spaces")
    return f"{base}.{instance}"


class TwinProxy(Proxy):
    """A Pyro5 proxy that remembers how long the server lets its connection idle (``idle_seconds``,
    from the server's handshake; None: no limit said)."""

    idle_seconds: float | None = None

    def _pyroValidateHandshake(self, response: Any) -> None:
        idle = response.get("idle_seconds") if isinstance(response, dict) else None
        object.__setattr__(self, "idle_seconds", float(idle) if isinstance(idle, (int, float)) else None)


def _unpacked(load: Any, data: Any) -> Any:
    """``load(data)``, with msgpack's refusal of a mapping key that is not a string (or bytes) put in
    words: keys are limited so that no message can fill a dict with colliding keys."""
    try:
        return load(data)
    except ValueError as error:
        if "not allowed for map key" not in str(error):
            raise
        kind = str(error).split(" ", 1)[0]
        raise TypeError(f"a mapping sent to the twin has a key of type {kind}; keys must be strings "
                        "(e.g. {'x': 1e-6}, not {0: 1e-6})") from None


CA_VARIABLE, SECRET_VARIABLE = "TWIN_CA", "TWIN_SECRET"


def connect(uri: str, timeout: float | None = None) -> TwinProxy:
    """A proxy that speaks msgpack; ``timeout`` (s) bounds connecting and each call. With ``TWIN_CA``
    set (the server's certificate, PEM) it speaks TLS; with ``TWIN_SECRET`` it shows that secret."""
    install()
    authority = os.environ.get(CA_VARIABLE)
    if authority:
        Pyro5.config.SSL = True
        Pyro5.config.SSL_CACERTS = authority
    proxy = TwinProxy(uri)
    secret = os.environ.get(SECRET_VARIABLE)
    if secret:
        proxy._pyroHandshake = secret.strip()
    proxy._pyroSerializer = SERIALIZER
    if timeout is not None:
        proxy._pyroTimeout = timeout
    return proxy
