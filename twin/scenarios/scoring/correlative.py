"""Scores of the correlative (TEM + AFM) challenges."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin import validation
from twin.sample import Window
from twin.scenarios.scoring.core import Context, Score, mapping, scorer


def _pair(name: str, value: Any) -> np.ndarray:
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) != 2:
        raise ValueError(f"answer {name} must be [x, y] in m, got {value!r:.80}")
    return np.array([validation.real(f"answer {name}", v, -1.0, 1.0, "m") for v in value])


@scorer("registration")
def registration(context: Context, answer: Any) -> Score:
    """The AFM-to-TEM transform ``p_tem = R(rotation) p_afm + offset`` and one defect seen by both.

    ``e``: the mean distance (m) between the reported and the true mapping of a 5 x 5 grid of points over
    the region (``region_size``, m, on the AFM's origin); ``d_tem``: from ``defect_tem`` to the nearest
    true feature of ``kinds`` in the TEM's frame; ``d_afm``: from ``defect_afm`` to that same feature in
    the AFM's frame. Score ``w g(e/tol) + (1 - w)/2 [g(d_tem/tol_d) + g(d_afm/tol_d)]``, ``g(x) =
    exp(-x²/2)``, with ``tol = tolerance``, ``tol_d = defect_tolerance``, ``w = transform_weight``.
    """
    a = mapping(answer, ("rotation", "offset", "defect_tem", "defect_afm"))
    rotation = validation.real("answer rotation", a["rotation"], -2 * np.pi, 2 * np.pi, "rad")
    offset, defect_tem, defect_afm = (_pair(k, a[k]) for k in ("offset", "defect_tem", "defect_afm"))
    p = context.params
    tem_frame, afm_frame = context.twin.tem.sample.frame, context.twin.afm.sample.frame
    half = p["region_size"] / 2
    u, v = (g.ravel() for g in np.meshgrid(np.linspace(-half, half, 5), np.linspace(-half, half, 5)))
    true_x, true_y = tem_frame.from_sample(*afm_frame.to_sample(u, v))
    c, s = np.cos(rotation), np.sin(rotation)
    error = float(np.mean(np.hypot(c * u - s * v + offset[0] - true_x, s * u + c * v + offset[1] - true_y)))
    side, features = 20 * p["defect_tolerance"], []
    while not features and side < 1e-5:  # a square around the reported position, grown until it has some
        area = Window.around(float(defect_tem[0]), float(defect_tem[1]), side, side)
        features = [d for d in context.twin.tem.sample.defects_in_window(area) if d.kind in p["kinds"]]
        side *= 4
    if features:
        nearest = min(features, key=lambda d: np.hypot(d.x - defect_tem[0], d.y - defect_tem[1]))
        d_tem = float(np.hypot(nearest.x - defect_tem[0], nearest.y - defect_tem[1]))
        x, y = afm_frame.from_sample(*tem_frame.to_sample(nearest.x, nearest.y))
        d_afm = float(np.hypot(x - defect_afm[0], y - defect_afm[1]))
    else:
        d_tem = d_afm = np.inf
    weight, tol, tol_d = p["transform_weight"], p["tolerance"], p["defect_tolerance"]
    parts = [np.exp(-0.5 * (e / t) ** 2) for e, t in ((error, tol), (d_tem, tol_d), (d_afm, tol_d))]
    value = weight * parts[0] + (1 - weight) * (parts[1] + parts[2]) / 2
    true_rotation = afm_frame.rotation - tem_frame.rotation
    rotation_error = float(np.angle(np.exp(1j * (rotation - true_rotation))))  # wrapped to (-pi, pi]
    return Score(value, {"mapping_error": error, "rotation_error": rotation_error, "defect_tem_error": d_tem,
                         "defect_afm_error": d_afm})
