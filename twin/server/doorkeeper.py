"""Who gets one of the server's workers, and for how long.

Pyro5's threaded server gives each open connection a worker thread for as long as it stays open, and
answers a connection it has no worker for inside its accept loop, waiting for the client's handshake
there. Idle or slowly dripping sockets could so hold every worker and then stall the accept loop too.
The doorkeeper stands between the accept loop and the workers:

- every socket reads against a deadline: the handshake must arrive within ``HANDSHAKE_SECONDS`` of
  connecting, the next request within the idle timeout of the last reply, and a request that has
  started must be complete within ``MESSAGE_SECONDS`` (bytes dripped one at a time do not extend it);
  a reply must leave within ``SEND_SECONDS`` plus a second per MiB;
- one source address holds at most ``per_address`` connections;
- a connection refused for either reason, or because every worker is busy, is told why by a small
  separate denial thread (within ``DENIAL_SECONDS``) and closed; the accept loop never waits on one.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from typing import Any

from Pyro5.svr_threads import NoFreeWorkersError

log = logging.getLogger(__name__)

CONNECTIONS_PER_ADDRESS = 128  # one source address (a hackathon room behind one NAT may need more)
IDLE_SECONDS = 600.0  # a client's open connection may wait this long between calls (clients reconnect)
HANDSHAKE_SECONDS = 10.0
MESSAGE_SECONDS = 120.0  # a 256 MiB request needs ~2 MiB/s
SEND_SECONDS = 60.0
SEND_BYTES_PER_SECOND = 1 << 20
DENIAL_SECONDS = 2.0
PENDING_DENIALS = 256  # more waiting than this are closed without a word


class DeadlineSocket:
    """A connected socket whose reads and writes end at deadlines (see the module's docstring).

    Between messages the deadline is the idle one; the first bytes of a request replace it with the
    message deadline, and the reply's first write with the send deadline; once the reply has left,
    the idle deadline starts again."""

    def __init__(self, sock: socket.socket, first_seconds: float, idle_seconds: float) -> None:
        """``first_seconds`` bounds the first message (the handshake) as a whole."""
        self._sock = sock
        self._idle_seconds = idle_seconds
        self._deadline = time.monotonic() + first_seconds
        self._message_seconds = 0.0  # the first message keeps the first deadline
        self._phase = "waiting"

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"connection {self._phase} past its deadline")
        self._sock.settimeout(remaining)

    def recv(self, size: int, flags: int = 0) -> bytes:
        if self._phase == "sending":  # a one-way call ended without a reply
            self._wait()
        self._arm()
        data = self._sock.recv(size, flags)
        if data and self._phase == "waiting":
            self._phase = "receiving"
            if self._message_seconds:
                self._deadline = time.monotonic() + self._message_seconds
        return data

    def send(self, data: bytes, flags: int = 0) -> int:
        self._start_sending(len(data))
        self._arm()
        sent = self._sock.send(data, flags)
        if sent == len(data):  # Pyro5 sends the rest of a message until nothing is left
            self._wait()
        return sent

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._start_sending(len(data))
        self._arm()
        self._sock.sendall(data, flags)
        self._wait()

    def _start_sending(self, size: int) -> None:
        if self._phase != "sending":
            self._phase = "sending"
            self._deadline = time.monotonic() + SEND_SECONDS + size / SEND_BYTES_PER_SECOND

    def _wait(self) -> None:
        self._phase, self._deadline = "waiting", time.monotonic() + self._idle_seconds
        self._message_seconds = MESSAGE_SECONDS


def source_address(address: Any) -> str:
    """The host part of a peer address (a Unix socket's peers all count as one)."""
    return str(address[0]) if isinstance(address, tuple) else "local"


class Doorkeeper:
    """Stands in for the server's worker pool (``process(job)``, the rest passed through)."""

    def __init__(self, pool: Any, per_address: int, idle_seconds: float,
                 tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the server's TLS context; each connection's TLS handshake then runs on its worker,
        within the handshake deadline (never on the accept loop)."""
        self._pool = pool
        self.tls = tls
        self.per_address = per_address
        self.idle_seconds = idle_seconds
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._denials: queue.Queue[tuple[Any, str]] = queue.Queue(PENDING_DENIALS)
        threading.Thread(target=self._deny_loop, name="twin-denials", daemon=True).start()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    def process(self, job: Any) -> None:
        """Give ``job`` (one accepted connection) a worker, or a reason and the door."""
        address = source_address(job.caddr)
        with self._lock:
            full = self._held[address] >= self.per_address
            if not full:
                self._held[address] += 1
        if full and self.tls is not None:  # a TLS client cannot read a plain refusal
            job.csock.close()
            return
        if full:
            self._deny(job, f"too many connections from {address} ({self.per_address} at most per address); "
                            "close clients you no longer use, or ask the organiser to raise "
                            "--connections-per-address")
            return
        raw = job.csock.sock
        if self.tls is not None:
            raw = self.tls.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
        job.csock.sock = DeadlineSocket(raw, HANDSHAKE_SECONDS, self.idle_seconds)
        try:
            self._pool.process(_Admitted(job, self, address, self.tls is not None))
        except NoFreeWorkersError:
            self.release(address)
            if self.tls is not None:
                job.csock.close()
                return
            job.csock.sock = raw
            self._deny(job, "server busy: every worker is serving a connection; try again shortly, or ask "
                            "the organiser")

    def release(self, address: str) -> None:
        with self._lock:
            self._held[address] -= 1
            if self._held[address] <= 0:
                del self._held[address]

    def _deny(self, job: Any, reason: str) -> None:
        log.info("connection from %s refused: %s", job.caddr, reason)
        try:
            self._denials.put_nowait((job, reason))
        except queue.Full:
            job.csock.close()

    def _deny_loop(self) -> None:
        """Wait for every turned-away client's handshake at once; answer it with the reason as it
        arrives, and close whoever has not spoken within ``DENIAL_SECONDS``."""
        pending: dict[Any, tuple[Any, str, float]] = {}
        with selectors.DefaultSelector() as selector:
            while True:
                with contextlib.suppress(queue.Empty):
                    while len(pending) < PENDING_DENIALS:
                        job, reason = self._denials.get(timeout=None if not pending else 0.0)
                        selector.register(job.csock.sock, selectors.EVENT_READ)
                        pending[job.csock.sock] = (job, reason, time.monotonic() + DENIAL_SECONDS)
                for key, _ in selector.select(timeout=0.05):
                    job, reason, _deadline = pending.pop(key.fileobj)
                    selector.unregister(key.fileobj)
                    self._tell(job, reason)
                now = time.monotonic()
                for sock in [s for s, (_j, _r, deadline) in pending.items() if deadline < now]:
                    selector.unregister(sock)
                    pending.pop(sock)[0].csock.close()

    @staticmethod
    def _tell(job: Any, reason: str) -> None:
        """Answer ``job``'s handshake (already arriving) with ``reason``, then hang up."""
        job.csock.sock = DeadlineSocket(job.csock.sock, DENIAL_SECONDS / 4, DENIAL_SECONDS / 4)
        try:
            job.daemon._handshake(job.csock, denied_reason=reason)
        except Exception as error:  # the client left or sent nonsense; nothing more to tell it
            log.debug("denial to %s not delivered: %s", job.caddr, error)
        finally:
            job.csock.close()


class _Admitted:
    """One admitted connection's job (after its TLS handshake, with ``tls``); its address's place is
    given back when the connection ends."""

    def __init__(self, job: Any, doorkeeper: Doorkeeper, address: str, tls: bool = False) -> None:
        self._job, self._doorkeeper, self._address, self._tls = job, doorkeeper, address, tls

    def __call__(self) -> None:
        try:
            if self._tls:
                sock = self._job.csock.sock._sock
                sock.settimeout(HANDSHAKE_SECONDS)
                try:
                    sock.do_handshake()
                except (OSError, ValueError) as error:  # not TLS, a bad certificate, too slow
                    log.info("TLS handshake with %s failed: %s", self._job.caddr, error)
                    self._job.csock.close()
                    return
            self._job()
        finally:
            self._doorkeeper.release(self._address)
