"""Scores of the TEM/STEM challenges."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.scenarios.scoring import Context, Score, mapping, scorer


@scorer("tem_focus")
def tem_focus(context: Context, answer: Any) -> Score:
    """How close the objective ends to Gaussian focus without astigmatism: a focus part
    ``exp(-(C10 / focus_tolerance)² / 2)`` and a stigmation part ``exp(-(C12 / astigmatism_tolerance)² / 2)``
    weighted by ``focus_weight`` and 1 - ``focus_weight``. The answer is empty: the column is scored."""
    mapping(answer if answer is not None else {}, ())
    tem = context.twin.tem
    aberrations = tem.aberrations(tem.settings.snapshot())
    p = context.params
    focus = float(np.exp(-0.5 * (aberrations.C10 / p["focus_tolerance"]) ** 2))
    stigmation = float(np.exp(-0.5 * (aberrations.C12 / p["astigmatism_tolerance"]) ** 2))
    weight = p.get("focus_weight", 0.5)
    return Score(weight * focus + (1 - weight) * stigmation,
                 {"defocus_error": aberrations.C10, "astigmatism": aberrations.C12,
                  "focus_part": focus, "stigmation_part": stigmation})
