"""Argument checks whose errors name the parameter, the value given and what is allowed.

Every check returns the cleaned value or raises before anything is changed, so a caller can
validate all of its inputs first and then apply them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

BRIEF_CHARS = 80  # a refusal quotes at most this much of what it was given


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def brief(value: Any) -> str:
    """``repr(value)``, cut to ``BRIEF_CHARS`` (a refusal of 32 MiB of junk quotes a line of it)."""
    try:
        text = repr(value)
    except Exception:  # a repr that fails tells nothing useful
        text = f"<{type(value).__name__}>"
    return text if len(text) <= BRIEF_CHARS else f"{text[:BRIEF_CHARS - 15]}... ({len(text)} chars)"


def allowed_range(lo: float, hi: float, unit: str = "") -> str:
    """Human-readable closed interval, e.g. ``-0.0001 to 0.0001 m``."""
    return f"{_fmt(lo)} to {_fmt(hi)}{' ' + unit if unit else ''}"


def _number(name: str, value: Any, shown: str) -> float:
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a number, got {brief(value)} ({type(value).__name__}); "
                        f"allowed {shown}")
    return float(value)


def real(name: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """Return ``value`` as a finite float within ``[lo, hi]``."""
    shown = allowed_range(lo, hi, unit)
    number = _number(name, value, shown)
    if not math.isfinite(number) or not lo <= number <= hi:
        raise ValueError(f"{name} = {brief(value)} is out of range; allowed {shown}")
    return number


def positive(name: str, value: Any, lo: float, hi: float, unit: str = "") -> float:
    """Like :func:`real` but ``lo`` itself is excluded (``lo < value <= hi``)."""
    shown = f"more than {_fmt(lo)} up to {_fmt(hi)}{' ' + unit if unit else ''}"
    number = _number(name, value, shown)
    if not math.isfinite(number) or not lo < number <= hi:
        raise ValueError(f"{name} = {brief(value)} is out of range; allowed {shown}")
    return number


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    """Return ``value`` as an int within ``[lo, hi]``; floats with an integral value pass."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {brief(value)}; allowed {lo} to {hi}")
    if isinstance(value, Real) and not isinstance(value, Integral):
        if not math.isfinite(value) or value != int(value):
            raise TypeError(f"{name} must be an integer, got {brief(value)}; allowed {lo} to {hi}")
        value = int(value)
    if not isinstance(value, Integral):
        raise TypeError(
            f"{name} must be an integer, got {brief(value)} ({type(value).__name__}); "
            f"allowed {lo} to {hi}"
        )
    if not lo <= int(value) <= hi:
        raise ValueError(f"{name} = {brief(value)} is out of range; allowed {lo} to {hi}")
    return int(value)


def one_of(name: str, value: Any, allowed: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed`` (compared with ``==``)."""
    for candidate in allowed:
        try:
            equal = type(value) is not bool and bool(value == candidate)
        except (TypeError, ValueError):  # e.g. an array: not one of the values
            equal = False
        if equal:
            return candidate
    shown = ", ".join(repr(a) for a in allowed)
    raise ValueError(f"{name} = {brief(value)} is not allowed; allowed values: {shown}")


def flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool (or 0/1)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, Integral) and value in (0, 1):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {brief(value)}")
