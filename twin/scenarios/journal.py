"""The journal of an episode: every call with its time, caller, arguments and a summary of its result.

One JSON object per line: a header (scenario, its digest, seed, instance, version), then one entry per
call. Arguments are kept whole (arrays as lists) so ``twin scenario replay`` can make the same calls;
results are summarised (arrays by dtype, shape and a SHA-256 of their bytes), so a replay proves it
produced the same data without the journal holding the images.
"""

from __future__ import annotations

import hashlib
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import numpy as np

#: result fields that tell when a call ran on the wall clock, not what it produced
VOLATILE = frozenset({"acquisition_start_date_time", "acquisition_date_time", "start_datetime"})
_LONG_TEXT = 256
#: a refused call's arguments are kept whole up to about this many bytes, else only their size and digest
#: (a refusal changes nothing, so a replay need not make it again; junk must not fill the disk)
REFUSED_ARGUMENTS_BYTES = 64 << 10
OMITTED = "__omitted__"


def rough_size(value: Any, budget: int = 100_000) -> int:
    """About how many bytes ``value`` holds (arrays, strings and bytes by length, containers summed;
    looks at no more than ``budget`` items, then guesses high)."""
    stack, total, seen = [value], 0, 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > budget:
            return max(total, REFUSED_ARGUMENTS_BYTES + 1)
        if isinstance(item, np.ndarray):
            total += item.nbytes
        elif isinstance(item, (str, bytes, bytearray)):
            total += len(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        else:
            total += 8
    return total




def summary(value: Any) -> Any:
    """A JSON-able fingerprint of a result: equal data give equal summaries."""
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return {"array": data.dtype.str, "shape": list(data.shape),
                "sha256": hashlib.sha256(data.view(np.uint8).reshape(-1)).hexdigest()[:24]}
    if isinstance(value, dict):
        return {str(k): summary(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, (list, tuple)):
        return [summary(v) for v in value]
    if isinstance(value, str) and len(value) > _LONG_TEXT:
        return {"text": len(value), "sha256": hashlib.sha256(value.encode()).hexdigest()[:24]}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return repr(value)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value) if isinstance(value, str) else repr(value)


def encode(value: Any) -> Any:
    """Arguments as JSON that :func:`decode` turns back into the same values (arrays tagged; NaN,
    infinities and complex numbers spelled out; anything else kept as its text, which no replay can
    send again)."""
    if isinstance(value, np.ndarray):
        plain = value.dtype.kind in "biu" or (value.dtype.kind == "f" and np.isfinite(value).all())
        return {"__ndarray__": value.tolist() if plain else encode(value.tolist()), "dtype": value.dtype.str}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, np.generic):
        return encode(value.item())
    if isinstance(value, float) and not np.isfinite(value):
        return {"__float__": repr(value)}
    if isinstance(value, complex):
        return {"__complex__": [encode(value.real), encode(value.imag)]}
    if isinstance(value, bytes):
        return {"__bytes__": value.hex()}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return {"__text__": f"{value!r:.256}"}


def decode(value: Any) -> Any:
    """The arguments :func:`encode` wrote."""
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(decode(value["__ndarray__"]), dtype=value["dtype"])
        if "__float__" in value:
            return float(value["__float__"])
        if "__complex__" in value:
            return complex(*decode(value["__complex__"]))
        if "__bytes__" in value:
            return bytes.fromhex(value["__bytes__"])
        return {k: decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [decode(v) for v in value]
    return value


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class Journal:
    """Entries in memory, each also appended (and flushed) to ``path`` if one is given."""

    def __init__(self, header: dict[str, Any], path: str | Path | None = None) -> None:
        self.header = {"journal": 1, "created": _now(), **header}
        self.entries: list[dict[str, Any]] = []
        self.path = Path(path) if path is not None else None
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self.bytes = 0  # what the entries take as JSON lines
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("w")
            self._write(self.header)

    def _write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, allow_nan=False) + "\n"
        self.bytes += len(line)
        if self._file is not None:
            self._file.write(line)
            self._file.flush()

    def record(self, *, instrument_time: float, caller: str, call: str, args: Any, kwargs: Any,
               result: Any = None, error: BaseException | None = None, seconds: float = 0.0,
               counted: bool = True) -> dict[str, Any]:
        """Append one call (``counted``: whether it counted against the call budget); returns the entry."""
        if error is not None and rough_size((args, kwargs)) > REFUSED_ARGUMENTS_BYTES:
            kept_args, kept_kwargs = {OMITTED: rough_size(args)}, {OMITTED: rough_size(kwargs)}
        else:
            kept_args, kept_kwargs = encode(list(args)), encode(dict(kwargs))
        entry = {"n": 0, "wall": _now(), "t": instrument_time, "caller": caller, "call": call,
                 "args": kept_args, "kwargs": kept_kwargs, "seconds": round(seconds, 6)}
        if isinstance(kept_args, dict):  # only what :data:`OMITTED` stands for is a mapping here
            entry["counted"] = counted
        if error is None:
            entry["result"] = summary(result)
        else:
            entry["error"] = f"{type(error).__name__}: {error}"
        with self._lock:  # numbered, kept and written together: the file and memory never disagree
            entry["n"] = len(self.entries)
            self._write(entry)
            self.entries.append(entry)
        return entry

    def carry_on(self, path: str | Path, header: dict[str, Any], entries: list[dict[str, Any]]) -> None:
        """Become the journal written at ``path`` (its ``header`` and ``entries``): later calls are
        appended there (a restarted server carrying on an episode)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self.header, self.entries, self.path = dict(header), list(entries), Path(path)
            with self.path.open("rb+") as file:  # drop a last line cut short, if any
                file.truncate(file.read().rfind(b"\n") + 1)
            self.bytes = self.path.stat().st_size
            self._file = self.path.open("a")

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def deterministic(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry without what differs between two runs of the same calls (wall time, caller, duration)."""
    return {k: v for k, v in entry.items() if k not in ("wall", "caller", "seconds")}


def read(path: str | Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The header and entries of the journal file at ``path``."""
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ValueError(f"journal {str(path)!r} cannot be read: {error}") from None
    lines = text.splitlines()
    if text and not text.endswith("\n"):
        lines.pop()  # a line cut short by a server that stopped while writing it: that call never ended
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise ValueError(f"journal {str(path)!r} line {number} is not JSON ({error}); mend or remove "
                             "that line") from None
    if not records or records[0].get("journal") != 1:
        raise ValueError(f"journal {str(path)!r} has no journal header on its first line")
    return records[0], records[1:]
