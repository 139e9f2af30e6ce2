"""Errors raised on the server that reach the clients as themselves (see :func:`twin.common.wire.install`)."""

from __future__ import annotations


class BudgetExhausted(RuntimeError):
    """A call that would spend more than the budget allows (nothing was done)."""
