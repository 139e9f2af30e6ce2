"""The hidden state of one episode, as its seed drew it from the scenario (:meth:`Scenario.draw
<twin.scenarios.spec.Scenario.draw>`); the scorers read it (:mod:`twin.scenarios.scoring`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twin.sample.frames import InstrumentFrame


@dataclass(frozen=True)
class Hidden:
    """The concrete hidden state of one episode (what the seed drew)."""

    settings: dict[str, dict[str, Any]]
    frames: dict[str, InstrumentFrame]
    events: list[dict[str, Any]]  # {"counter", "at", "set": {instrument: {setting: value}}}
