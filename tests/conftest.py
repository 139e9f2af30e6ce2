"""Shared fixtures: a real ``twin serve`` process on 127.0.0.1 and clients connected to it, and a guard
that keeps every test's own connections on this machine."""

from __future__ import annotations

import functools
import ipaddress
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"
SERVER_SEED = 7
_USER_DATA = tempfile.mkdtemp(prefix="twin-user-data-")


def pytest_configure(config: pytest.Config) -> None:
    """The user's data folder (where servers keep files by default) is a temporary one for the run, for
    this process and every server it starts: tests never write into the home folder."""
    os.environ["XDG_DATA_HOME"] = _USER_DATA


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_USER_DATA, ignore_errors=True)


# The files that take longest, longest first: with one worker per core (pytest-xdist, a file to a worker)
# they start at once and the short files fill in around them.
LONGEST_FIRST = ("test_challenges.py", "test_rehearsals.py", "test_datasets.py", "test_eds.py",
                 "test_hostile_clients.py", "test_hackathon_server.py", "test_fairness.py",
                 "test_fairness_afm.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: within a file and among the rest, the order stays


class OffMachineConnection(RuntimeError):
    """A test tried to connect beyond this machine (not an OSError: retry loops do not swallow it)."""


def on_this_machine(address: Any) -> bool:
    """Whether ``address`` (as ``socket.connect`` takes it) stays on this machine: a Unix socket path,
    ``localhost`` or a loopback IP (127.0.0.0/8, ::1, or IPv4-mapped 127.x). Other names are refused
    unresolved: resolving them would send packets too."""
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX
    host = address[0] if isinstance(address, tuple) and address else address
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def _guarded(connect: Callable[..., Any], address_at: int) -> Callable[..., Any]:
    """``connect`` refusing, with :class:`OffMachineConnection`, an address that leaves this machine (the
    address is its argument number ``address_at``)."""
    @functools.wraps(connect)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        address = args[address_at] if len(args) > address_at else kwargs.get("address")
        if not on_this_machine(address):
            raise OffMachineConnection(f"a test connected to {address!r}, off this machine; tests may reach "
                                       "loopback (127.0.0.0/8, ::1, localhost) and Unix sockets only")
        return connect(*args, **kwargs)

    return guarded


@pytest.fixture(autouse=True)
def connections_stay_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test: ``socket.connect``, ``connect_ex`` and ``create_connection`` in this process raise for
    an address beyond loopback, so a regression (``twin run`` no longer redirecting a lab script's
    ``connect("10.46.217.241")``, say) fails the test instead of sending a packet. Subprocesses (the
    servers the tests start) are not affected: they only listen on 127.0.0.1."""
    for name in ("connect", "connect_ex"):
        monkeypatch.setattr(socket.socket, name, _guarded(getattr(socket.socket, name), 1))
    monkeypatch.setattr(socket, "create_connection", _guarded(socket.create_connection, 0))


@pytest.fixture(scope="session")
def server_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared server's data folder: whatever folder a client names, its files land below it."""
    return tmp_path_factory.mktemp("server-files")


@pytest.fixture(scope="session")
def server(server_files: Path) -> Iterator[ServerProcess]:
    """One twin for the integration tests (seed 7, default sample); stopped with Ctrl-C."""
    process = ServerProcess.start("--data-dir", str(server_files), seed=SERVER_SEED)
    yield process
    assert process.stop(signal.SIGINT) == 0, "\n".join(process.lines)


@pytest.fixture
def microscope(server: ServerProcess):
    from clients.tem import TemMicroscopeClient

    client = TemMicroscopeClient()
    client.connect(HOST, server.port)
    client.twin.reset()  # the twin as it started, whatever the tests before left on it
    yield client
    client.disconnect()


@pytest.fixture
def spm(server: ServerProcess):
    from clients.afm import SPM

    connection = SPM(HOST, server.port)
    connection.twin.reset()  # the twin as it started, whatever the tests before left on it
    yield connection
    connection.close()
