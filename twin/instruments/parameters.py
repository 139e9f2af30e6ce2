"""Declared instrument settings: each knows its unit, range and default, and checks new values."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from twin import validation
from twin.validation import brief


@dataclass(frozen=True)
class Real:
    """A real-valued setting in ``[lo, hi]`` (SI ``unit``)."""

    name: str
    unit: str
    lo: float
    hi: float
    default: float
    doc: str = ""

    def check(self, value: Any) -> float:
        return validation.real(self.name, value, self.lo, self.hi, self.unit)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "min": self.lo, "max": self.hi, "doc": self.doc}


@dataclass(frozen=True)
class Integer:
    """An integer setting in ``[lo, hi]``."""

    name: str
    lo: int
    hi: int
    default: int
    doc: str = ""
    unit: str = ""

    def check(self, value: Any) -> int:
        return validation.integer(self.name, value, self.lo, self.hi)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "min": self.lo, "max": self.hi, "doc": self.doc}


@dataclass(frozen=True)
class Choice:
    """A setting that takes one of a fixed list of values."""

    name: str
    allowed: Sequence[Any]
    default: Any
    doc: str = ""
    unit: str = ""

    def check(self, value: Any) -> Any:
        return validation.one_of(self.name, value, self.allowed)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "allowed": list(self.allowed), "doc": self.doc}


@dataclass(frozen=True)
class Flag:
    """An on/off setting."""

    name: str
    default: bool
    doc: str = ""
    unit: str = ""

    def check(self, value: Any) -> bool:
        return validation.flag(self.name, value)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "allowed": [False, True], "doc": self.doc}


@dataclass(frozen=True)
class Vector:
    """A 2-vector setting (x, y), each component in ``[lo, hi]`` (SI ``unit``)."""

    name: str
    unit: str
    lo: float
    hi: float
    default: tuple[float, float]
    doc: str = ""

    def check(self, value: Any) -> tuple[float, float]:
        if isinstance(value, dict):
            value = (value.get("x"), value.get("y"))
        if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
            raise TypeError(
                f"{self.name} must be a point (x, y), got {brief(value)}; each allowed "
                f"{validation.allowed_range(self.lo, self.hi, self.unit)}"
            )
        return (validation.real(f"{self.name}.x", value[0], self.lo, self.hi, self.unit),
                validation.real(f"{self.name}.y", value[1], self.lo, self.hi, self.unit))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "unit": self.unit, "min": self.lo, "max": self.hi, "doc": self.doc}


Parameter = Real | Integer | Choice | Flag | Vector


class Settings:
    """The current values of a set of declared parameters, safe to share between threads."""

    def __init__(self, parameters: Iterable[Parameter]) -> None:
        self._parameters = {p.name: p for p in parameters}
        self._values = {name: p.default for name, p in self._parameters.items()}
        self._lock = threading.Lock()

    def parameter(self, name: str) -> Parameter:
        if not isinstance(name, str) or name not in self._parameters:
            raise ValueError(f"setting {brief(name)} does not exist; allowed: {', '.join(self._parameters)}")
        return self._parameters[name]

    def get(self, name: str) -> Any:
        self.parameter(name)
        with self._lock:
            return self._values[name]

    def set(self, name: str, value: Any) -> Any:
        """Check ``value`` and store it; nothing changes if the check fails."""
        checked = self.parameter(name).check(value)
        with self._lock:
            self._values[name] = checked
        return checked

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)

    def peek(self) -> dict[str, Any]:
        """The values without taking the lock, for observers that must never wait (the live page): a
        dictionary copy is one step for the interpreter, so each value is either before or after a
        concurrent change."""
        return self._values.copy()

    def names(self) -> tuple[str, ...]:
        """Every setting's name."""
        return tuple(self._parameters)

    def describe(self) -> list[dict[str, Any]]:
        return [p.describe() for p in self._parameters.values()]
