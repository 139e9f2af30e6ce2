"""Start ``twin serve`` as a child process and follow its output (tests and benchmarks use this)."""

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
from dataclasses import dataclass, field

from twin.common import wire


def free_port(host: str = wire.DEFAULT_HOST) -> int:
    """A TCP port that is free on ``host`` right now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


@dataclass
class ServerProcess:
    """A ``twin serve`` child process on a free loopback port; its output is read line by line."""

    process: subprocess.Popen
    port: int
    started: float
    host: str = wire.DEFAULT_HOST
    lines: list[str] = field(default_factory=list)
    line_times: list[float] = field(default_factory=list)
    _queue: queue.Queue = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, *options: str, seed: int = 0, wait_for: str | None = "ready in", timeout: float = 180.0,
              warm_up: bool = False) -> ServerProcess:
        """Launch ``twin serve`` with ``options``; by default return once it reports ready. ``warm_up``:
        image the default view before 'ready' (the first acquisition computes it otherwise)."""
        port = free_port()
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "twin", "serve", "--host", wire.DEFAULT_HOST, "--port", str(port),
             "--seed", str(seed), *(() if warm_up else ("--no-warm-up",)), *options],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        server = cls(process, port, started)
        threading.Thread(target=server._drain, daemon=True).start()
        if wait_for:
            server.wait_for(wait_for, timeout)
            server.port = server.bound_port()
        return server

    def bound_port(self) -> int:
        """The port the server reported binding (``--port 0`` picks one)."""
        line = next(line for line in self.lines if line.strip().startswith("TEM") and "PYRO:" in line)
        return int(line.rsplit(":", 1)[1])

    def _drain(self) -> None:
        for line in self.process.stdout:
            self._queue.put((time.perf_counter(), line.rstrip("\n")))
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float) -> str:
        """Block until a line containing ``text`` appears; returns that line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                item = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is None:
                raise RuntimeError("server exited early:\n" + "\n".join(self.lines))
            self.line_times.append(item[0])
            self.lines.append(item[1])
            if text in item[1]:
                return item[1]
        raise TimeoutError(f"no line with {text!r} within {timeout} s:\n" + "\n".join(self.lines))

    def seconds_until(self, text: str) -> float:
        """Seconds from launch until the first line containing ``text`` (already seen)."""
        index = next(i for i, line in enumerate(self.lines) if text in line)
        return self.line_times[index] - self.started

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the process to exit; returns its exit code."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        with contextlib.suppress(RuntimeError, TimeoutError):
            self.wait_for("stopped", 5.0)
        return code
