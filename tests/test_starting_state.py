"""Starting from the state an operator leaves the microscope in (``twin serve --state/--set``)."""

from __future__ import annotations

import pytest

from twin.cli import main
from twin.digital_twin import DigitalTwin
from twin.starting_state import set_up


def test_a_preset_and_single_settings_with_units_set_the_start() -> None:
    twin = DigitalTwin.build("graphene", 0)
    done = set_up(twin, "stem", ("optics.scan_field_of_view=12 nm", "source.acceleration_voltage=300 kV",
                                 "tem:optics.beam_blanked=true", "ZController.SetPoint=1.5"))
    assert twin.tem.get("optics.optical_mode") == "Stem"
    assert twin.tem.get("optics.scan_field_of_view") == pytest.approx(12e-9)
    assert twin.tem.get("source.acceleration_voltage") == pytest.approx(300e3)
    assert twin.tem.get("optics.beam_blanked") is True
    assert twin.afm.settings.get("ZController.SetPoint") == pytest.approx(1.5)
    assert done[0] == "optics.optical_mode=Stem" and len(done) == 5
    overnight = DigitalTwin.build("graphene", 0)
    set_up(overnight, "overnight")
    assert overnight.tem.get("optics.beam_blanked") and not overnight.tem.get("vacuum.column_valves_open")


@pytest.mark.parametrize(("preset", "settings", "refusal"), [
    ("stm", (), r"--state 'stm' is not a starting state; allowed: tem, stem, diffraction, overnight"),
    ("tem", ("optics.focus",), r"--set 'optics.focus': give NAME=VALUE"),
    ("tem", ("optics.fokus=1 nm",), r"no setting 'optics.fokus' on the TEM or the AFM"),
    ("tem", ("afm:optics.focus=1 nm",), r"no setting 'optics.focus' on afm"),
    ("tem", ("optics.focus=3 seconds",), r"optics.focus = '3 seconds' is not a length"),  # parsecs are one
    ("tem", ("optics.scan_field_of_view=8 nm",), r"exists in STEM mode only"),  # in TEM mode: refused
])
def test_a_bad_starting_state_is_refused_naming_it(preset, settings, refusal) -> None:
    with pytest.raises((ValueError, RuntimeError), match=refusal):
        set_up(DigitalTwin.build("graphene", 0), preset, settings)


def test_twin_serve_reports_a_bad_state_before_it_listens() -> None:
    with pytest.raises(SystemExit, match=r"twin serve: --set 'optics.fokus=1': no setting 'optics.fokus'"):
        main(["serve", "--port", "0", "--set", "optics.fokus=1"])
    with pytest.raises(SystemExit, match="--state and --set start a plain twin"):
        main(["serve", "--port", "0", "--scenario", "tem-autofocus", "--state", "stem"])
