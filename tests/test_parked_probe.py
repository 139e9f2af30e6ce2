"""A parked, unblanked STEM probe keeps irradiating the specimen between commands (a running clock):
at 300 kV it drills a hole where it sits and nowhere else; blanked, or below graphene's knock-on
threshold, it does nothing; a stage move sweeps it away without a hole."""

from __future__ import annotations

import numpy as np

from twin.digital_twin import DigitalTwin
from twin.sample import Window


def parked(kv: float) -> DigitalTwin:
    twin = DigitalTwin.build("graphene", seed=3)
    for name, value in (("optics.optical_mode", "Stem"), ("source.acceleration_voltage", kv),
                        ("optics.spot_size_index", 3), ("twin.drift", False), ("twin.stage_errors", False)):
        twin.tem.set(name, value)
    return twin


def probe_position(twin: DigitalTwin) -> np.ndarray:
    tem = twin.tem
    state = tem.snapshot()
    stage, offset = tem.stage_reading(state)
    return tem.parked_probe(state, stage, offset)


def atoms_near(twin: DigitalTwin, centre: np.ndarray, inner: float, outer: float) -> int:
    """Atoms between ``inner`` and ``outer`` (m) from ``centre``, from the sample's ground truth."""
    window = Window.around(float(centre[0]), float(centre[1]), 2 * outer, 2 * outer)
    atoms = twin.sample.atoms_in_window(window)
    r = np.hypot(*(atoms.positions[:, :2] * 1e-10 + [window.x_min, window.y_min] - centre).T)
    return int(((r >= inner) & (r < outer)).sum())


def test_a_parked_probe_drills_a_hole_where_it_sits_at_300_kv() -> None:
    twin = parked(300e3)
    centre = probe_position(twin)
    core, far = atoms_near(twin, centre, 0, 0.2e-9), atoms_near(twin, centre, 2e-9, 3e-9)
    assert core > 0
    twin.tem.clock.advance(30.0)  # 30 s with the probe parked, unblanked
    twin.tem.set("optics.paused_scan_beam_position", (0.1, 0.1))  # the next command settles its dose
    assert atoms_near(twin, centre, 0, 0.2e-9) == 0  # the atoms under the probe are gone
    assert atoms_near(twin, centre, 2e-9, 3e-9) == far  # 2 nm away nothing changed


def test_blanked_below_threshold_or_moving_it_drills_nothing() -> None:
    for kv, blanked, move in ((300e3, True, False), (60e3, False, False), (300e3, False, True)):
        twin = parked(kv)
        twin.tem.set("optics.beam_blanked", blanked)
        centre = probe_position(twin)
        before = atoms_near(twin, centre, 0, 1e-9)
        if move:
            twin.tem.move_stage({"x": 1e-6})  # the probe sweeps over the specimen while the stage moves
        else:
            twin.tem.clock.advance(30.0)
        twin.tem.set("optics.paused_scan_beam_position", (0.1, 0.1))
        assert atoms_near(twin, centre, 0, 1e-9) == before, (kv, blanked, move)
