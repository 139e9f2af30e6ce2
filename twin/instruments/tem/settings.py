"""The TEM/STEM's settings table and the rules that tie settings together: STEM-only and TEM-only
settings, detectors that cannot be retracted, the C2 aperture bounding the probe's semi-angle, and what
an aperture change brings with it (:func:`twin.instruments.tem.apertures.check`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from twin import validation
from twin.instruments.parameters import Choice, Flag, Integer, Real, Settings, Vector
from twin.instruments.tem import apertures
from twin.instruments.tem.hardware import CAMERA_LENGTHS, NOMINAL_MAGNIFICATIONS, TemHardware
from twin.instruments.tem.scanning import MODES

State = dict[str, Any]  # a snapshot of settings, or of the stage

STEM_ONLY = ("optics.scan_field_of_view", "optics.scan_rotation", "optics.paused_scan_beam_position")
TEM_ONLY = ("optics.magnification",)


def settings_table(hardware: TemHardware) -> Settings:
    """Every setting of a TEM/STEM built as ``hardware``, with its unit, range and default."""
    half_turn = float(np.pi)
    return Settings([
        Choice("optics.optical_mode", ("Tem", "Stem"), "Tem", "parallel-beam TEM or scanned probe"),
        Choice("optics.projector_mode", ("Imaging", "Diffraction"), "Imaging", "image or diffraction"),
        Real("optics.focus", "m", -1e-3, 1e-3, 0.0, "objective focus; defocus is focus minus a reference"),
        Choice("optics.magnification", NOMINAL_MAGNIFICATIONS, 2_550_000.0,
               "nominal magnification; the camera field of view follows from it", unit="x"),
        Choice("optics.camera_length", CAMERA_LENGTHS, 0.115, "diffraction camera length", unit="m"),
        Real("optics.scan_field_of_view", "m", 0.5e-9, 100e-6, 8e-9, "STEM scan width"),
        Real("optics.scan_rotation", "rad", -2 * half_turn, 2 * half_turn, 0.0, "STEM scan rotation"),
        Integer("optics.spot_size_index", 1, 11, 5, "1 = most current; each step halves it"),
        Real("optics.convergence_angle", "rad", 0.5e-3, 50e-3, 30e-3, "STEM probe semi-angle"),
        Vector("optics.objective_stigmator", "", -1.0, 1.0, (0.0, 0.0), "two-fold stigmator"),
        Vector("optics.beam_shift", "m", -1e-6, 1e-6, (0.0, 0.0), "moves the beam / the scan"),
        Vector("optics.image_shift", "m", -1e-6, 1e-6, (0.0, 0.0), "moves the imaged area"),
        Vector("optics.beam_tilt", "rad", -0.05, 0.05, (0.0, 0.0), "tilts the illumination"),
        Vector("optics.image_tilt", "rad", -0.1, 0.1, (0.0, 0.0), "diffraction shift: moves the pattern"),
        Vector("optics.paused_scan_beam_position", "", 0.0, 1.0, (0.5, 0.5), "parked probe, scan fraction"),
        Flag("optics.beam_blanked", False, "beam blanker"),
        Real("optics.monochromator_focus", "", -200.0, 200.0, 0.0, "gun lens: the current falls as it rises"),
        Real("source.acceleration_voltage", "V", 60e3, 300e3, 80e3, "high tension"),
        Flag("vacuum.column_valves_open", True, "column valves"),
        Flag("detectors.screen_inserted", False, "fluorescent screen (blocks the detectors below)"),
        *(Flag(f"detectors.{c.name}.inserted", True, f"{c.name} camera") for c in hardware.cameras),
        *(Flag(f"detectors.{d.name}.inserted", True, f"{d.name} EDS detector")
          for d in hardware.eds_detectors),
        *(Flag(f"detectors.{d.name}.inserted", True, f"{d.name} detector")
          for d in hardware.scanning_detectors),
        Real("twin.focus_offset", "m", -1e-3, 1e-3, 0.0, "focus at which the specimen is in focus (C10 = 0)"),
        Vector("twin.objective_astigmatism", "m", -1e-6, 1e-6, (0.0, 0.0), "the column's own (C12a, C12b)"),
        Real("twin.emission", "", 1e-3, 1e3, 1.0, "the gun's emission: beam current over the nominal one"),
        Flag("twin.stage_errors", True, "stage positioning error and backlash"),
        Flag("twin.drift", True, "specimen drift"),
        Choice("twin.stem_mode", MODES, hardware.stem_mode, "STEM physics: interactive, exact or prism"),
        Real("optics.intensity", "", 0.0, 1.0, hardware.default_intensity,
             "C2 lens excitation: the TEM beam's crossover at 0.45, spread wider away from it"),
        *apertures.settings(hardware),
    ])


def check_setting(settings: Settings, hardware: TemHardware, name: Any, value: Any) -> dict[str, Any]:
    """Refuse setting ``name`` to ``value`` where a rule forbids it (the optical mode, a fixed detector,
    the C2 aperture, an aperture mechanism); return the other settings that change with it (selecting an
    aperture inserts it, a smaller C2 lowers the convergence angle)."""
    check_mode(name, settings.get("optics.optical_mode"))
    if isinstance(name, str) and name.startswith("detectors.") and name.endswith(".inserted"):
        check_retractable(hardware, name.split(".")[1], value)
    if name == "optics.convergence_angle":
        widest = apertures.largest_convergence(settings.snapshot(), hardware)
        parameter = settings.parameter(name)
        angle = validation.real(name, value, parameter.lo, parameter.hi, "rad")
        if angle > widest:
            raise ValueError(f"{name} = {angle!r} rad: the C2 aperture in the beam allows at most "
                             f"{widest:.4g} rad; select a larger one")
    if isinstance(name, str) and name.startswith("apertures.") and name in settings.names():
        return apertures.check(settings.snapshot(), hardware, name, value)
    return {}


def check_mode(name: Any, mode: str) -> None:
    """Refuse a STEM-only setting in TEM ``mode`` and a TEM-only one in STEM."""
    if name in STEM_ONLY and mode != "Stem":
        raise RuntimeError(
            f"{name} exists in STEM mode only; optics.optical_mode is {mode!r}, set 'Stem' first"
        )
    if name in TEM_ONLY and mode != "Tem":
        raise RuntimeError(
            f"{name} exists in TEM mode only; optics.optical_mode is {mode!r} "
            "(in STEM the scan field of view sets the magnification)"
        )


def check_retractable(hardware: TemHardware, detector: str, value: Any) -> None:
    """Refuse retracting (``value`` false) a detector that cannot be retracted."""
    units = {u.name: u for u in (*hardware.cameras, *hardware.scanning_detectors, *hardware.eds_detectors)}
    unit = units[validation.one_of("detector", detector, list(units))]
    if not unit.retractable and not validation.flag(f"detectors.{detector}.inserted", value):
        raise RuntimeError(f"detector {detector} is not retractable")
