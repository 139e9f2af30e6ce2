"""Shared fixtures: a real ``twin serve`` process on 127.0.0.1 and clients connected to it."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"
SERVER_SEED = 7


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One twin for the integration tests (seed 7, default sample); stopped with Ctrl-C."""
    process = ServerProcess.start(seed=SERVER_SEED)
    yield process
    assert process.stop(signal.SIGINT) == 0, "\n".join(process.lines)


@pytest.fixture
def microscope(server: ServerProcess):
    from clients.tem import TemMicroscopeClient

    client = TemMicroscopeClient()
    client.connect(HOST, server.port)
    yield client
    client.disconnect()


@pytest.fixture
def spm(server: ServerProcess):
    from clients.afm import SPM

    connection = SPM(HOST, server.port)
    yield connection
    connection.close()
