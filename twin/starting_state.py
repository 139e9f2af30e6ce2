"""The state an operator leaves the instruments in before a script starts.

Lab scripts assume the set-up done by hand at the console: a STEM script expects the column already in
STEM mode, an overnight script finds the beam blanked and the valves closed. ``twin serve --state NAME``
starts from one of :data:`PRESETS`, and ``--set NAME=VALUE`` sets single settings on top (a number in
SI, or with a unit: ``--set "optics.scan_field_of_view=8 nm"``, ``--set "source.acceleration_voltage=
300 kV"``; ``true``/``false``; a choice such as ``Stem``). A name that both instruments have takes a
prefix: ``tem:`` or ``afm:``.
"""

from __future__ import annotations

from typing import Any

from twin.digital_twin import DigitalTwin
from twin.scenarios.spec import Draw, apply, kind_of

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tem": {},  # parallel-beam imaging, beam on, valves open: the twin's own start
    "stem": {"tem": {"optics.optical_mode": "Stem"}},
    "diffraction": {"tem": {"optics.projector_mode": "Diffraction"}},
    "overnight": {"tem": {"optics.beam_blanked": True, "vacuum.column_valves_open": False}},
}


def setting(twin: DigitalTwin, text: str) -> tuple[str, str, Any]:
    """``(instrument, name, value)`` from ``NAME=VALUE`` (``tem:``/``afm:`` before a shared name)."""
    if "=" not in text:
        raise ValueError(f"--set {text!r}: give NAME=VALUE, e.g. --set 'optics.scan_field_of_view=8 nm'")
    name, raw = (part.strip() for part in text.split("=", 1))
    instrument, _, bare = name.rpartition(":")
    owners = [i for i, target in (("tem", twin.tem), ("afm", twin.afm))
              if (not instrument or instrument == i) and bare in target.settings.names()]
    if len(owners) > 1:
        raise ValueError(f"--set {text!r}: both instruments have {bare}; prefix tem: or afm:")
    if not owners:
        raise ValueError(f"--set {text!r}: no setting {bare!r} on {instrument or 'the TEM or the AFM'}")
    if raw.lower() in ("true", "false"):
        return owners[0], bare, raw.lower() == "true"
    return owners[0], bare, Draw(bare, kind_of(twin, owners[0], bare), raw).sample(None)


def set_up(twin: DigitalTwin, preset: str = "tem", settings: tuple[str, ...] = ()) -> list[str]:
    """Put ``twin`` in the ``preset`` state, then apply ``settings`` (``NAME=VALUE`` each); returns
    what was set, for the start-up report. Raises ValueError naming a bad preset or setting."""
    if preset not in PRESETS:
        raise ValueError(f"--state {preset!r} is not a starting state; allowed: {', '.join(PRESETS)}")
    done = []
    for instrument, changes in PRESETS[preset].items():
        apply(twin, instrument, changes)
        done += [f"{name}={value}" for name, value in changes.items()]
    for text in settings:
        instrument, name, value = setting(twin, text)
        apply(twin, instrument, {name: value})
        done.append(f"{name}={value}")
    return done
