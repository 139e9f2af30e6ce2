"""Remote calls checked against their signatures before they run, and stopped if their client leaves.

A call with the wrong arguments would otherwise fail inside the method with Python's own message,
which names the server's classes (``TemService.set() missing 1 required positional argument``). The
check names the call as a client makes it and lists what it takes (``tem.set(name, value): missing a
required argument: 'value'``). While the call runs, its connection is watched
(:mod:`twin.server.hangups`): long work it starts stops if the client hangs up.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from twin.instruments.work import cancelled_with
from twin.server.hangups import WATCHER

Service = TypeVar("Service", bound=type)


def checked_calls(target: str) -> Callable[[Service], Service]:
    """Class decorator: every public method of the class refuses arguments its signature does not
    take, naming the call as ``target.method(parameters)``, and runs cancellable by a hang-up."""

    def decorate(cls: Service) -> Service:
        for name, function in list(vars(cls).items()):
            if callable(function) and not name.startswith("_"):
                setattr(cls, name, _checking(f"{target}.{name}", function))
        return cls

    return decorate


def _checking(called: str, function: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(function)
    shown = f"{called}({', '.join(list(signature.parameters)[1:])})"

    @functools.wraps(function)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            signature.bind(self, *args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{shown}: {error}") from None
        with WATCHER.watching() as gone, cancelled_with(gone):
            return function(self, *args, **kwargs)

    return method
