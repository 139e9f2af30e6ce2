"""Hostile clients on loopback: raw-protocol abuse must not take the server down or fill its memory.

Each attack is bounded in count and time and only ever talks to the test's own server on 127.0.0.1.
"""

from __future__ import annotations

import socket
import struct
import zlib
from pathlib import Path

import pytest
from Pyro5 import errors, protocol
from Pyro5.api import Proxy

from clients._remote import open_proxy
from twin.server import wire
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


def peak_memory(pid: int) -> int:
    """The peak resident memory (bytes) of process ``pid`` so far (Linux's VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc")


def bomb(inflated: int) -> bytes:
    """zlib data that inflates to ``inflated`` zero bytes (about a thousandth of that on the wire)."""
    packer, chunk = zlib.compressobj(9), bytes(16 << 20)
    parts = [packer.compress(chunk) for _ in range(inflated // len(chunk))]
    return b"".join(parts) + packer.flush()


def raw_message(msgtype: int, flags: int, payload: bytes) -> bytes:
    """A Pyro5 wire message built by hand (a client may set any header field it likes)."""
    header = struct.pack(protocol._header_format, b"PYRO", protocol.PROTOCOL_VERSION, msgtype, 1, flags, 1,
                         len(payload), 0, bytes(16), 0, protocol._magic_number)
    return header + payload


def test_a_compressed_message_is_refused_before_it_is_inflated(server: ServerProcess) -> None:
    """Three 1 GiB decompression bombs (about 1 MiB each on the wire) leave the server as it was."""
    payload = bomb(1 << 30)
    assert len(payload) < 2 << 20
    before = peak_memory(server.process.pid)
    for _ in range(3):
        with socket.create_connection((HOST, server.port), timeout=30) as attack:
            attack.sendall(raw_message(protocol.MSG_CONNECT, protocol.FLAGS_COMPRESSED, payload))
            attack.settimeout(30)
            try:
                while attack.recv(65536):  # whatever it answers, it then hangs up
                    pass
            except ConnectionError:
                pass
    assert peak_memory(server.process.pid) - before < 200 << 20  # bytes; unbounded, each took 1 GiB
    sample = open_proxy(wire.SAMPLE_OBJECT, HOST, server.port)
    assert sample.ping()  # and it still serves everyone else
    sample._pyroRelease()


def test_only_msgpack_is_read_and_a_refusal_carries_no_server_traceback(server: ServerProcess) -> None:
    for serializer in ("marshal", "serpent", "json"):
        proxy = Proxy(f"PYRO:{wire.SAMPLE_OBJECT}@{HOST}:{server.port}")
        proxy._pyroSerializer = serializer
        with pytest.raises(errors.CommunicationError, match="the twin speaks msgpack only"):
            proxy.ping()
        proxy._pyroRelease()
    tem = open_proxy(wire.TEM_OBJECT, HOST, server.port)
    with pytest.raises(ValueError) as refused:
        tem.set("optics.focus", 7.0)
    assert "optics.focus" in str(refused.value)  # the reason reaches the caller ...
    assert not getattr(refused.value, "_pyroTraceback", None)  # ... but not where in the server it arose
    with pytest.raises(TypeError) as wrong:
        tem.set("optics.focus")  # a missing argument
    assert "site-packages" not in "".join(getattr(wrong.value, "_pyroTraceback", None) or [])
    tem._pyroRelease()
