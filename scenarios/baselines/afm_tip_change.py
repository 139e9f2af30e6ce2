"""Baseline for afm-tip-change: scan frames and watch how much of the area looks raised.

A blunter tip widens every bump (an adsorbate or a hydrocarbon patch looks ~sqrt(2 R h) wider), so the
fraction of pixels standing more than 0.3 nm above the line's median grows. To beat the noise the
baseline averages that fraction over pairs of frames and reports the first frame of the first pair
that exceeds 1.4 x the median of the pairs before: right when the change falls on a pair's first
frame, one frame early otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clients.afm import SPM
from clients.challenge import Challenge

FRAMES = 24  # 12 pairs


def raised_fraction(topography: np.ndarray, height: float = 0.3e-9) -> float:
    """Fraction of a frame's pixels more than ``height`` (m) above their line's median."""
    return float(np.mean(topography - np.median(topography, axis=1, keepdims=True) > height))


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    challenge = Challenge(host, port, instance)
    spm = SPM(host, port, instance)
    try:
        spm.application.Approach.StartApproach()
        fractions, indices = [], []
        for _ in range(FRAMES):
            spm.application.Scan.StartFrameUp()
            frame = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography)
            fractions.append(raised_fraction(frame.values))
            indices.append(frame.attrs["acquisition"]["frame_index"])
        pairs = np.add.reduceat(fractions, range(0, FRAMES, 2)) / 2
        first = next((k for k in range(1, len(pairs)) if pairs[k] > 1.4 * np.median(pairs[:k])),
                     len(pairs) - 1)
        return challenge.submit({"frame_index": int(indices[2 * first])})
    finally:
        spm.close()
        challenge.close()


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
