"""Correlation: a defect from ground truth is found at the same sample coordinates by TEM and AFM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from clients.tem.structures import StagePosition
from twin.physics.ctf import scherzer_defocus


def darkest_atom(image) -> tuple[float, float]:
    """Sample coordinates of the darkest atom in a Scherzer-focus HRTEM image (away from the border)."""
    pixel = float(image.x[1] - image.x[0])
    smoothed = ndimage.gaussian_filter(image.values.astype(float), 0.3e-10 / pixel)
    border = 20
    inner = smoothed[border:-border, border:-border]
    row, col = np.unravel_index(np.argmin(inner), inner.shape)
    return float(image.x[col + border]), float(image.y[row + border])


def bump_apex(topography) -> tuple[float, float]:
    """Sample coordinates of the highest bump: a paraboloid (the tip's shape) fitted to its top."""
    x, y = topography.x.values, topography.y.values
    pixel = x[1] - x[0]
    height = topography.values.astype(float)
    height -= np.median(height, axis=1, keepdims=True)  # level the lines (their offsets), as usual
    bump = height - ndimage.gaussian_filter(height, 15e-10 / pixel)  # remove the ripples
    smooth = ndimage.gaussian_filter(bump, 2)
    row, col = np.unravel_index(np.argmax(smooth), smooth.shape)
    labels, _ = ndimage.label(smooth > 0.6 * smooth[row, col])
    top = labels == labels[row, col]
    grid_x, grid_y = np.meshgrid(x, y)
    u, v = (grid_x[top] - x[col]) / 1e-10, (grid_y[top] - y[row]) / 1e-10  # Å keeps the fit well-posed
    design = np.column_stack([np.ones_like(u), u, v, u**2 + v**2])
    a = np.linalg.lstsq(design, bump[top] / 1e-10, rcond=None)[0]
    return x[col] - a[1] / (2 * a[3]) * 1e-10, y[row] - a[2] / (2 * a[3]) * 1e-10


@pytest.fixture
def exact_stage(microscope, spm):
    """Stage errors, drift and piezo creep off on both instruments, and a fresh single tip: this test is
    about aligned frames, not navigation, registration or what earlier tests did to the tip."""
    microscope.twin.stage_errors = microscope.twin.drift = False
    drift, creep = spm.twin.drift_velocity, spm.twin.piezo_creep
    radius, apex = spm.twin.tip_radius, spm.twin.second_apex
    spm.twin.drift_velocity = (0.0, 0.0)
    spm.twin.piezo_creep = 0.0
    spm.twin.tip_radius, spm.twin.second_apex = 2e-9, (0.0, 0.0)
    yield
    microscope.twin.stage_errors = microscope.twin.drift = True
    spm.twin.drift_velocity = drift
    spm.twin.piezo_creep = creep
    spm.twin.tip_radius, spm.twin.second_apex = radius, apex


@pytest.mark.slow
def test_si_dopants_appear_at_the_same_place_in_tem_and_afm(microscope, spm, exact_stage):
    defects = microscope.twin.defects(-300e-9, -300e-9, 300e-9, 300e-9)
    silicon = [d for d in defects if d.species == "Si"]
    isolated = [
        d for d in silicon if all(np.hypot(o.x - d.x, o.y - d.y) > 12e-9 for o in silicon if o is not d)
    ]

    microscope.optics.magnification.value = 4_000_000.0
    microscope.optics.defocus = scherzer_defocus(1e-6, microscope.source.acceleration_voltage.value)
    app = spm.application
    app.Approach.StartApproach()
    scan = app.Scan
    scan.ImageSize(8e-9, 8e-9)
    scan.Points = scan.Lines = 128

    for si in isolated[:3]:
        # Both instruments look at the dopant off-centre, each from a different side.
        microscope.specimen.stage.absolute_move(StagePosition(x=si.x + 1.3e-9, y=si.y - 0.9e-9))
        image = microscope.acquisition.acquire_camera_image("BM-Ceta", 512, 2.0).to_xarray()
        scan.CenterPosX, scan.CenterPosY = si.x - 0.8e-9, si.y + 1.1e-9
        scan.StartFrameUp()
        topography = spm.get_frame(spm.ScanGroupID.Forward, spm.ScanChannel.Topography)

        tem_xy = np.array(darkest_atom(image))
        afm_xy = np.array(bump_apex(topography))
        coarse = max(float(image.x[1] - image.x[0]), float(topography.x[1] - topography.x[0]))
        truth = np.array([si.x, si.y])
        assert np.hypot(*(tem_xy - truth)) <= coarse
        assert np.hypot(*(afm_xy - truth)) <= 1.5 * coarse  # the apex fit on a noisy frame: ±half a pixel
        tem_pixel = float(image.x[1] - image.x[0])  # the darkest pixel: quantised to half of it either way
        assert np.hypot(*(tem_xy - afm_xy)) <= coarse + tem_pixel / 2, (tem_xy, afm_xy, coarse)
