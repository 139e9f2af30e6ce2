"""Baseline for afm-sparse-scan: eight evenly spaced bands of four lines, linear interpolation.

Each narrow frame (4 lines, 1.875 nm tall) sits exactly on four rows of the answer's grid; rows between
bands are interpolated column by column. Features that fall between bands are missed entirely.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from scenarios.baselines._common import play

SIZE, PIXELS, BAND, BANDS = 60e-9, 128, 4, 8  # m, grid rows, lines per frame, frames


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    pixel = SIZE / PIXELS
    with play(host, port, instance, afm=True) as (challenge, _, spm):
        spm.application.Approach.StartApproach()
        scan = spm.application.Scan
        scan.Lines, scan.ImageHeight = BAND, BAND * pixel
        rows, lines = [], []
        for first in np.linspace(0, PIXELS - BAND, BANDS).round().astype(int):
            scan.CenterPosY = -SIZE / 2 + (first + BAND / 2) * pixel  # rows first ... first + 3
            scan.StartFrameUp()
            frame = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography).values
            rows.extend(range(first, first + BAND))
            lines.extend(frame)
        lines = np.array(lines)
        heights = np.array([np.interp(np.arange(PIXELS), rows, lines[:, j]) for j in range(PIXELS)]).T
        return challenge.submit({"heights": heights})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
