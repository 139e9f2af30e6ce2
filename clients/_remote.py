"""Connection plumbing shared by the TEM and AFM clients (the implementation of :mod:`clients.connection`)."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from Pyro5.api import Proxy
from Pyro5.errors import CommunicationError

from clients.errors import translated
from twin.common import wire
from twin.common.progress import PROGRESS_VARIABLE  # noqa: F401 - "0": long calls report no progress
from twin.common.progress import wanted as progress_wanted

INSTANCE_VARIABLE = "TWIN_INSTANCE"


def open_proxy(object_id: str, host: str | None, port: int | None, instance: str | None = None) -> Proxy:
    """A bound proxy to ``object_id`` of ``instance`` (a name or token; None: the server's default
    one) on the twin at ``host:port`` (defaults: the local server)."""
    host = host or wire.DEFAULT_HOST
    port = wire.DEFAULT_PORT if port is None else int(port)
    proxy = wire.connect(f"PYRO:{wire.object_id(object_id, instance)}@{host}:{port}")
    try:
        proxy._pyroBind()
    except CommunicationError as error:
        if "unknown object" in str(error):
            raise ConnectionError(
                f"the twin at {host}:{port} has no instance {instance or 'default'!r} (or no {object_id}); "
                "ask the organiser for your instance name or token"
            ) from None
        if "rejected" in str(error):  # the server said why: busy, or too many from this address
            reason = str(error).split("rejected: ", 1)[-1]
            raise ConnectionError(
                f"the twin at {host}:{port} refused the connection: {reason}; disconnect() clients you no "
                "longer use (each client object holds its own)"
            ) from None
        raise ConnectionError(
            f"cannot reach the digital twin at {host}:{port} ({error}); is `twin serve` running there?"
        ) from None
    return proxy


_redirect: tuple[str, int] | None = None


@contextlib.contextmanager
def redirect_connections(host: str, port: int) -> Iterator[None]:
    """Within this block every client connects to ``host:port``, whatever address a script names
    (``twin run`` uses it: scripts written for the lab carry the instrument PC's address)."""
    global _redirect
    previous, _redirect = _redirect, (host, int(port))
    try:
        yield
    finally:
        _redirect = previous


PROGRESS_AFTER_SECONDS = 5.0
PROGRESS_EVERY_SECONDS = 2.0
LONG_CALLS = ("acquire_camera_image", "acquire_stem_images", "run_auto_function")


class _Refusals:
    """A proxy whose remote refusals are raised as :mod:`clients.errors` classes; each call ends by
    noting the time in ``used`` (under the proxy's object id). Ctrl-C during a call drops the
    connection, which stops the work on the server; a TEM acquisition that takes more than a few
    seconds reports its progress on stderr."""

    def __init__(self, proxy: Proxy, object_id: str, used: dict[str, float], connection: Connection) -> None:
        self._proxy, self._object_id, self._used, self._connection = proxy, object_id, used, connection

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._proxy, name)
        watched = self._object_id == wire.TEM_OBJECT and name in LONG_CALLS

        def call(*args: Any, **kwargs: Any) -> Any:
            reporter = _ProgressReporter(self._connection) if watched else None
            try:
                return method(*args, **kwargs)
            except (ValueError, TypeError, RuntimeError, PermissionError) as error:
                raise translated(error) from None
            except KeyboardInterrupt:
                self._proxy._pyroRelease()  # the server sees the hang-up and stops the work
                raise
            finally:
                if reporter is not None:
                    reporter.stop()
                self._used[self._object_id] = time.monotonic()

        return call


class _ProgressReporter:
    """Prints the server's progress of a long call on stderr (from a second connection) until stopped."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._done = threading.Event()
        self._thread = None
        if progress_wanted():
            self._thread = threading.Thread(target=self._run, name="twin-progress", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self._done.wait(PROGRESS_AFTER_SECONDS):
            return
        try:
            proxy = open_proxy(wire.TEM_OBJECT, self._connection.host, self._connection.port,
                               self._connection.instance)
        except ConnectionError:
            return
        from tqdm import tqdm

        # a bar on a terminal only (a log file or a pipe stays clean), with the server's estimate of the
        # time left: it knows the work (probes, slices) better than a rate over a few seconds would
        bar = None
        try:
            while not self._done.is_set():
                report = proxy.progress()
                if report:
                    task, left = f"[twin] {report['task']}", f"about {_duration(report['seconds_left'])} left"
                    if bar is None:
                        bar = tqdm(total=100, initial=100 * report["fraction"], desc=task, postfix=left,
                                   file=sys.stderr, disable=None, leave=False,
                                   bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}{postfix}")
                    bar.set_description_str(task, refresh=False)
                    bar.set_postfix_str(left, refresh=False)
                    bar.n = 100 * report["fraction"]
                    bar.refresh()
                self._done.wait(PROGRESS_EVERY_SECONDS)
        except Exception:  # noqa: BLE001 - progress is a courtesy; the call itself reports its end
            pass
        finally:
            if bar is not None:
                bar.close()
            proxy._pyroRelease()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:  # the bar cleared before the caller prints on
            self._thread.join(timeout=2.0)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


class Connection:
    """Proxies to one twin, opened on first use, usable from whichever thread calls next.

    Pyro5 binds a proxy to the thread that made it; scripts often hand a client to a worker or GUI
    thread, so each access claims the proxy for the calling thread. Calls from two threads at the
    same moment still need the caller's own lock, as with one socket.

    The server closes a connection left idle past the time it names at connecting; a proxy idle for
    half of that lets its connection go before its next call and opens a new one (a notebook left
    overnight carries on where it was).
    """

    def __init__(self, host: str | None, port: int | None, instance: str | None = None) -> None:
        """``instance``: the twin instance's name or token on a server hosting several (default: the
        environment variable TWIN_INSTANCE, else the server's default instance)."""
        if _redirect is not None:
            host, port = _redirect
        self.host = host or wire.DEFAULT_HOST
        self.port = wire.DEFAULT_PORT if port is None else int(port)
        self.instance = instance or os.environ.get(INSTANCE_VARIABLE) or None
        self._proxies: dict[str, Proxy] = {}
        self._used: dict[str, float] = {}
        self.closed = False

    def __getitem__(self, object_id: str) -> Any:
        if self.closed:
            raise ConnectionError("not connected; connect first")
        proxy = self._proxies.get(object_id)
        if proxy is None:
            proxy = self._proxies[object_id] = open_proxy(object_id, self.host, self.port, self.instance)
            self._used[object_id] = time.monotonic()
        else:
            proxy._pyroClaimOwnership()
            idle = getattr(proxy, "idle_seconds", None)
            if idle is not None and time.monotonic() - self._used[object_id] > idle / 2:
                proxy._pyroRelease()  # the next call connects afresh
        return _Refusals(proxy, object_id, self._used, self)

    def close(self) -> None:
        for proxy in self._proxies.values():
            proxy._pyroClaimOwnership()
            proxy._pyroRelease()
        self._proxies.clear()
        self.closed = True


class RemoteSetting:
    """A property backed by a named setting on the server (``get``/``set`` of a remote object).

    The owning object provides the proxy as the attribute named ``via`` (default ``_remote``).
    """

    def __init__(self, name: str, doc: str = "", via: str = "_remote") -> None:
        self.name = name
        self.via = via
        self.__doc__ = doc or f"The twin's setting {name!r}."

    def __get__(self, owner: Any, _type: type | None = None) -> Any:
        if owner is None:
            return self
        return getattr(owner, self.via).get(self.name)

    def __set__(self, owner: Any, value: Any) -> None:
        getattr(owner, self.via).set(self.name, value)
