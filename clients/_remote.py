"""Connection plumbing shared by the TEM and AFM clients."""

from __future__ import annotations

from typing import Any

from Pyro5.api import Proxy
from Pyro5.errors import CommunicationError

from twin.server import wire


def open_proxy(object_id: str, host: str | None, port: int | None) -> Proxy:
    """A bound proxy to ``object_id`` on the twin at ``host:port`` (defaults: the local server)."""
    host = host or wire.DEFAULT_HOST
    port = wire.DEFAULT_PORT if port is None else int(port)
    proxy = wire.connect(f"PYRO:{object_id}@{host}:{port}")
    try:
        proxy._pyroBind()
    except CommunicationError as error:
        raise ConnectionError(
            f"cannot reach the digital twin at {host}:{port} ({error}); is `twin serve` running there?"
        ) from None
    return proxy


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
