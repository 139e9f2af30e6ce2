"""Connecting to a twin, for programs that drive one through the clients (``twin run``, agents, tools).

The public face of the clients' connection plumbing (:mod:`clients._remote` is its implementation and
may change): a :class:`Connection` to a twin instance, :func:`open_proxy` for one remote object,
:func:`redirect_connections` to send every client to one address, and the environment variables the
clients read.
"""

from __future__ import annotations

from clients._remote import (
    INSTANCE_VARIABLE,
    PROGRESS_VARIABLE,
    Connection,
    RemoteSetting,
    open_proxy,
    redirect_connections,
)
from twin.common.wire import CA_VARIABLE, DEFAULT_HOST, DEFAULT_PORT, SECRET_VARIABLE

__all__ = ["CA_VARIABLE", "DEFAULT_HOST", "DEFAULT_PORT", "INSTANCE_VARIABLE", "PROGRESS_VARIABLE",
           "SECRET_VARIABLE", "Connection", "RemoteSetting", "open_proxy", "redirect_connections"]
