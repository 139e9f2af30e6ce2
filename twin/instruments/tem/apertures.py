"""The column's motorised apertures and what each does to the beam.

* **C2** (condenser, not retractable): its diameter sets the beam current (as the area, against the
  aperture the spot sizes are quoted for) and the largest STEM probe semi-angle the condensers can form.
* **Objective** (back focal plane): stops every electron scattered beyond ``d / 2f`` from the axis:
  it cuts the HRTEM transfer function there, darkens a diffraction pattern beyond it, and keeps STEM
  detectors from collecting beyond it.
* **SA** (selected area, an image plane): selects a disk ``d / M_SA`` wide on the specimen: a
  diffraction pattern comes from that disk only, an image is dark outside it.

Settings ``apertures.<mechanism>.{aperture, inserted, enabled, position}`` hold their state.
"""

from __future__ import annotations

from typing import Any

from twin import validation
from twin.instruments.parameters import Choice, Flag, Vector
from twin.instruments.tem.hardware import TemHardware

State = dict[str, Any]


def settings(hardware: TemHardware) -> list[Any]:
    """The settings of every mechanism: the selected aperture (kept while retracted), whether it is in,
    whether the mechanism is enabled, and the aperture's position (m, an alignment preset)."""
    out: list[Any] = []
    for mechanism in hardware.aperture_mechanisms:
        names = [name for name, _ in mechanism.apertures]
        prefix = f"apertures.{mechanism.name}"
        label = mechanism.name
        out += [
            Choice(f"{prefix}.aperture", names, mechanism.default or names[0], f"{label} aperture"),
            Flag(f"{prefix}.inserted", mechanism.default is not None, f"{label} aperture in the beam"),
            Flag(f"{prefix}.enabled", True, f"{label} mechanism enabled"),
            Vector(f"{prefix}.position", "m", -1e-3, 1e-3, (0.0, 0.0), f"{label} aperture position"),
        ]
    return out


def check(state: State, hardware: TemHardware, name: str, value: Any) -> dict[str, Any]:
    """What setting ``name`` to ``value`` changes besides itself (selecting an aperture inserts its
    mechanism; a smaller C2 lowers the convergence angle to what it allows), or an error saying why
    the mechanism refuses. Returns the other settings to change."""
    _, mechanism_name, field = name.split(".")
    mechanism = hardware.aperture_mechanism(mechanism_name)
    inserted = state[f"apertures.{mechanism_name}.inserted"]
    what = f"aperture mechanism {mechanism_name}"
    if field != "enabled" and not state[f"apertures.{mechanism_name}.enabled"]:
        raise RuntimeError(f"{what} is disabled; enable() it first")
    if field == "enabled" and not validation.flag(name, value) and inserted:
        raise RuntimeError(f"{what} is inserted; retract() it before disable()")
    if field == "inserted" and not mechanism.retractable and not validation.flag(name, value):
        raise RuntimeError(f"{what} is not retractable")
    if field == "position" and not inserted:
        raise RuntimeError(f"{what} is retracted: its position needs it inserted")
    also: dict[str, Any] = {}
    if field == "aperture":
        validation.one_of(name, value, [n for n, _ in mechanism.apertures])
        if not state[f"apertures.{mechanism_name}.inserted"]:
            also[f"apertures.{mechanism_name}.inserted"] = True
        if mechanism_name == "C2":
            widest = hardware.convergence_per_c2 * mechanism.diameter(value)
            if state["optics.convergence_angle"] > widest:
                also["optics.convergence_angle"] = widest
    return also


def largest_convergence(state: State, hardware: TemHardware) -> float:
    """The widest probe semi-angle (rad) the condensers form through the C2 aperture in the beam."""
    return hardware.convergence_per_c2 * _diameter(state, hardware, "C2")


def current_factor(state: State, hardware: TemHardware) -> float:
    """The beam current relative to the spot size's nominal one: the C2 aperture's area over the
    reference aperture's."""
    return (_diameter(state, hardware, "C2") / hardware.reference_c2) ** 2


def objective_cutoff(state: State, hardware: TemHardware) -> float | None:
    """The largest scattering angle (rad) the objective aperture passes, ``None`` with it retracted."""
    if not state["apertures.Objective.inserted"]:
        return None
    return _diameter(state, hardware, "Objective") / (2 * hardware.objective_focal_length)


def selected_area(state: State, hardware: TemHardware) -> float | None:
    """The diameter (m) of the specimen disk the SA aperture selects, ``None`` with it retracted."""
    if not state["apertures.SA.inserted"]:
        return None
    return _diameter(state, hardware, "SA") / hardware.sa_magnification


def _diameter(state: State, hardware: TemHardware, mechanism: str) -> float:
    return hardware.aperture_mechanism(mechanism).diameter(state[f"apertures.{mechanism}.aperture"])
