"""Scores of the AFM challenges."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin import validation
from twin.digital_twin import DigitalTwin
from twin.instruments.afm import AfmInstrument
from twin.physics.afm import Feedback, Tip
from twin.sample import Window
from twin.sample.truth import height_map
from twin.scenarios.scoring.core import Context, Score, mapping, scorer


@scorer("first_changed_frame")
def first_changed_frame(context: Context, answer: Any) -> Score:
    """How close ``answer["frame_index"]`` is to the first frame scanned after the hidden tip change
    (the drawn AFM frame count of the scenario's first event), corrected for chance: the raw score
    ``r = 0.5 ** |error in frames|`` becomes ``max(0, (r - c) / (1 - c))``, ``c`` the best mean raw
    score a fixed answer reaches under ``prior`` (the event's own draw, ``{integers: [lo, hi]}``)."""
    reported = validation.integer("answer frame_index", mapping(answer, ("frame_index",))["frame_index"],
                                  0, 10**6)
    truth = next(e["at"] for e in context.hidden.events if e["counter"] == "afm_frames")
    raw = 0.5 ** abs(reported - truth)
    chance = blind_frame_score(*_integers(context.params["prior"]))
    return Score((raw - chance) / (1.0 - chance), {"reported": reported, "true_frame_index": truth,
                                                   "raw_score": raw, "chance": chance})


def blind_frame_score(lo: int, hi: int) -> float:
    """The highest mean of ``0.5 ** |k - truth|`` a fixed answer ``k`` reaches when the truth is uniform
    over the integers ``lo`` to ``hi`` (the best ``k`` lies among them)."""
    truths = np.arange(lo, hi + 1)
    return max(float(np.mean(0.5 ** np.abs(k - truths))) for k in truths)


def _integers(prior: Any) -> tuple[int, int]:
    """``lo, hi`` of a ``{integers: [lo, hi]}`` draw."""
    if not isinstance(prior, dict) or list(prior) != ["integers"] or len(prior["integers"]) != 2:
        raise ValueError(f"score prior = {prior!r}: give the event's draw, {{integers: [lo, hi]}}")
    lo, hi = (int(v) for v in prior["integers"])
    return lo, hi


def surface_grid(params: dict[str, Any]) -> tuple[Window, tuple[int, int]]:
    """The answer's grid: a square of side ``region_size`` (m) centred on the AFM's origin cut into
    ``pixels`` x ``pixels`` (rows y, columns x, both increasing)."""
    size, pixels = params["region_size"], int(params["pixels"])
    return Window.around(0.0, 0.0, size, size), (pixels, pixels)


@scorer("surface_error")
def surface_error(context: Context, answer: Any) -> Score:
    """How well ``answer["heights"]`` (m, on the scenario's grid) recovers the true van der Waals surface
    (what an infinitely sharp tip would trace, in the AFM's frame): 1 - RMSE / RMS, the RMSE after
    removing the best constant offset, RMS the true surface's own variation (a flat answer scores 0)."""
    _, shape = surface_grid(context.params)
    heights = mapping(answer, ("heights",))["heights"]
    try:
        heights = np.asarray(heights, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"answer heights must be a {shape[0]} x {shape[1]} array of heights in m") from None
    if heights.shape != shape or not np.all(np.isfinite(heights)):
        raise ValueError(f"answer heights has shape {heights.shape}; give {shape[0]} x {shape[1]} finite "
                         "heights in m (rows y increasing, columns x increasing)")
    return surface_score(heights, true_surface(context.twin, context.params))


def true_surface(twin: DigitalTwin, params: dict[str, Any]) -> np.ndarray:
    """The van der Waals surface (m) on the scenario's grid, in the AFM's frame."""
    window, shape = surface_grid(params)
    return height_map(twin.sample, window, shape, twin.afm.sample.frame)


def surface_score(heights: np.ndarray, truth: np.ndarray) -> Score:
    """1 - RMSE / RMS of ``heights`` against ``truth`` (m), the RMSE after removing the best constant
    offset, RMS the truth's own variation."""
    residual = heights - truth
    rmse = float(np.sqrt(np.mean((residual - residual.mean()) ** 2)))
    spread = float(truth.std())
    return Score(1.0 - rmse / spread, {"rmse": rmse, "true_rms": spread, "offset": float(residual.mean())})


@scorer("fast_clean_scan")
def fast_clean_scan(context: Context, answer: Any) -> Score:
    """The z-loop and line time as set at the answer, scored on a reference frame of the scenario's
    region (:func:`reference_frame`) by :func:`clean_scan`. The answer is empty (the instrument's state
    is scored)."""
    mapping(answer if answer is not None else {}, ())
    afm = context.twin.afm
    state = afm.settings.snapshot()
    return clean_scan(reference_frame(afm, context.params), afm.feedback(state), state["Scan.Scantime"],
                      context.params, afm.hardware.z_range)


def reference_frame(afm: AfmInstrument, params: dict[str, Any]) -> np.ndarray:
    """The ideal trace (m, ``[line, point]``) of the scenario's square on its grid, as a fresh tip of
    ``tip_radius`` (m) would follow it, however worn or broken the instrument's tip is by then."""
    window, (rows, columns) = surface_grid(params)
    return afm.topography(window, columns, rows, Tip(params["tip_radius"]))[0]


def clean_scan(ideal: np.ndarray, feedback: Feedback, line_time: float, params: dict[str, Any],
               z_range: float) -> Score:
    """How fast and clean ``feedback`` traces ``ideal`` (the reference frame, m) at ``line_time`` (s, forward
    and backward): ``e`` the RMS (m) by which its forward trace misses ``ideal``; speed
    ``min(1, fastest / line_time)`` times cleanliness ``min(1, (tolerance / e)^4)``, so the fastest line
    time at which the loop still follows within ``tolerance`` scores best."""
    window, (_, columns) = surface_grid(params)
    dt = (window.width / columns) / (2 * window.width / line_time)  # forward and backward in one line time
    traced = feedback.track(ideal, dt, z_range)
    error = float(np.sqrt(np.mean((traced - ideal) ** 2)))
    speed = min(1.0, params["fastest"] / line_time)
    clean = min(1.0, (params["tolerance"] / max(error, 1e-15)) ** 4)
    return Score(speed * clean, {"tracking_error": error, "line_time": line_time, "speed_part": speed,
                                 "clean_part": clean, "stable": feedback.is_stable()})
