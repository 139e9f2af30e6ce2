"""The metadata record every TEM/STEM acquisition starts from: acquisition times and index, the optics
as set, the stage reading, the vacuum, and the twin's own record (provenance, aberrations)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from twin.instruments.metadata import provenance
from twin.instruments.work import Job

if TYPE_CHECKING:
    from twin.instruments.tem.instrument import State, TemInstrument


@dataclass
class Exposure:
    """One acquisition (``TemInstrument.acquisition``): its frame index, its job (progress; None for a
    recorder riding along) and when it started and finished (wall clock)."""

    frame_index: int
    job: Job | None
    started: datetime
    finished: datetime | None = None


def acquisition_metadata(tem: TemInstrument, state: State, stage: State, exposure: Exposure,
                         method: str) -> dict[str, Any]:
    """What ``tem`` records of an acquisition (``exposure``) taken with the settings ``state`` and
    the stage at ``stage``, simulated by ``method``; each kind of acquisition adds its own part."""
    aberrations = tem.aberrations(state, stage)
    energy = state["source.acceleration_voltage"]
    coherence = tem.hardware.coherence(energy)
    frame_index = exposure.frame_index
    return {
        "acquisition": {
            "acquisition_id": f"TEM-{frame_index:06d}",
            "acquisition_start_date_time": exposure.started.isoformat(),
            "acquisition_date_time": exposure.finished.isoformat(),
            "frame_index": frame_index,
        },
        "optics": {
            "optical_mode": state["optics.optical_mode"],
            "projector_mode": state["optics.projector_mode"],
            "defocus": state["optics.focus"] - tem.defocus_reference,
            "focus": state["optics.focus"],
            "acceleration_voltage": energy,
            "spot_size_index": state["optics.spot_size_index"],
            "beam_current": tem.beam_current(state),
            "objective_stigmator": {"x": state["optics.objective_stigmator"][0],
                                    "y": state["optics.objective_stigmator"][1]},
            "beam_shift": dict(zip("xy", state["optics.beam_shift"], strict=True)),
            "image_shift": dict(zip("xy", state["optics.image_shift"], strict=True)),
            "spherical_aberration": tem.hardware.spherical_aberration,
            "focal_spread": coherence.focal_spread,
            "illumination_semiangle": coherence.angular_spread,
            "beam_blanked": state["optics.beam_blanked"],
            "beam_tilt": dict(zip("xy", state["optics.beam_tilt"], strict=True)),
            "intensity": state["optics.intensity"],
            "c2_lens_intensity": state["optics.intensity"],
            "apertures": {m.name: (state[f"apertures.{m.name}.aperture"]
                                   if state[f"apertures.{m.name}.inserted"] else None)
                          for m in tem.hardware.aperture_mechanisms},
        },
        "stage_settings": {"stage_position": stage},
        "vacuum": {"column_valves_open": state["vacuum.column_valves_open"]},
        "twin": {
            **provenance(tem.sample, tem.seed),
            "simulation": method,
            "instrument_time": tem.clock.now(),
            "aberrations": {"C10": aberrations.C10, "C12": aberrations.C12, "phi12": aberrations.phi12,
                            "C30": aberrations.C30},
        },
    }
