"""The AutoScript-shaped object tree against a real server: modes, optics, detectors, vacuum, stage."""

from __future__ import annotations

import numpy as np
import pytest

from clients.tem.enumerations import CameraType, DetectorType, OpticalMode, ProjectorMode
from clients.tem.structures import CameraLengthData, Limits, Point, StagePosition


@pytest.fixture
def stem_mode(microscope):
    microscope.optics.optical_mode = OpticalMode.STEM
    yield microscope
    microscope.optics.optical_mode = OpticalMode.TEM


def test_modes_read_back_as_enums_that_equal_their_strings(microscope):
    assert microscope.optics.optical_mode == OpticalMode.TEM == "Tem"
    assert microscope.optics.projector_mode == ProjectorMode.IMAGING
    microscope.optics.projector_mode = "Diffraction"
    assert microscope.optics.projector_mode == ProjectorMode.DIFFRACTION
    microscope.optics.projector_mode = ProjectorMode.IMAGING


def test_stem_only_and_tem_only_settings_refuse_changes_in_the_other_mode(microscope, stem_mode):
    stem_mode.optics.scan_field_of_view = 12e-9
    assert stem_mode.optics.scan_field_of_view == pytest.approx(12e-9)
    stem_mode.optics.scan_rotation = 0.3
    with pytest.raises(RuntimeError, match="optics.magnification exists in TEM mode only"):
        stem_mode.optics.magnification.value = 2_050_000.0
    assert stem_mode.optics.magnification.value.nominal > 0  # a read is harmless in either mode
    stem_mode.optics.optical_mode = OpticalMode.TEM
    assert microscope.optics.scan_field_of_view == pytest.approx(12e-9)  # reads what it was last set to
    with pytest.raises(RuntimeError, match="optics.scan_field_of_view exists in STEM mode only; "
                                           "optics.optical_mode is 'Tem'"):
        microscope.optics.scan_field_of_view = 10e-9
    with pytest.raises(RuntimeError, match="STEM mode only"):
        microscope.optics.scan_rotation = 0.1


def test_focus_defocus_and_reset_defocus(microscope):
    microscope.optics.defocus = -20e-9
    focus = microscope.optics.focus
    microscope.optics.reset_defocus()
    assert microscope.optics.defocus == 0.0 and microscope.optics.focus == focus
    microscope.optics.defocus = 5e-9
    assert microscope.optics.focus == pytest.approx(focus + 5e-9)
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 64, 0.01)
    true_defocus = image.metadata.twin.aberrations.C10
    assert true_defocus == pytest.approx(focus + 5e-9)
    microscope.optics.focus = 0.0
    microscope.optics.reset_defocus()


def test_the_objective_stigmator_adds_two_fold_astigmatism(microscope):
    stigmators = microscope.optics.stigmators
    stigmators.objective_stigmator = Point(0.2, 0.0)
    assert stigmators.objective_stigmator == Point(0.2, 0.0)
    aberrations = microscope.acquisition.acquire_camera_image("BM-Ceta", 64, 0.01).metadata.twin.aberrations
    astigmatism, angle = aberrations.C12, aberrations.phi12
    assert astigmatism == pytest.approx(0.2 * 50e-9) and angle == pytest.approx(0.0)
    stigmators.objective_stigmator = [0.0, 0.0]
    message = r"optics\.objective_stigmator\.x = 3 is out of range; allowed -1 to 1"
    with pytest.raises(ValueError, match=message):
        stigmators.objective_stigmator = (3, 0)


def test_deflectors_spot_size_and_convergence(microscope):
    microscope.optics.deflectors.beam_shift = Point(1e-8, -2e-8)
    assert microscope.optics.deflectors.beam_shift == Point(1e-8, -2e-8)
    microscope.optics.deflectors.beam_shift = (0.0, 0.0)
    microscope.optics.spot_size_index = 7
    current = microscope.detectors.screen
    current.insert()
    assert current.position == "Inserted"
    assert current.measure_current() == pytest.approx(16e-9 * 0.5**6)
    current.retract()
    assert current.measure_current() == 0.0
    microscope.optics.spot_size_index = 5
    microscope.optics.convergence_angle = 25e-3
    assert microscope.optics.convergence_angle == pytest.approx(25e-3)


def test_blanker_and_valves_darken_the_camera(microscope):
    microscope.optics.blanker.blank()
    assert microscope.optics.blanker.is_beam_blanked
    dark = microscope.acquisition.acquire_camera_image("BM-Ceta", 128, 1.0)
    offset = dark.metadata.binary_result.offset  # the dark level: no electrons
    assert abs(dark.data.mean() - offset) < 1 and not dark.metadata.twin.beam_reaches_camera
    with pytest.warns(DeprecationWarning, match="optics.blanker.unblank"):
        microscope.optics.unblank()
    microscope.vacuum.column_valves.close()
    assert microscope.vacuum.column_valves.state == "Closed" and microscope.vacuum.state == "Ready"
    assert microscope.acquisition.acquire_camera_image("BM-Ceta", 128, 1.0).data.mean() < offset + 1
    microscope.vacuum.column_valves.open()
    assert microscope.acquisition.acquire_camera_image("BM-Ceta", 128, 1.0).data.mean() > offset + 100


def test_detectors_insert_retract_and_describe_themselves(microscope):
    detectors = microscope.detectors
    assert detectors.scanning_detectors == ["HAADF", "ADF", "ABF", "BF", "BF-S", "DF-S"]
    haadf = detectors.get_scanning_detector(DetectorType.HAADF)
    assert haadf.collection_angle_limits == Limits(80e-3, 200e-3) and not haadf.is_insertable
    with pytest.raises(RuntimeError, match="detector HAADF is not retractable"):
        haadf.retract()
    ceta = detectors.get_camera_detector(CameraType.BM_CETA)
    assert ceta.pixel_size == Point(14e-6, 14e-6)
    ceta.retract()
    assert ceta.insertion_state == "Retracted"
    with pytest.raises(RuntimeError, match="camera BM-Ceta is retracted; insert\\(\\) it first"):
        microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 64, 0.1)
    ceta.insert()
    assert ceta.insertion_state == "Inserted"
    with pytest.raises(ValueError, match="detector = 'DF4' is not on this microscope"):
        detectors.get_scanning_detector("DF4")
    assert detectors.get_scanning_detector(DetectorType.DF_S).collection_angle_limits == Limits(22e-3, 60e-3)


def test_camera_length_and_service(microscope):
    lengths = microscope.optics.camera_length.available_values
    assert all(isinstance(c, CameraLengthData) for c in lengths)
    microscope.optics.camera_length = lengths[3]
    assert microscope.optics.camera_length.value == lengths[3]
    assert microscope.service.system.serial_number.startswith("TWIN-")


def test_safe_moves_end_where_plain_moves_do_and_tilt_changes_the_projection(microscope):
    microscope.twin.stage_errors = microscope.twin.drift = False
    try:
        stage = microscope.specimen.stage
        stage.absolute_move_safe(StagePosition(x=2e-6, y=1e-6, a=0.0))
        flat = microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 1.0)
        stage.relative_move_safe(StagePosition(a=np.radians(20)))
        assert stage.position.a == pytest.approx(np.radians(20)) and stage.position.x == pytest.approx(2e-6)
        tilted = microscope.acquisition.acquire_camera_image("BM-Ceta", 256, 1.0)
        # tilting about x foreshortens y: the lattice's frequencies along y grow by 1/cos(20°)
        assert not np.array_equal(flat.data, tilted.data)
        spectrum_flat = np.abs(np.fft.fft2(flat.data - flat.data.mean())).sum(axis=1)
        spectrum_tilted = np.abs(np.fft.fft2(tilted.data - tilted.data.mean())).sum(axis=1)
        assert np.argmax(spectrum_tilted[5:128]) != np.argmax(spectrum_flat[5:128])
        stage.absolute_move(StagePosition(a=0.0))
    finally:
        microscope.twin.stage_errors = microscope.twin.drift = True


def test_stem_images_through_the_client(microscope, stem_mode):
    from clients.tem.enumerations import RegionCoordinateSystem
    from clients.tem.structures import Rectangle, Region, StemAcquisitionSettings

    stem_mode.optics.scan_field_of_view = 5e-9
    haadf = stem_mode.acquisition.acquire_stem_image(DetectorType.HAADF, 64, 2e-6)
    assert haadf.data.shape == (64, 64) and haadf.metadata.binary_result.detector == "HAADF"
    assert haadf.metadata.scan_settings.dwell_time == 2e-6
    assert haadf.metadata.binary_result.pixel_size.x == pytest.approx(5e-9 / 64)
    settings = StemAcquisitionSettings(
        dwell_time=1e-6, detector_types=[DetectorType.BF, DetectorType.HAADF], size=64,
        region=Region(RegionCoordinateSystem.RELATIVE, Rectangle(0.0, 0.0, 0.5, 0.25)),
    )
    bf, dark = stem_mode.acquisition.acquire_stem_images_advanced(settings)
    assert [bf.metadata.binary_result.detector, dark.metadata.binary_result.detector] == ["BF", "HAADF"]
    assert bf.data.shape == (16, 32) and bf.data.mean() > 10 * dark.data.mean()
    with pytest.raises(ValueError, match=r"dwell_time = 0 is out of range; allowed 1e-08 to 1 s"):
        stem_mode.acquisition.acquire_stem_image("HAADF", 64, 0)
    with pytest.raises(ValueError, match=r"dwell_time = 0.001 s over 1024 x 1024 pixels takes 1049 s per "
                                         r"frame; allowed at most 600 s"):
        stem_mode.acquisition.acquire_stem_image("HAADF", 1024, 1e-3)
    with pytest.raises(ValueError, match=r"mode = 'exact' at size = 256 runs 65536 probe positions"):
        stem_mode.acquisition.acquire_stem_images_advanced(
            StemAcquisitionSettings(1e-6, [DetectorType.HAADF], size=256, mode="exact"))
    after = stem_mode.acquisition.acquire_stem_image(DetectorType.HAADF, 64, 2e-6)  # refusals made no frame
    assert after.metadata.acquisition.frame_index == dark.metadata.acquisition.frame_index + 1


@pytest.mark.slow
def test_auto_functions_through_the_client(microscope):
    from clients.tem.structures import RunBeamTiltAutoFocusSettings, RunObjectiveAutoStigmatorSettings

    microscope.twin.drift = microscope.twin.stage_errors = False
    microscope.twin.focus_offset = -40e-9
    try:
        result = microscope.auto_functions.run_beam_tilt_auto_focus(
            RunBeamTiltAutoFocusSettings(size=256, exposure_time=2.0)
        )
        assert abs(result.defocus + 40e-9) < 5e-9  # the specimen's focus, read off the optics
        microscope.twin.objective_astigmatism = Point(5e-9, 0.0)
        stigmated = microscope.auto_functions.run_objective_auto_stigmator(
            RunObjectiveAutoStigmatorSettings(size=256, exposure_time=2.0)
        )
        assert stigmated.is_reliable
        assert microscope.optics.stigmators.objective_stigmator.x == pytest.approx(-0.1, abs=0.04)
    finally:
        microscope.twin.objective_astigmatism = Point(0.0, 0.0)
        microscope.twin.focus_offset = 0.0
        microscope.optics.stigmators.objective_stigmator = Point(0.0, 0.0)
        microscope.optics.focus = 0.0
        microscope.twin.drift = microscope.twin.stage_errors = True
