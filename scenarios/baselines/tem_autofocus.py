"""Baseline for tem-autofocus: HAADF sharpness focusing, no stigmation.

The lattice shows only within a few nm of focus; with astigmatism it is sharpest at the two line foci
C10 = ±C12, so a coarse series finds the sharp zone and the contrast-weighted centre of a fine series
lands between the line foci, on C10 = 0. The astigmatism is left alone: about half the best score.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from clients.tem import TemMicroscopeClient
from scenarios.baselines._common import play

SIZE, DWELL = 128, 2e-5  # pixels, s: ~2e9 electrons per image


def sharpness(microscope: TemMicroscopeClient, defocus: float) -> float:
    """Shot-noise-corrected normalised variance of a HAADF image taken at ``defocus`` (m)."""
    microscope.optics.defocus = float(defocus)
    data = microscope.acquisition.acquire_stem_image("HAADF", SIZE, DWELL).data.astype(float)
    return float((data.var() - data.mean()) / data.mean() ** 2)


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    with play(host, port, instance, tem=True) as (challenge, microscope, _):
        coarse = np.arange(-320e-9, 321e-9, 8e-9)
        values = np.array([sharpness(microscope, d) for d in coarse])
        fine = coarse[np.argmax(values)] + np.arange(-50e-9, 51e-9, 2.5e-9)
        values = np.clip([sharpness(microscope, d) for d in fine], 0.0, None)
        weights = np.where(values > 0.25 * values.max(), values, 0.0)
        microscope.optics.defocus = float(np.sum(weights * fine) / np.sum(weights))
        return challenge.submit({})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
