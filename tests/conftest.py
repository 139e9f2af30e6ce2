"""Shared fixtures: a real ``twin serve`` process on 127.0.0.1 and clients connected to it."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

HOST = "127.0.0.1"
SERVER_SEED = 7
START_TIMEOUT = 180.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """A ``twin serve`` subprocess whose output is collected line by line."""

    process: subprocess.Popen
    port: int
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, *extra: str, seed: int = SERVER_SEED) -> ServerProcess:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "twin", "serve", "--host", HOST, "--port", str(port),
             "--seed", str(seed), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        server = cls(process, port)
        threading.Thread(target=server._drain, daemon=True).start()
        server.wait_for("ready in", START_TIMEOUT)
        return server

    def _drain(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """Block until a line containing ``text`` appears; returns that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise RuntimeError("server exited early:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if text in line:
                return line
        raise TimeoutError(f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.lines))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the process to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.wait_for("stopped", 5.0)
        return code


@pytest.fixture(scope="session")
def server() -> Iterator[ServerProcess]:
    """One twin for the integration tests (seed 7, default sample); stopped with Ctrl-C."""
    process = ServerProcess.start()
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
