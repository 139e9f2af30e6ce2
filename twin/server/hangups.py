"""Noticing that the client of a running call has hung up, so that its work can stop.

A Pyro5 worker runs a call to its end before it reads the connection again, so a client that
disconnects (killed, or Ctrl-C in its script) would leave its call running. While a call runs, its
connection is watched by one thread here: a connection that reads as closed sets the call's event,
which the call's :class:`twin.instruments.work.Job` checks between batches of work.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from Pyro5.callcontext import current_context

PERIOD_SECONDS = 0.25


class HangupWatcher:
    """Watches the connections of running calls (one thread, started on first use)."""

    def __init__(self, period: float = PERIOD_SECONDS) -> None:
        self.period = period
        self._calls: dict[int, tuple[Any, threading.Event]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def watching(self) -> Iterator[threading.Event]:
        """An event set if the current call's client hangs up before the block ends."""
        forwarded = getattr(_forwarded, "event", None)
        if forwarded is not None:  # a front door watches the client's connection
            yield forwarded
            return
        event = threading.Event()
        sock = _raw_socket(getattr(current_context, "client", None))
        if sock is None:  # not a remote call (a test, a replay)
            yield event
            return
        with self._lock:
            self._calls[id(event)] = (sock, event)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="twin-hangups", daemon=True)
                self._thread.start()
        try:
            yield event
        finally:
            with self._lock:
                self._calls.pop(id(event), None)

    def _loop(self) -> None:
        while True:
            time.sleep(self.period)
            with self._lock:
                calls = list(self._calls.values())
            if calls:
                for sock, event in calls:
                    if not event.is_set() and hung_up(sock):
                        event.set()


_forwarded = threading.local()


@contextlib.contextmanager
def hangup_from(event: threading.Event) -> Iterator[None]:
    """Calls made on this thread in the block take ``event`` as their client's hang-up: a call forwarded
    by a front door (``twin serve --workers``), which watches the client's connection itself."""
    _forwarded.event = event
    try:
        yield
    finally:
        _forwarded.event = None


def _raw_socket(connection: Any) -> socket.socket | None:
    sock = getattr(connection, "sock", None)
    return getattr(sock, "_sock", sock)  # under the doorkeeper's deadline wrapper


def hung_up(sock: socket.socket) -> bool:
    """Whether the peer of ``sock`` has closed it (reads as end-of-file or reset), without waiting or
    taking any bytes it may have sent."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        # the TCP socket's own recv: a peek at raw bytes, also under TLS (which takes no flags)
        return socket.socket.recv(sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError):
        return False
    except ValueError:  # a closed socket has no descriptor
        return sock.fileno() < 0
    except OSError:  # reset by the peer
        return True


WATCHER = HangupWatcher()
