"""The camera in STEM mode: the parked probe's convergent-beam pattern (abTEM multislice of the probe),
checked against geometry: the direct disc's radius is the convergence angle, graphene's first Bragg
discs sit at lambda / d(100), and a 4D-STEM raster through the client sees a pattern per position."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from twin.digital_twin import DigitalTwin
from twin.instruments.tem.camera import convergent_beam_plan
from twin.physics.ctf import electron_wavelength

GRAPHENE_D100 = 2.46e-10 * np.sqrt(3) / 2  # m: lattice constant 2.46 Å


def probe_diameter(energy: float, alpha: float, defocus: float, cs: float) -> float:
    """The disk (m) a parked probe of semi-angle ``alpha`` (rad) lights: out to where a focused,
    aberration-free probe leaves 1 % of its electrons outside (an Airy pattern leaves J0(v)² + J1(v)²
    beyond v = 2 pi alpha r / lambda, 1.0 % at v = 20 pi: r = 10 lambda / alpha), widened by the
    ray-optics blur of ``defocus`` (m) and spherical aberration ``cs`` (m): |C10| alpha + Cs alpha³."""
    return 2 * (10 * electron_wavelength(energy) / alpha + abs(defocus) * alpha + cs * alpha**3)


def pattern(camera_length: float, alpha: float, size: int, energy: float = 80e3,
            defocus: float = 0.0) -> tuple[np.ndarray, float]:
    """The noise-free pattern (fraction of the beam per pixel: the electrons over the dose times the
    probe's disk, :func:`probe_diameter`, which the plan must declare) and the camera's pixel angle (rad),
    the probe ``defocus`` (m) from the specimen."""
    tem = DigitalTwin.build("graphene", 4).tem
    for name, value in (("optics.optical_mode", "Stem"), ("optics.convergence_angle", alpha),
                        ("optics.camera_length", camera_length), ("source.acceleration_voltage", energy),
                        ("optics.focus", defocus), ("twin.focus_offset", 0.0),
                        ("twin.objective_astigmatism", (0.0, 0.0))):
        tem.set(name, value)
    state = tem.settings.snapshot()
    stage, offset = tem.stage_reading(state)
    assert stage["z"] == 0.0  # the specimen at the focal plane: the defocus is the focus
    plan = convergent_beam_plan(tem, state, stage, offset, tem.hardware.camera("BM-Ceta"), size)
    diameter = probe_diameter(energy, alpha, defocus, tem.hardware.spherical_aberration)
    assert plan.beam_diameter == pytest.approx(diameter, rel=1e-9)  # the disk its dose is spread over
    return plan.electrons(1.0) / (np.pi * diameter**2 / 4), plan.optics["pixel_angle"]


@pytest.mark.parametrize(("alpha", "energy"), [(8e-3, 80e3), (20e-3, 300e3)])
def test_the_direct_disc_has_the_convergence_angle_as_its_radius(alpha, energy) -> None:
    frame, pixel_angle = pattern(1.15, alpha, 512, energy)
    centre = frame.shape[0] // 2
    rows, columns = np.indices(frame.shape)
    r = np.hypot(rows - centre, columns - centre)
    level = frame[centre - 2 : centre + 3, centre - 2 : centre + 3].mean()
    disc = (frame > level / 2) & (r < 1.5 * alpha / pixel_angle)
    assert np.sqrt(disc.sum() / np.pi) == pytest.approx(alpha / pixel_angle, rel=0.01)
    assert frame.sum() == pytest.approx(1.0, abs=0.02)  # thin sample: every electron on the camera


def test_a_defocused_probe_spreads_its_electrons_over_its_wider_disk() -> None:
    """300 nm from focus the probe's disk is 2 |C10| alpha wider (15.2 nm instead of 10.4 nm at 8 mrad,
    80 kV); the plan's electrons still add up to the dose over that disk: every one lands on the camera."""
    frame, _ = pattern(1.15, 8e-3, 256, defocus=-300e-9)
    assert frame.sum() == pytest.approx(1.0, abs=0.02)


def test_graphene_s_first_bragg_discs_sit_at_lambda_over_d100() -> None:
    frame, pixel_angle = pattern(0.46, 6e-3, 512)
    centre = frame.shape[0] // 2
    rows, columns = np.indices(frame.shape)
    r = np.hypot(rows - centre, columns - centre)
    expected = electron_wavelength(80e3) / GRAPHENE_D100 / pixel_angle  # pixels
    ring = (r > 0.6 * expected) & (r < 1.4 * expected)
    weights = frame * ring
    radius = (weights * r).sum() / weights.sum()  # the discs' mean distance from the direct beam
    assert radius == pytest.approx(expected, rel=0.02)
    labels, count = ndimage.label(ring & (frame > 0.5 * frame[ring].max()))
    assert count == 6  # six discs ...
    centroids = np.array(ndimage.center_of_mass(frame, labels, range(1, count + 1))) - centre
    angles = np.sort(np.degrees(np.arctan2(centroids[:, 0], centroids[:, 1])) % 360)
    assert np.diff(angles) == pytest.approx([60.0] * 5, abs=1.0)  # ... 60° apart


def test_a_4d_stem_raster_through_the_client_gives_a_pattern_per_parked_position(microscope) -> None:
    microscope.optics.optical_mode = "Stem"
    microscope.optics.scan_field_of_view = 2e-9
    microscope.optics.scan_rotation = 0.0  # whatever an earlier test on the shared server left
    microscope.optics.camera_length = 0.115  # m: the 30 mrad disc about 8 pixels across at 128²
    frames, places = [], []
    for y in (0.25, 0.75):
        for x in (0.25, 0.75):
            microscope.optics.paused_scan_beam_position = [x, y]
            frame = microscope.acquisition.acquire_camera_image("BM-Ceta", 128, 0.01)
            frames.append(frame.data.astype(float))
            places.append(frame.metadata.twin.probe_position)
    centre = np.array([frames[0].shape[0] // 2] * 2)
    assert all(f[tuple(centre)] > 10 * np.median(f) for f in frames)  # the direct disc on the optic axis
    assert not np.allclose(frames[0], frames[3])  # other atoms under the probe
    steps = np.diff([[p["x"], p["y"]] for p in places], axis=0)
    assert steps[0] == pytest.approx([1e-9, 0.0], abs=1e-12)  # x to the right, half the field
    assert steps[1] == pytest.approx([-1e-9, -1e-9], abs=1e-12)  # y down the image
    microscope.optics.optical_mode = "Tem"
