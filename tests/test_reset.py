"""``reset()``: a running twin back at its start-up state, so scripts can share one server.

The reference for "its start-up state" is a twin built fresh from the same seed (the reproducibility
rule: the same seed and the same calls give the same data), not the reset's own bookkeeping.
"""

from __future__ import annotations

import numpy as np
import pytest

from clients.afm import SPM
from clients.tem import TemMicroscopeClient
from clients.tem.enumerations import CameraType, DetectorType, OpticalMode
from clients.tem.structures import StagePosition
from tests.conftest import SERVER_SEED
from twin.cli import main
from twin.digital_twin import DigitalTwin
from twin.scenarios import spec
from twin.server.instances import Instance

WINDOW = (-50e-9, -50e-9, 50e-9, 50e-9)  # m: where the damage below lands, drift included


def damage(microscope: TemMicroscopeClient) -> None:
    """Knock atoms out: from the start-up state (whatever earlier tests left), a 64² HAADF scan of 4 nm
    at 300 kV and 0.1 ms a pixel (graphene's threshold is ~86 kV), leaving the column in STEM mode at
    300 kV."""
    microscope.twin.reset()
    assert beam_damage(microscope) == []
    microscope.optics.optical_mode = OpticalMode.STEM
    microscope.source.acceleration_voltage = 300e3
    microscope.optics.scan_field_of_view = 4e-9
    microscope.acquisition.acquire_stem_image(DetectorType.HAADF, 64, 1e-4)


def beam_damage(microscope: TemMicroscopeClient) -> list:
    return [d for d in microscope.twin.defects(*WINDOW) if d.origin == "beam damage"]


def test_after_a_reset_the_same_calls_give_what_a_fresh_twin_gives(microscope: TemMicroscopeClient,
                                                                   spm: SPM) -> None:
    damage(microscope)
    microscope.specimen.stage.relative_move_safe(StagePosition(x=2e-7))
    spm.application.Approach.StartApproach()
    spm.application.Scan.StartFrameUp()
    assert beam_damage(microscope), "the scan knocked no atom out: the test would not test the sample"

    done = microscope.twin.reset()

    assert done == {"state": "tem", "set": []}  # the shared server starts with no preset
    assert microscope.optics.optical_mode == OpticalMode.TEM
    assert microscope.source.acceleration_voltage.value == pytest.approx(DigitalTwin.build(seed=SERVER_SEED)
                                                                   .tem.get("source.acceleration_voltage"))
    assert microscope.specimen.stage.position.x == 0.0
    assert beam_damage(microscope) == []
    assert spm.application.Approach.Status == spm.ApproachStatus.Standby
    assert not spm.application.Scan.IsScanning
    image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 256, 0.1).data
    fresh = DigitalTwin.build(seed=SERVER_SEED).tem.acquire_camera_image("BM-Ceta", 256, 0.1, "Full")["data"]
    np.testing.assert_array_equal(image, fresh)


def test_a_reset_to_a_preset_applies_it_and_a_bad_one_changes_nothing(microscope) -> None:
    assert microscope.twin.reset("stem", ["twin.focus_offset=30 nm", "optics.scan_field_of_view=8 nm"]) == {
        "state": "stem", "set": ["optics.optical_mode=Stem", "twin.focus_offset=3e-08",
                                 "optics.scan_field_of_view=8e-09"]}
    assert microscope.optics.optical_mode == OpticalMode.STEM
    assert microscope.twin.focus_offset == pytest.approx(30e-9)
    microscope.optics.scan_field_of_view = 5e-9
    with pytest.raises(ValueError, match=r"'stm' is not a starting state; allowed: tem, stem, diffraction"):
        microscope.twin.reset("stm")
    with pytest.raises(ValueError, match=r"no setting 'optics.fokus'"):
        microscope.twin.reset("tem", ["optics.fokus=1 nm"])
    assert microscope.optics.scan_field_of_view == pytest.approx(5e-9)  # refused before anything changed
    with pytest.raises(ValueError, match=r"twin.focus_offset = 1.0 is out of range; allowed -0.001 to 0.001"):
        microscope.twin.reset("tem", ["twin.focus_offset=1 m"])  # refused while applied: back to the start
    assert microscope.optics.optical_mode == OpticalMode.TEM
    microscope.twin.reset()


def test_twin_run_reset_starts_a_script_from_the_servers_state(server, microscope: TemMicroscopeClient,
                                                               tmp_path, capsys) -> None:
    damage(microscope)  # the previous script left the column in STEM mode at 300 kV
    script = tmp_path / "camera.py"
    script.write_text(
        "from autoscript_tem_microscope_client import TemMicroscopeClient\n"
        "from autoscript_tem_microscope_client.enumerations import CameraType, OpticalMode\n"
        "microscope = TemMicroscopeClient()\n"
        "microscope.connect('192.0.2.1')\n"  # a documentation address: twin run sends it to the twin
        "assert microscope.optics.optical_mode == OpticalMode.TEM\n"
        "image = microscope.acquisition.acquire_camera_image(CameraType.BM_CETA, 64, 0.1)\n"
        "print('mean', image.data.mean())\n")
    assert main(["run", "--reset", "--port", str(server.port), str(script)]) == 0
    assert "mean" in capsys.readouterr().out
    assert beam_damage(microscope) == []
    with pytest.raises(SystemExit, match="--state and --set need --serve .* or --reset"):
        main(["run", "--state", "stem", "--port", str(server.port), str(script)])


def test_a_challenge_refuses_a_reset() -> None:
    instance = Instance.playing("team", spec.load("tem-autofocus"), 1)
    with pytest.raises(PermissionError, match="reset is refused in a challenge"):
        instance.invoke("sample.reset", [], {})


def test_with_the_ground_truth_off_a_reset_neither_sets_nor_echoes_hidden_state() -> None:
    from twin.server.services import SampleService
    from twin.starting_state import set_up

    twin = DigitalTwin.build(seed=1, ground_truth=False)
    set_up(twin, "stem", ("twin.focus_offset=30 nm",))  # the operator's hidden start
    service = SampleService(twin)
    assert service.reset() == {"state": "stem", "set": ["optics.optical_mode=Stem"]}
    assert twin.tem.get("twin.focus_offset") == pytest.approx(30e-9)  # applied, not shown
    with pytest.raises(PermissionError, match="twin.focus_offset is part of the simulation's hidden state"):
        service.reset("tem", ["tem:twin.focus_offset=0"])
    with pytest.raises(ValueError, match="settings = a list of 300: allowed at most 256"):
        service.reset("tem", ["optics.focus=0"] * 300)
    assert service.reset(settings=["source.acceleration_voltage=300 kV"])["set"] == [
        "optics.optical_mode=Stem", "source.acceleration_voltage=300000"]  # the server's preset, these
