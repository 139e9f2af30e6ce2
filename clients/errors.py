"""Errors the twin reports to clients.

A refused call arrives as a ``ValueError``, ``TypeError`` or ``RuntimeError`` (message intact) that is
also an :class:`ApplicationServerException`, the class AutoScript scripts import from
``autoscript_core.common``: scripts catching either kind run unchanged.
"""

from __future__ import annotations

from twin.common.errors import BudgetExhausted as Spent


class ApplicationServerException(Exception):  # noqa: N818 - the vendor's name
    """A refusal reported by the microscope's application server."""


class InvalidValue(ValueError, ApplicationServerException):
    """A value outside what the instrument allows."""


class InvalidType(TypeError, ApplicationServerException):
    """A value of the wrong kind."""


class InvalidState(RuntimeError, ApplicationServerException):
    """A call the instrument cannot do in its present state."""


class BudgetExhausted(InvalidState):
    """A challenge's budget (calls, wall time, electrons, scan lines, scanned area) is spent; the call
    was not made."""


def translated(error: Exception) -> Exception:
    """The client-side counterpart of a refusal raised on the server (others pass unchanged)."""
    if isinstance(error, Spent):
        return BudgetExhausted(*error.args)
    for builtin, kind in ((ValueError, InvalidValue), (TypeError, InvalidType), (RuntimeError, InvalidState)):
        if type(error) is builtin:
            return kind(*error.args)
    return error
