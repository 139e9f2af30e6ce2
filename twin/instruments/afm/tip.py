"""The AFM tip as the settings describe it, the force pressing it on the surface, and what a frame does
to it: wear with the path and load, a broken apex after a crash, now and then a random tip change."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin.instruments.afm.hardware import AfmHardware
from twin.instruments.afm.materials import PRISTINE
from twin.instruments.afm.vocabulary import STATIC_MODES
from twin.physics.afm import Tip, electrostatic_force, worn_radius

STREAM_TIP = 0x544950  # random stream tag for tip changes


def tip_of(state: dict[str, Any]) -> Tip:
    """The tip the settings ``state`` describe: radius, cone angle and perhaps a second apex."""
    extra = ()
    if tuple(state["twin.second_apex"]) != (0.0, 0.0):
        extra = ((*state["twin.second_apex"], state["twin.second_apex_height"]),)
    return Tip(state["twin.tip_radius"], np.radians(state["twin.tip_cone_angle"]), extra)


def load(state: dict[str, Any], hardware: AfmHardware) -> float:
    """Mean force (N) pressing the tip on the surface at the setpoint."""
    hw, setpoint = hardware, state["ZController.SetPoint"]
    if state["OperatingMode.OperatingMode"] in STATIC_MODES:  # the bias pulls the tip in too
        attraction = float(electrostatic_force(state["ZController.TipVoltage"],
                                               PRISTINE.contact_potential, state["twin.tip_radius"],
                                               PRISTINE.a0))
        return hw.spring_constant * hw.deflection_sensitivity * setpoint + attraction
    return hw.tapping_force * (1.0 - setpoint / 100.0)


def untouched(state: dict[str, Any]) -> dict[str, Any]:
    """The tip as it is, untouched (a frame in free air)."""
    return {"radius": state["twin.tip_radius"], "second_apex": list(state["twin.second_apex"]),
            "events": [], "path": 0.0, "load": 0.0}


def wear(state: dict[str, Any], hardware: AfmHardware, seed: int, frame_index: int, path: float,
         loop_stable: bool, largest_radius: float) -> tuple[dict[str, Any], dict[str, Any]]:
    """What frame ``frame_index`` did to the tip, which slid ``path`` (m, forward and backward) over
    the surface: wear with the path and load, a broken apex when the load or an oscillating loop
    (not ``loop_stable``) slams it into the surface, and now and then a random tip change (seeded).
    Returns the settings the next frame's tip has (in the order to set them; the radius at most
    ``largest_radius``) and the record of what happened."""
    hw, changes = hardware, {}
    force = load(state, hw)
    radius, apex, events = state["twin.tip_radius"], tuple(state["twin.second_apex"]), []
    radius = worn_radius(radius, force, path, hw.wear_rate)
    hard_tapping = (state["OperatingMode.OperatingMode"] not in STATIC_MODES
                    and state["ZController.SetPoint"] < hw.hard_tapping_setpoint)
    rng = np.random.default_rng([seed, STREAM_TIP, frame_index])
    if force > hw.damaging_force or hard_tapping or not loop_stable:
        radius, events = radius * rng.uniform(2.0, 4.0), ["crash: the apex broke"]
    if rng.random() < -np.expm1(-path / hw.tip_change_path):
        events.append("tip change")
        if rng.random() < 0.5:
            radius *= rng.uniform(1.3, 2.5)
        else:
            apex = (float(rng.uniform(1e-9, 6e-9) * rng.choice([-1, 1])),
                    float(rng.uniform(1e-9, 6e-9) * rng.choice([-1, 1])))
            changes["twin.second_apex_height"] = float(rng.uniform(0.0, 0.3e-9))
    radius = float(min(radius, largest_radius))
    changes |= {"twin.tip_radius": radius, "twin.second_apex": apex}
    return changes, {"radius": radius, "second_apex": list(apex), "events": events, "path": path,
                     "load": force}
