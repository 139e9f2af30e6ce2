"""Scores of the AFM challenges."""

from __future__ import annotations

from typing import Any

from twin import validation
from twin.scenarios.scoring import Context, Score, mapping, scorer


@scorer("first_changed_frame")
def first_changed_frame(context: Context, answer: Any) -> Score:
    """How close ``answer["frame_index"]`` is to the first frame scanned after the hidden tip change
    (the drawn AFM frame count of the scenario's first event): 0.5 ** |error in frames|."""
    reported = validation.integer("answer frame_index", mapping(answer, ("frame_index",))["frame_index"],
                                  0, 10**6)
    truth = next(e["at"] for e in context.hidden.events if e["counter"] == "afm_frames")
    return Score(0.5 ** abs(reported - truth), {"reported": reported, "true_frame_index": truth})
