"""Scores of the AFM challenges."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin import validation
from twin.sample import Window
from twin.sample.truth import height_map
from twin.scenarios.scoring import Context, Score, mapping, scorer


@scorer("first_changed_frame")
def first_changed_frame(context: Context, answer: Any) -> Score:
    """How close ``answer["frame_index"]`` is to the first frame scanned after the hidden tip change
    (the drawn AFM frame count of the scenario's first event): 0.5 ** |error in frames|."""
    reported = validation.integer("answer frame_index", mapping(answer, ("frame_index",))["frame_index"],
                                  0, 10**6)
    truth = next(e["at"] for e in context.hidden.events if e["counter"] == "afm_frames")
    return Score(0.5 ** abs(reported - truth), {"reported": reported, "true_frame_index": truth})


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
    window, shape = surface_grid(context.params)
    heights = mapping(answer, ("heights",))["heights"]
    try:
        heights = np.asarray(heights, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"answer heights must be a {shape[0]} x {shape[1]} array of heights in m") from None
    if heights.shape != shape or not np.all(np.isfinite(heights)):
        raise ValueError(f"answer heights has shape {heights.shape}; give {shape[0]} x {shape[1]} finite "
                         "heights in m (rows y increasing, columns x increasing)")
    truth = height_map(context.twin.sample, window, shape, context.twin.afm.sample.frame)
    residual = heights - truth
    rmse = float(np.sqrt(np.mean((residual - residual.mean()) ** 2)))
    spread = float(truth.std())
    return Score(1.0 - rmse / spread, {"rmse": rmse, "true_rms": spread, "offset": float(residual.mean())})


@scorer("fast_clean_scan")
def fast_clean_scan(context: Context, answer: Any) -> Score:
    """The z-loop and line time as set at the answer, scored on a reference frame of the scenario's
    region: ``e`` the RMS (m) by which the loop's forward trace misses the ideal one, ``t`` the line
    time (s). Speed ``min(1, fastest / t)`` times cleanliness ``min(1, (tolerance / e)^4)``: the
    fastest line time at which the loop still follows within ``tolerance`` scores best. The answer is
    empty (the instrument's state is scored)."""
    mapping(answer if answer is not None else {}, ())
    afm, p = context.twin.afm, context.params
    state = afm.settings.snapshot()
    window, (rows, columns) = surface_grid(p)
    ideal, _, _ = afm.topography(window, columns, rows, afm.tip(state))
    line_time = state["Scan.Scantime"]
    dt = (window.width / columns) / (2 * window.width / line_time)  # forward and backward in one line time
    traced = afm.feedback(state).track(ideal, dt, afm.hardware.z_range)
    error = float(np.sqrt(np.mean((traced - ideal) ** 2)))
    speed = min(1.0, p["fastest"] / line_time)
    clean = min(1.0, (p["tolerance"] / max(error, 1e-15)) ** 4)
    return Score(speed * clean, {"tracking_error": error, "line_time": line_time, "speed_part": speed,
                                 "clean_part": clean, "stable": afm.feedback(state).is_stable()})
