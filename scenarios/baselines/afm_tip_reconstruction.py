"""Baseline for afm-tip-reconstruction: one frame, eroded by a guessed tip.

An image is the surface dilated by the tip; eroding it by the same tip undoes what can be undone. The
baseline guesses a 12 nm paraboloid and ignores the second apex (its ghosts stay), so it recovers part
of the surface.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from scenarios.baselines._common import play

GUESSED_RADIUS = 12e-9  # m


def eroded(topography: np.ndarray, pixel: float, radius: float) -> np.ndarray:
    """Grey erosion of ``topography`` (m) by a paraboloid tip of ``radius`` (m) on ``pixel`` (m) steps."""
    reach = int(np.ceil(np.sqrt(2 * radius * 2e-9) / pixel))  # the tip's flank 2 nm below its apex
    r = np.arange(-reach, reach + 1) * pixel
    return ndimage.grey_erosion(topography, structure=-(r[None, :] ** 2 + r[:, None] ** 2) / (2 * radius))


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    with play(host, port, instance, afm=True) as (challenge, _, spm):
        spm.application.Approach.StartApproach()
        spm.application.Scan.StartFrameUp()  # the scenario's 60 nm, 128 x 128 frame on 0, 0
        frame = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography)
        pixel = float(frame.x[1] - frame.x[0])
        return challenge.submit({"heights": eroded(frame.values, pixel, GUESSED_RADIUS)})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
