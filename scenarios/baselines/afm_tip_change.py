"""Baseline for afm-tip-change: scan frames and watch how much of the area looks raised.

A blunter tip widens every bump (an adsorbate or a hydrocarbon patch looks ~sqrt(2 R h) wider), so the
fraction of pixels standing more than 0.2 nm above the line's median grows, by a step, from the first
frame scanned with the changed tip on. The baseline scans 30 frames (the change comes by frame 26, so
at least four follow it), fits one step to the logarithm of that fraction (least squares, every split
tried) and reports the first frame after the step.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scenarios.baselines._common import play

FRAMES = 30
RAISED = 0.2e-9  # m above the line's median
FLOOR = 1e-4  # fraction: keeps the logarithm of an almost bare frame finite


def raised_fraction(topography: np.ndarray, height: float = RAISED) -> float:
    """Fraction of a frame's pixels more than ``height`` (m) above their line's median."""
    return float(np.mean(topography - np.median(topography, axis=1, keepdims=True) > height))


def step(values: np.ndarray) -> int:
    """Where one step best splits ``values``: the ``k`` that minimises the squared deviations of
    ``values[:k]`` and ``values[k:]`` from their own means."""
    def spread(part: np.ndarray) -> float:
        return float(np.sum((part - part.mean()) ** 2))

    return min(range(1, len(values)), key=lambda k: spread(values[:k]) + spread(values[k:]))


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    with play(host, port, instance, afm=True) as (challenge, _, spm):
        spm.application.Approach.StartApproach()
        fractions, indices = [], []
        for _ in range(FRAMES):
            spm.application.Scan.StartFrameUp()
            frame = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography)
            fractions.append(raised_fraction(frame.values))
            indices.append(frame.attrs["acquisition.frame_index"])
        first = step(np.log(np.maximum(fractions, FLOOR)))
        return challenge.submit({"frame_index": int(indices[first])})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
