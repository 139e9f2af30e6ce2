"""The small data helpers Nanosurf's demos import next to the connection, for machines without the
vendor's package: ``SciChannel`` (a numbered array with a unit and a name), ``SciStream`` (channels over
a common x axis) and, as the 1.x packages had it, ``sci_val`` (values with SI prefixes). Written for
the twin after the documented names and signatures; with the vendor's package installed, ``twin run``
uses its own instead."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace
from typing import Any

import numpy as np


class SciChannel:
    """An array of values (``value``, numpy) with a ``unit`` and a ``name``."""

    def __init__(self, copy_from: Any = None, array_length: int = 0, unit: str = "arb",
                 name: str = "Data") -> None:
        if isinstance(copy_from, SciChannel):
            self.value, unit, name = np.array(copy_from.value, dtype=float), copy_from.unit, copy_from.name
        elif copy_from is not None:
            self.value = np.array(copy_from, dtype=float)
        else:
            self.value = np.zeros(array_length)
        self.unit, self.name = unit, name

    def __len__(self) -> int:
        return len(self.value)

    def __repr__(self) -> str:
        return f"SciChannel({self.name!r}, {len(self)} values in {self.unit})"


class SciStream:
    """Channels sampled at common x values: ``x`` (a SciChannel) and ``channels`` (a list of them)."""

    def __init__(self, source: Any = None, channels: int = 1, stream_length: int = 0, x_unit: str = "",
                 x_name: str = "") -> None:
        self.x = SciChannel(array_length=stream_length, unit=x_unit, name=x_name)
        self.channels = [SciChannel(array_length=stream_length) for _ in range(channels)]
        if isinstance(source, SciStream):
            self.x = SciChannel(source.x)
            self.channels = [SciChannel(c) for c in source.channels]
        elif isinstance(source, SciChannel):
            self.set_stream_length(len(source))
            self.set_channel(0, source)
        elif isinstance(source, tuple) and len(source) == 2:
            self.set_stream_range(source[0], x_unit, x_name)
            self.set_channel(0, source[1])
        elif source is not None:
            self.set_stream_range(source, x_unit, x_name)

    def set_stream_length(self, length: int) -> None:
        self.x.value = np.resize(self.x.value, length)
        for channel in self.channels:
            channel.value = np.resize(channel.value, length)

    def get_stream_length(self) -> int:
        return len(self.x)

    def set_stream_range(self, values: Any, unit: str = "", name: str = "") -> None:
        unit, name = unit or getattr(values, "unit", ""), name or getattr(values, "name", "")
        self.x = SciChannel(values, unit=unit, name=name)
        self.set_stream_length(len(self.x))

    def get_stream_range(self) -> SciChannel:
        return self.x

    def define_stream_range(self, min: float, max: float, unit: str = "", name: str = "") -> None:  # noqa: A002
        self.set_stream_range(np.linspace(min, max, self.get_stream_length()), unit, name)

    def get_stream_unit(self) -> str:
        return self.x.unit

    def get_channel_count(self) -> int:
        return len(self.channels)

    def set_channel_count(self, channels: int) -> None:
        length = self.get_stream_length()
        more = [SciChannel(array_length=length) for _ in range(channels)]
        self.channels = (self.channels + more)[:channels]

    def get_channel(self, index: int) -> SciChannel:
        return self.channels[index]

    def set_channel(self, index: int, source: Any, unit: str = "", name: str = "") -> None:
        channel = SciChannel(source, unit=unit or getattr(source, "unit", "arb"),
                             name=name or getattr(source, "name", "Data"))
        if len(self.x) != len(channel):
            self.set_stream_length(len(channel))
        self.channels[index] = channel

    def get_channel_unit(self, index: int) -> str:
        return self.channels[index].unit

    def set_channel_unit(self, index: int, unit: str) -> None:
        self.channels[index].unit = unit

    def get_channel_name(self, index: int) -> str:
        return self.channels[index].name

    def set_channel_name(self, index: int, name: str) -> None:
        self.channels[index].name = name

    def __len__(self) -> int:
        return self.get_stream_length()


_PREFIXES = {-24: "y", -21: "z", -18: "a", -15: "f", -12: "p", -9: "n", -6: "µ", -3: "m", 0: "",
             3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E", 21: "Z", 24: "Y"}


def to_string(value: float, unit: str = "", precision: int = 3) -> str:
    """``value`` with an SI prefix on ``unit`` and ``precision`` significant digits: ``1.23 µm``."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g} {unit}".strip()
    exponent = max(-24, min(24, 3 * math.floor(math.log10(abs(value)) / 3)))
    return f"{value / 10**exponent:.{precision}g} {_PREFIXES[exponent]}{unit}".strip()


def from_str(text: str) -> SciVal:
    """A value from text such as ``"0.1mm"`` or ``"12 kHz"``."""
    match = re.fullmatch(r"\s*([-+0-9.eE]+)\s*([yzafpnuµmkMGTPEZY]?)(\S*)\s*", text)
    if not match:
        raise ValueError(f"text = {text!r} is not a value with a unit, such as '0.1mm'")
    number, prefix, unit = match.groups()
    if prefix and not unit:  # "5m" is five metres, not five milli-nothing
        prefix, unit = "", prefix
    exponent = {v: k for k, v in _PREFIXES.items()} | {"u": -6}
    return SciVal(float(number) * 10 ** exponent[prefix], unit)


class SciVal:
    """A value with a unit, written with an SI prefix."""

    def __init__(self, value: float = 0.0, unit_str: str = "") -> None:
        self._value, self._unit = float(getattr(value, "value", value)), unit_str

    def value(self) -> float:
        return self._value

    def unit(self) -> str:
        return self._unit

    def to_string(self, precision: int = 3) -> str:
        return to_string(self._value, self._unit, precision)

    def __str__(self) -> str:
        return self.to_string()


sci_val = SimpleNamespace(SciVal=SciVal, from_str=from_str, convert=SimpleNamespace(to_string=to_string))
