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


Change = tuple[str, str, Any]  # (instrument, setting, value)


def resolve(twin: DigitalTwin, preset: str = "tem", settings: tuple[str, ...] = ()) -> list[Change]:
    """The changes that put ``twin`` in the ``preset`` state with ``settings`` (``NAME=VALUE`` each) on
    top, in order, without making them. Raises ValueError naming a bad preset or setting."""
    if not isinstance(preset, str) or preset not in PRESETS:
        raise ValueError(f"--state {preset!r} is not a starting state; allowed: {', '.join(PRESETS)}")
    changes = [(instrument, name, value) for instrument, named in PRESETS[preset].items()
               for name, value in named.items()]
    return changes + [setting(twin, text) for text in settings]


def apply_changes(twin: DigitalTwin, changes: list[Change]) -> list[str]:
    """Make ``changes`` on ``twin``; returns them as ``NAME=VALUE`` texts, for a report."""
    for instrument, name, value in changes:
        apply(twin, instrument, {name: value})
    return [f"{name}={value:.6g}" if isinstance(value, float) else f"{name}={value}"
            for _, name, value in changes]


def set_up(twin: DigitalTwin, preset: str = "tem", settings: tuple[str, ...] = ()) -> list[str]:
    """Put ``twin`` in the ``preset`` state, then apply ``settings`` (``NAME=VALUE`` each), and keep both
    as the state :meth:`DigitalTwin.reset` returns to; returns what was set, for the start-up report.
    Raises ValueError naming a bad preset or setting."""
    done = apply_changes(twin, resolve(twin, preset, settings))
    twin.starting = (preset, tuple(settings))
    return done
