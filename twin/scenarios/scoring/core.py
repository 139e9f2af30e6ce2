"""What every score function builds on: the context it reads, the score it returns, the registry.

A scorer is ``scorer(context, answer) -> Score``; see :mod:`twin.scenarios.scoring`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twin.digital_twin import DigitalTwin
from twin.scenarios.hidden import Hidden


@dataclass
class Context:
    """What a scorer may look at: the twin itself (ground truth), the hidden state, the images the
    episode produced (by instrument and frame index) and what it spent."""

    twin: DigitalTwin
    hidden: Hidden
    params: dict[str, Any]
    images: dict[tuple[str, int], Any] = field(default_factory=dict)
    spent: dict[str, float] = field(default_factory=dict)
    calls: int = 0


@dataclass(frozen=True)
class Score:
    """A score in [0, 1] and how it came about (errors, matches, ...)."""

    value: float
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", float(min(1.0, max(0.0, self.value))))

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.value, "details": self.details}


Scorer = Callable[[Context, Any], Score]
SCORERS: dict[str, Scorer] = {}
READS_IMAGES: set[str] = set()  # scorers that look at the episode's images (the others need none kept)


def scorer(name: str, reads_images: bool = False) -> Callable[[Scorer], Scorer]:
    """Register a score function under ``name`` (the scenario file's ``score.function``)."""

    def register(function: Scorer) -> Scorer:
        SCORERS[name] = function
        if reads_images:
            READS_IMAGES.add(name)
        return function

    return register


def mapping(answer: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """``answer`` as a mapping holding ``keys`` (the error names what is missing)."""
    if not isinstance(answer, dict):
        raise TypeError(f"answer must be a mapping with {', '.join(keys) or 'no keys'}, got {answer!r:.80}")
    missing = [k for k in keys if k not in answer]
    if missing:
        raise ValueError(f"answer is missing {', '.join(missing)}; give {', '.join(keys)}")
    return answer
