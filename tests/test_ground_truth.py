"""Ground truth over the network: labels and heights on any image's pixel grid, and a server that keeps
it to itself (challenges)."""

from __future__ import annotations

import numpy as np
import pytest

from twin.cf import nested_attributes
from twin.server.launcher import ServerProcess

HOST = "127.0.0.1"


def test_truth_pairs_with_an_afm_frame_pixel_for_pixel(spm):
    spm.application.Approach.StartApproach()
    scan = spm.application.Scan
    scan.ImageSize(30e-9, 30e-9)
    scan.Points, scan.Lines = 96, 64
    scan.CenterPosX, scan.CenterPosY = 4e-6, -1e-6
    scan.StartFrameUp()
    frame = spm.get_frame()
    truth = spm.twin.for_image(frame)
    assert truth.classes.shape == frame.shape == truth.height.shape
    assert np.array_equal(truth.x, frame.x) and np.array_equal(truth.y, frame.y)
    same = spm.twin.labels(4e-6 - 15e-9, -1e-6 - 15e-9, 4e-6 + 15e-9, -1e-6 + 15e-9, 64, 96)
    assert np.array_equal(truth.instances.values, same.instances.values)
    assert truth.classes.attrs["flag_meanings"].split()[:3] == ["support", "crystal", "vacancy"]
    numbered = set(np.unique(truth.instances.values)) - {0}
    assert numbered <= set(truth.defect.values.tolist())
    kinds = set(truth.defect_kind.values[[n - 1 for n in numbered]].tolist()) if numbered else set()
    assert kinds <= {"vacancy", "substitution"}
    # the van der Waals surface lies a graphene vdW radius (1.77 Å) above the rippled plane
    assert 1.0e-10 < float(np.median(truth.height)) < 2.5e-10


def test_truth_pairs_with_a_tem_image(microscope):
    microscope.optics.magnification.value = 2_050_000.0
    image = microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 0.1)
    truth = microscope.twin.for_image(image)
    xr_image = image.to_xarray()
    assert truth.classes.shape == xr_image.shape
    assert np.allclose(truth.x, xr_image.x) and np.allclose(truth.y, xr_image.y)


@pytest.fixture(scope="module")
def secret_server():
    process = ServerProcess.start("--ground-truth", "off", seed=3)
    yield process
    process.stop()


def test_a_challenge_server_keeps_the_ground_truth_to_itself(secret_server):
    from clients.afm import SPM

    spm = SPM(HOST, secret_server.port)
    try:
        info = spm.twin.info()
        assert info["ground_truth"] is False and info["seed"] is None
        assert set(info["sample"]) == {"name", "material"}
        for query in (lambda: spm.twin.defects(0, 0, 1e-8, 1e-8), lambda: spm.twin.atoms(0, 0, 1e-9, 1e-9),
                      lambda: spm.twin.labels(0, 0, 1e-8, 1e-8, 8, 8)):
            with pytest.raises(PermissionError, match="ground truth is off on this server"):
                query()
        for hidden in (lambda: spm.twin.tip_radius, lambda: setattr(spm.twin, "tip_radius", 1e-9)):
            with pytest.raises(PermissionError, match="twin.tip_radius is part of the simulation's hidden"):
                hidden()
        spm.application.ZController.IGain = 2000  # the instrument's own settings are open
        spm.application.Approach.StartApproach()
        spm.application.Scan.StartFrameUp()  # the instruments work as ever
        frame = spm.get_frame()
        assert frame.shape == (256, 256)
        hidden = {"frame", "seed", "drift_velocity", "z_noise"}  # its axes, the simulation's state
        meta = nested_attributes(frame.attrs)
        assert not hidden & set(meta["twin"]) and "tip" not in meta
        assert frame.attrs["twin.window.x_max"] > frame.attrs["twin.window.x_min"]
    finally:
        spm.close()
