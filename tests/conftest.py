"""Shared fixtures: a real ``twin serve`` process on 127.0.0.1 and clients connected to it."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    yield client
    client.disconnect()


@pytest.fixture
def spm(server: ServerProcess):
    from clients.afm import SPM

    connection = SPM(HOST, server.port)
    yield connection
    connection.close()
