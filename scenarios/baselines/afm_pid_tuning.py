"""Baseline for afm-pid-tuning: find the loop's gain by scanning, then the line time.

The loop's real gain is hidden (0.5 to 3000 times the nominal), so no fixed IGain works for every
instrument. Lag and ringing both show as a mismatch between the forward and backward traces of the
same line, which the baseline measures on narrow test frames. It scales all three gains together
(PGain = IGain / 2, DGain = IGain / 10: a derivative lead against the actuator's lag) at the fastest
line time that scores: a coarse search climbs IGain by factors of 2 from far below any loop's best,
stops once the mismatch grows again (ringing) and keeps the least; finer steps around it follow. A
loop too weak to ring below the gains' limit gets a stronger proportional and derivative share
(PGain = IGain, DGain = IGain / 5) at the limit. Then it tries slower line times and keeps the one
whose measured mismatch, the detector noise's share removed, predicts the best score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clients.afm import SPM
from scenarios.baselines._common import play

FASTEST, TOLERANCE = 0.02, 0.03e-9  # s, m: the scenario's score parameters
MAX_GAIN = 100_000.0  # the controller's limit on IGain, PGain and DGain
COARSE_GAINS = 12.5 * 2.0 ** np.arange(14)  # IGain 12.5 to 102400 (the last capped), factors of 2
FINE_STEPS = (2.0 ** 0.25, 2.0 ** 0.125)  # refinements around the best, each a factor either side
NORMAL, STRONG = (1 / 2, 1 / 10), (1.0, 1 / 5)  # PGain / IGain and DGain / IGain
LINE_TIMES = (0.02, 0.025, 0.03, 0.04, 0.05)  # s
QUIET_LINE_TIME = 0.5  # s: slow enough that only the detector noise is left in the mismatch


def mismatch(spm: SPM) -> tuple[float, float]:
    """RMS (m) of half the forward - backward difference of a fresh frame and of their mean (each line's
    mean removed): the mismatch, and the signal it is a share of."""
    spm.application.Scan.StartFrameUp()
    forward = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography).values
    backward = spm.get_frame(spm.ScanGroupID.Backward, spm.ScanChannel.Topography).values
    rms = [float(np.sqrt(np.mean((t - t.mean(axis=1, keepdims=True)) ** 2)))
           for t in ((forward - backward) / 2, (forward + backward) / 2)]
    return rms[0], rms[1]


def set_gains(spm: SPM, integral: float, ratios: tuple[float, float] = NORMAL) -> None:
    """IGain ``integral`` with PGain and DGain in proportion (``ratios``)."""
    z = spm.application.ZController
    z.IGain, z.PGain, z.DGain = integral, integral * ratios[0], integral * ratios[1]


def search_gain(spm: SPM) -> tuple[tuple[float, tuple[float, float]], float]:
    """The (IGain, ratios) that trace best at the current line time, and their mismatch (m).

    A loop too weak to follow the surface and one oscillating between the actuator's stops both give
    flat traces whose mismatch is only the detector noise, so the mismatch is judged as a share of the
    traced signal: about 1 for both, small for a loop that follows."""
    shares: dict[tuple[float, tuple[float, float]], float] = {}
    errors: dict[tuple[float, tuple[float, float]], float] = {}

    def measure(integral: float, ratios: tuple[float, float] = NORMAL) -> float:
        key = (min(float(integral), MAX_GAIN), ratios)
        if key not in shares:
            set_gains(spm, *key)
            errors[key], signal = mismatch(spm)
            shares[key] = errors[key] / max(signal, 1e-15)
        return shares[key]

    for gain in COARSE_GAINS:  # stop climbing once ringing or oscillating spoils a loop that followed
        if measure(gain) > 2 * min(shares.values()) and min(shares.values()) < 0.5:
            break
    for step in FINE_STEPS:
        best = min(shares, key=shares.get)
        for factor in (1 / step, step):
            measure(best[0] * factor, best[1])
    if min(shares, key=shares.get)[0] >= MAX_GAIN / FINE_STEPS[0]:  # too weak to ring below the limit
        for factor in (1.0, FINE_STEPS[1] ** -1, FINE_STEPS[0] ** -1, FINE_STEPS[0] ** -2):
            measure(MAX_GAIN * factor, STRONG)
    best = min(shares, key=shares.get)
    return best, errors[best]


def predicted_score(line_time: float, error: float) -> float:
    """The scenario's score for a tracking error ``error`` (m) at ``line_time`` (s)."""
    return min(1.0, FASTEST / line_time) * min(1.0, (TOLERANCE / max(error, 1e-15)) ** 4)


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    with play(host, port, instance, afm=True) as (challenge, _, spm):
        app = spm.application
        app.Approach.StartApproach()
        app.Scan.Lines, app.Scan.ImageHeight = 16, 12.5e-9  # narrow test frames through the middle
        app.Scan.Scantime = FASTEST
        best, fastest_error = search_gain(spm)
        set_gains(spm, *best)
        app.Scan.Scantime = QUIET_LINE_TIME
        noise = mismatch(spm)[0]
        predicted = {}
        for line_time in LINE_TIMES:
            app.Scan.Scantime = line_time
            error = fastest_error if line_time == FASTEST else mismatch(spm)[0]
            predicted[line_time] = predicted_score(line_time, np.sqrt(max(error**2 - noise**2, 0.0)))
        app.Scan.Scantime = max(predicted, key=predicted.get)
        return challenge.submit({})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
