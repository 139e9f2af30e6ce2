"""Baseline for correlative-registration: masks of the hydrocarbon patches, rotation by brute force.

Both instruments see the patches: bright in HAADF (more carbon), 1.5 nm tall in the topography. The
baseline thresholds each image into a patch mask, turns the AFM's mask through -22..22 degrees in
1 degree steps, finds the best shift of each by FFT cross-correlation, and keeps the best pair; the
largest patch in the TEM image is the reported feature. The 1 degree steps and 0.2 nm pixels limit
it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from scenarios.baselines._common import play

SIZE = 256
ANGLES = np.radians(np.arange(-22.0, 22.5, 1.0))


def centres(window: Any, pixel: float, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (m) of an image: x along columns, y along rows."""
    return (window.x_min + (np.arange(shape[1]) + 0.5) * pixel,
            window.y_min + (np.arange(shape[0]) + 0.5) * pixel)


def register(tem_mask: np.ndarray, afm_mask: np.ndarray, x: np.ndarray, y: np.ndarray
             ) -> tuple[float, np.ndarray]:
    """Rotation (rad) and offset (m) with tem(p) ~ afm(R(-rotation) (p - offset)), both masks on the
    same pixel-centre grid ``x``, ``y``."""
    pixel = x[1] - x[0]
    xx, yy = np.meshgrid(x, y)
    padded = (2 * tem_mask.shape[0], 2 * tem_mask.shape[1])
    tem_spectrum = np.fft.rfft2(tem_mask - tem_mask.mean(), padded)
    best = (-np.inf, 0.0, np.zeros(2))
    for angle in ANGLES:
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * xx + s * yy, -s * xx + c * yy  # R(-angle) p
        turned = ndimage.map_coordinates(afm_mask, [(v - y[0]) / pixel, (u - x[0]) / pixel], order=1)
        spectrum = np.fft.rfft2(turned - turned.mean(), padded)
        correlation = np.fft.irfft2(tem_spectrum * np.conj(spectrum), padded)
        peak = np.unravel_index(np.argmax(correlation), padded)
        if correlation[peak] > best[0]:
            shift = np.array([(peak[1] + padded[1] // 2) % padded[1] - padded[1] // 2,
                              (peak[0] + padded[0] // 2) % padded[0] - padded[0] // 2]) * pixel
            best = (correlation[peak], angle, shift)
    return float(best[1]), best[2]


def run(host: str, port: int, instance: str | None) -> dict[str, Any]:
    with play(host, port, instance, tem=True, afm=True) as (challenge, microscope, spm):
        haadf = microscope.acquisition.acquire_stem_image("HAADF", SIZE, 4e-6)  # the 50 nm field
        pixel = haadf.metadata.binary_result.pixel_size.x
        x, y = centres(haadf.metadata.twin.window, pixel, haadf.data.shape)
        smooth = ndimage.gaussian_filter(haadf.data.astype(float), 2.0)
        tem_mask = (smooth > smooth.mean() + smooth.std()).astype(float)
        spm.application.Approach.StartApproach()
        spm.application.Scan.StartFrameUp()  # the 50 nm, 256 x 256 frame on the scanner's origin
        topography = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography).values
        topography = topography - np.median(topography, axis=1, keepdims=True)
        afm_mask = ndimage.gaussian_filter((topography > 0.7e-9).astype(float), 1.0)
        rotation, offset = register(tem_mask, afm_mask, x, y)
        labels, count = ndimage.label(tem_mask)
        largest = 1 + int(np.argmax(ndimage.sum(tem_mask, labels, range(1, count + 1))))
        row, column = ndimage.center_of_mass(tem_mask, labels, largest)
        defect_tem = np.array([np.interp(column, np.arange(len(x)), x), np.interp(row, np.arange(len(y)), y)])
        c, s = np.cos(rotation), np.sin(rotation)
        d = defect_tem - offset
        defect_afm = np.array([c * d[0] + s * d[1], -s * d[0] + c * d[1]])
        return challenge.submit({"rotation": rotation, "offset": offset.tolist(),
                                 "defect_tem": defect_tem.tolist(), "defect_afm": defect_afm.tolist()})


if __name__ == "__main__":
    from scenarios.baselines._common import main

    main(run, __doc__)
