"""The column's apertures, condenser intensity and gun, checked against geometry and optics: the
objective aperture of diameter d stops angles beyond d / 2f (lattice fringes and Bragg spots beyond it
vanish, those inside stay), the SA aperture selects a disk d / M on the specimen (the pattern's
electrons fall by the area ratio), the C2 aperture's area sets the current and its diameter the widest
probe, the condenser intensity spreads the beam, and the cold FEG's emission falls until a flash."""

from __future__ import annotations

import numpy as np
import pytest

from clients.errors import InvalidState, InvalidValue
from twin.digital_twin import DigitalTwin
from twin.physics.ctf import electron_wavelength

F_OBJECTIVE, M_SA = 1.7e-3, 55.0  # the twin's column: objective focal length (m), SA plane magnification
D100, D110 = 2.46e-10 * np.sqrt(3) / 2, 2.46e-10 / 2  # graphene's first two lattice spacings (m)


def steady(sample: str = "graphene", seed: int = 1) -> DigitalTwin:
    twin = DigitalTwin.build(sample, seed=seed)
    twin.tem.set("twin.drift", False)
    twin.tem.set("twin.stage_errors", False)
    return twin


def fringe_strength(image: np.ndarray, pixel: float, spacing: float) -> float:
    """The strongest Fourier peak at 1/``spacing`` over the median of the spectrum around it."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image - image.mean())))
    k = np.fft.fftshift(np.fft.fftfreq(image.shape[0], pixel))
    radius = np.hypot(*np.meshgrid(k, k))
    ring = np.abs(radius - 1 / spacing) < 0.03 / spacing
    around = (radius > 0.6 / spacing) & (radius < 1.6 / spacing) & ~ring
    return float(spectrum[ring].max() / np.median(spectrum[around]))


@pytest.mark.parametrize(("aperture", "passes"), [(None, (D100, D110)), ("100", (D100,)), ("40", ())])
def test_the_objective_aperture_cuts_the_lattice_fringes_beyond_d_over_2f(aperture, passes) -> None:
    tem = steady().tem
    tem.set("optics.magnification", 1_300_000.0)
    tem.set("optics.defocus", -5.4e-9)  # strong phase contrast at 2.13 Å (80 kV)
    if aperture is not None:
        tem.set("apertures.Objective.aperture", aperture)
        cutoff = float(aperture) * 1e-6 / (2 * F_OBJECTIVE) / electron_wavelength(80e3)  # 1/m
        assert [1 / d < cutoff for d in (D100, D110)] == [d in passes for d in (D100, D110)]
    image = tem.acquire_camera_image("BM-Ceta", 1024, 1.0)
    pixel = image["metadata"]["binary_result"]["pixel_size"]["x"]
    for spacing in (D100, D110):
        strength = fringe_strength(image["data"].astype(float), pixel, spacing)
        assert (strength > 20) == (spacing in passes), (spacing, strength)


def diffraction(tem, size: int = 512, exposure: float = 1.0) -> tuple[np.ndarray, float]:
    tem.set("optics.projector_mode", "Diffraction")
    tem.set("optics.camera_length", 0.46)
    image = tem.acquire_camera_image("BM-Ceta", size, exposure)
    return image["data"].astype(float), image["metadata"]["optics"]["pixel_angle"]


def bragg_discs(pattern: np.ndarray, pixel_angle: float, spacing: float) -> float:
    """Counts near the ring of Bragg angle lambda / spacing (80 kV), over the median of the pattern."""
    centre = pattern.shape[0] // 2
    rows, columns = np.indices(pattern.shape)
    angle = np.hypot(rows - centre, columns - centre) * pixel_angle
    bragg = electron_wavelength(80e3) / spacing
    return float(pattern[np.abs(angle - bragg) < 0.05 * bragg].max() / (np.median(pattern) + 1.0))


def test_the_objective_aperture_stops_bragg_spots_beyond_its_angle_in_diffraction() -> None:
    tem = steady().tem
    pattern, pixel_angle = diffraction(tem)
    assert bragg_discs(pattern, pixel_angle, D100) > 50 and bragg_discs(pattern, pixel_angle, D110) > 50
    tem.set("apertures.Objective.aperture", "100")  # 29 mrad: passes 19.6 mrad, stops 34 mrad
    pattern, _ = diffraction(tem)
    assert bragg_discs(pattern, pixel_angle, D100) > 50
    assert bragg_discs(pattern, pixel_angle, D110) < 3
    assert pattern[256, 256] > 100  # the direct beam passes


def test_the_sa_aperture_lets_through_the_electrons_of_the_disk_it_selects() -> None:
    """At 57 kx the beam is ~0.95 um wide; the 40 and 10 um SA apertures select 0.73 and 0.18 um of it.
    Within the beam the selected electrons go as the disk's area, (10 / 40)², whatever the beam's width.
    Electrons are counted near the direct beam (a weak beam: nothing saturates), less a dark frame's
    read-out bias."""
    per_second = {}
    for aperture, exposure in ((None, 0.02), ("40", 0.03), ("10", 0.5)):
        tem = steady().tem
        tem.set("optics.magnification", 57_000.0)
        tem.set("optics.spot_size_index", 11)
        tem.set("optics.monochromator_focus", 200.0)  # the gun lens: a very weak beam
        if aperture is not None:
            tem.set("apertures.SA.aperture", aperture)
        pattern, _ = diffraction(tem, 256, exposure)
        tem.set("optics.beam_blanked", True)
        dark, _ = diffraction(tem, 256, exposure)
        near = np.hypot(*(np.indices(pattern.shape) - 128)) < 20
        per_second[aperture] = (pattern[near].sum() - dark[near].sum()) / exposure
    assert per_second["10"] / per_second["40"] == pytest.approx((10 / 40) ** 2, rel=0.1)
    fov = 4096 * 14e-6 / (57_000.0 * 1.5)  # the Ceta's field at this magnification
    selected = np.pi / 4 * (40e-6 / M_SA) ** 2  # the 40 um aperture's disk on the specimen
    assert per_second["40"] < per_second[None]  # the beam is wider than that disk (it fills the field) ...
    assert per_second["40"] / per_second[None] > selected / (2 * fov) ** 2  # ... but not twice the field


def test_the_c2_aperture_sets_the_current_and_the_widest_probe() -> None:
    tem = steady().tem
    tem.set("detectors.screen_inserted", True)
    current = tem.screen_current()
    tem.set("apertures.C2.aperture", "70")
    assert tem.screen_current() == pytest.approx(current * (70 / 50) ** 2, rel=1e-3)
    tem.set("optics.optical_mode", "Stem")
    tem.set("optics.convergence_angle", 40e-3)  # allowed through 70 um (42 mrad)
    tem.set("apertures.C2.aperture", "30")  # 18 mrad at most: the probe narrows to it
    assert tem.get("optics.convergence_angle") == pytest.approx(30e-3 / 50e-6 * 30e-6)
    with pytest.raises(ValueError, match="C2 aperture in the beam allows at most 0.018 rad"):
        tem.set("optics.convergence_angle", 25e-3)
    with pytest.raises(RuntimeError, match="not retractable"):
        tem.set("apertures.C2.inserted", False)


def test_the_condenser_intensity_spreads_the_beam_and_the_dose_falls_as_its_area() -> None:
    means = {}
    for intensity in (0.6, 0.75):
        tem = steady().tem
        tem.set("optics.magnification", 38_000.0)  # the film limit: fast
        tem.set("optics.intensity", intensity)
        frame = tem.acquire_camera_image("BM-Ceta", 256, 0.01)  # ~600 e per binned pixel: unsaturated
        means[intensity] = frame["data"].mean() - frame["metadata"]["binary_result"]["offset"]
    spread = (0.75 - 0.45) / (0.6 - 0.45)  # distance from crossover (0.45), relative to the default
    assert means[0.75] / means[0.6] == pytest.approx(1 / spread**2, rel=0.02)


def test_at_crossover_the_image_is_dark_outside_a_small_disk() -> None:
    tem = steady().tem
    tem.set("optics.magnification", 1_300_000.0)
    tem.set("optics.intensity", 0.45)
    frame = tem.acquire_camera_image("BM-Ceta", 256, 0.01)
    result = frame["metadata"]["binary_result"]
    image = frame["data"].astype(float) - result["offset"]
    pixel = tem.field_of_view() / 256
    lit = image > image.max() / 4
    diameter = 2 * np.sqrt(lit.sum() / np.pi) * pixel
    assert diameter == pytest.approx(10e-9, rel=0.15)  # the crossover's size
    assert abs(image[0, 0]) < 5 * result["read_noise"] and image[128, 128] > 5 * result["read_noise"]


def test_the_cold_feg_fades_until_a_flash() -> None:
    tem = steady().tem
    tem.set("detectors.screen_inserted", True)
    fresh = tem.screen_current()
    assert not tem.is_flashing_advised()
    tem.clock.advance(9 * 3600.0)
    assert tem.screen_current() == pytest.approx(fresh * np.exp(-9 / 75), rel=1e-6)
    assert tem.is_flashing_advised()
    tem.flash()
    assert tem.screen_current() == pytest.approx(fresh) and not tem.is_flashing_advised()


def test_the_aperture_mechanisms_through_the_client(microscope) -> None:
    mechanisms = microscope.optics.aperture_mechanisms
    assert mechanisms.get_available() == ["C2", "Objective", "SA"]
    objective = mechanisms.get_mechanism("Objective")
    assert objective.insertion_state == "Retracted" and objective.aperture is None
    assert [a.diameter for a in objective.apertures] == [100e-6, 70e-6, 40e-6, 10e-6]
    try:
        objective.aperture = next(a for a in objective.apertures if a.name == "40")  # inserts it
        assert objective.insertion_state == "Inserted" and objective.aperture.name == "40"
        objective.position = (1e-6, -2e-6)
        assert tuple(objective.position) == (1e-6, -2e-6)
        with pytest.raises(RuntimeError, match="retract"):
            objective.disable()
        image = microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 0.1)
        assert image.metadata.optics.apertures.Objective == "40"
    finally:
        objective.retract()
    assert objective.aperture is None and objective.position is None
    objective.disable()
    with pytest.raises(InvalidState, match="disabled"):
        objective.insertion_state  # noqa: B018 - reading it is the test
    objective.enable()
    with pytest.raises(InvalidValue, match="C3"):
        mechanisms.C3  # noqa: B018
    assert not mechanisms.C2.is_retractable
    gun = microscope.source.field_emission_gun
    assert gun.is_flashing_advised is False
    gun.flash()
    assert gun.emission == pytest.approx(1.0)
    with pytest.raises(InvalidState, match="no piezo stage"):
        microscope.specimen.piezo_stage.start_jogging(None)
    assert microscope.specimen.piezo_stage.is_enabled is False
    assert 0 <= microscope.optics.intensity <= 1
    from clients.tem.structures import RunAutoComaCorrectionSettings

    with pytest.raises(InvalidState, match="aberration corrector"):
        microscope.auto_functions.run_auto_coma_correction(RunAutoComaCorrectionSettings())
