"""Baseline for afm-pid-tuning: a coarse grid of integral gains and line times.

Lag and ringing show as a mismatch between the forward and backward traces of the same line, which
the baseline measures on narrow test frames; it keeps the fastest line time whose mismatch stays under
0.1 nm with the best of three integral gains, and leaves PGain as it found it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clients.afm import SPM
from clients.challenge import Challenge

LINE_TIMES = (0.5, 0.2, 0.1, 0.05)  # s
INTEGRAL_GAINS = (1000.0, 3000.0, 10000.0)
MISMATCH = 0.1e-9  # m


def mismatch(spm: SPM) -> float:
    """RMS (m) of half the forward - backward difference of a fresh frame (its line mean removed)."""
    spm.application.Scan.StartFrameUp()
    forward = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography).values
    backward = spm.get_frame(spm.ScanGroupID.Backward, spm.ScanChannel.Topography).values
    half = (forward - backward) / 2
    return float(np.sqrt(np.mean((half - half.mean(axis=1, keepdims=True)) ** 2)))


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    challenge = Challenge(host, port, instance)
    spm = SPM(host, port, instance)
    try:
        app = spm.application
        app.Approach.StartApproach()
        app.Scan.Lines, app.Scan.ImageHeight = 16, 12.5e-9  # narrow test frames through the middle
        chosen = (LINE_TIMES[0], INTEGRAL_GAINS[0])
        for line_time in LINE_TIMES:
            app.Scan.Scantime = line_time
            errors = {}
            for gain in INTEGRAL_GAINS:
                app.ZController.IGain = gain
                errors[gain] = mismatch(spm)
            best = min(errors, key=errors.get)
            if errors[best] < MISMATCH:
                chosen = (line_time, best)
        app.Scan.Scantime, app.ZController.IGain = chosen
        return challenge.submit({})
    finally:
        spm.close()
        challenge.close()


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
