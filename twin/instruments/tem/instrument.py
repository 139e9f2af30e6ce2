"""The TEM/STEM: optics, source, stage, detectors and vacuum around one shared sample.

Settings live in one declared :class:`Settings`; the instrument adds the rules that tie them
together (STEM-only and TEM-only settings, defocus relative to a reference, stigmators adding to the
column's own astigmatism) and the acquisitions, which snapshot the state and hand it to physics.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy import constants

from twin import __version__, validation
from twin.instruments.clock import Clock
from twin.instruments.parameters import Choice, Flag, Integer, Real, Settings, Vector
from twin.instruments.tem.hardware import CAMERA_LENGTHS, NOMINAL_MAGNIFICATIONS, TemHardware
from twin.instruments.tem.imaging import HrtemSimulator
from twin.instruments.tem.stage import Stage
from twin.physics.ctf import Aberrations
from twin.physics.detectors import camera_counts, camera_mtf, shot_noise
from twin.sample import Sample, Window

STEM_ONLY = ("optics.scan_field_of_view", "optics.scan_rotation", "optics.paused_scan_beam_position")
TEM_ONLY = ("optics.magnification",)
_STREAM_CAMERA = 0x43414D  # random stream tag for camera noise


def _settings(hardware: TemHardware) -> Settings:
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
        Vector("optics.paused_scan_beam_position", "", 0.0, 1.0, (0.5, 0.5), "parked probe, scan fraction"),
        Flag("optics.beam_blanked", False, "beam blanker"),
        Real("source.acceleration_voltage", "V", 60e3, 300e3, 80e3, "high tension"),
        Flag("vacuum.column_valves_open", True, "column valves"),
        Flag("detectors.screen_inserted", False, "fluorescent screen (blocks the detectors below)"),
        *(Flag(f"detectors.{c.name}.inserted", True, f"{c.name} camera") for c in hardware.cameras),
        *(Flag(f"detectors.{d.name}.inserted", True, f"{d.name} detector")
          for d in hardware.scanning_detectors),
        Real("twin.focus_offset", "m", -1e-3, 1e-3, 0.0, "focus at which the specimen is in focus (C10 = 0)"),
        Vector("twin.objective_astigmatism", "m", -1e-6, 1e-6, (0.0, 0.0), "the column's own (C12a, C12b)"),
        Flag("twin.stage_errors", True, "stage positioning error and backlash"),
        Flag("twin.drift", True, "specimen drift"),
    ])


class TemInstrument:
    """State and acquisitions of the simulated TEM/STEM."""

    def __init__(self, sample: Sample, clock: Clock, seed: int, hardware: TemHardware | None = None):
        self.sample = sample
        self.clock = clock
        self.seed = seed
        self.hardware = hardware or TemHardware()
        self.settings = _settings(self.hardware)
        self.stage = Stage(self.hardware, clock, seed)
        self.hrtem = HrtemSimulator(sample, self.hardware)
        self._defocus_reference = 0.0
        self._acquire_lock = threading.Lock()
        self._frames = 0

    # --- settings --------------------------------------------------------------------------------
    def get(self, name: Any) -> Any:
        if name == "optics.defocus":
            return self.settings.get("optics.focus") - self._defocus_reference
        self._check_mode(name)
        return self.settings.get(name)

    def set(self, name: Any, value: Any) -> Any:
        if name == "optics.defocus":
            lo, hi = self.settings.parameter("optics.focus").lo, self.settings.parameter("optics.focus").hi
            defocus = validation.real("optics.defocus", value, lo - self._defocus_reference,
                                      hi - self._defocus_reference, "m")
            self.settings.set("optics.focus", self._defocus_reference + defocus)
            return defocus
        self._check_mode(name)
        if isinstance(name, str) and name.startswith("detectors.") and name.endswith(".inserted"):
            self._check_retractable(name.split(".")[1], value)
        return self.settings.set(name, value)

    def reset_defocus(self) -> None:
        """Make the current focus read as zero defocus (the focus itself does not change)."""
        self._defocus_reference = self.settings.get("optics.focus")

    def _check_mode(self, name: Any) -> None:
        mode = self.settings.get("optics.optical_mode")
        if name in STEM_ONLY and mode != "Stem":
            raise RuntimeError(
                f"{name} exists in STEM mode only; optics.optical_mode is {mode!r}, set 'Stem' first"
            )
        if name in TEM_ONLY and mode != "Tem":
            raise RuntimeError(
                f"{name} exists in TEM mode only; optics.optical_mode is {mode!r} "
                "(in STEM the scan field of view sets the magnification)"
            )

    def _check_retractable(self, detector: str, value: Any) -> None:
        names = [c.name for c in self.hardware.cameras] + [d.name for d in self.hardware.scanning_detectors]
        validation.one_of("detector", detector, names)
        cameras = {c.name: c for c in self.hardware.cameras}
        unit = cameras.get(detector) or self.hardware.detector(detector)
        if not unit.retractable and not validation.flag(f"detectors.{detector}.inserted", value):
            raise RuntimeError(f"detector {detector} is not retractable")

    # --- derived optics ----------------------------------------------------------------------
    def aberrations(self, state: dict[str, Any]) -> Aberrations:
        """The objective's aberrations now: focus, stigmator plus the column's own astigmatism, Cs."""
        intrinsic = np.array(state["twin.objective_astigmatism"])
        a = intrinsic + self.hardware.stigmator_strength * np.array(state["optics.objective_stigmator"])
        return Aberrations(
            C10=state["optics.focus"] - state["twin.focus_offset"],
            C12=float(np.hypot(*a)),
            phi12=float(np.arctan2(a[1], a[0]) / 2),
            C30=self.hardware.spherical_aberration,
        )

    def beam_current(self, state: dict[str, Any]) -> float:
        return self.hardware.beam_current(state["optics.spot_size_index"])

    def beam_reaches(self, state: dict[str, Any], detector: str) -> bool:
        """Whether electrons arrive at ``detector``: beam unblanked, valves open, screen out, inserted."""
        return (not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]
                and not state["detectors.screen_inserted"] and state[f"detectors.{detector}.inserted"])

    def field_of_view(self, magnification: float | None = None) -> float:
        """Side (m) of the square area the Ceta camera sees at ``magnification`` (default: current)."""
        nominal = magnification if magnification is not None else self.settings.get("optics.magnification")
        return self.hardware.camera("BM-Ceta").width / (nominal * self.hardware.post_magnification)

    def view_centre(self, state: dict[str, Any], stage: dict[str, Any], shift: str) -> np.ndarray:
        """The sample point (m) on the optical axis, moved by the ``shift`` deflector."""
        offset = self.stage.specimen_offset(state["twin.stage_errors"], state["twin.drift"])
        return np.array([stage["x"], stage["y"]]) + offset + np.array(state[shift])

    # --- stage, screen -----------------------------------------------------------------------
    def move_stage(self, target: Any, relative: bool = False, safe: bool = False) -> dict[str, Any]:
        return self.stage.move(target, relative, safe)

    def screen_current(self) -> float:
        """What the screen's electrometer reads (A): the beam current when the beam reaches it."""
        state = self.settings.snapshot()
        on = not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]
        return self.beam_current(state) if on and state["detectors.screen_inserted"] else 0.0

    # --- camera --------------------------------------------------------------------------------
    def acquire_camera_image(self, camera: Any, size: Any, exposure_time: Any) -> dict[str, Any]:
        """A camera frame: ``{"data": uint16 [y, x], "metadata": {...}}``."""
        names = [c.name for c in self.hardware.cameras]
        cam = self.hardware.camera(validation.one_of("camera", camera, names))
        size = validation.integer("size", size, min(cam.sizes), cam.pixels)
        validation.one_of("size", size, cam.sizes)
        exposure = validation.positive("exposure_time", exposure_time, 0.0, 100.0, "s")
        state = self.settings.snapshot()
        if not state[f"detectors.{cam.name}.inserted"]:
            raise RuntimeError(f"camera {cam.name} is retracted; insert() it first")
        if state["optics.optical_mode"] != "Tem" or state["optics.projector_mode"] != "Imaging":
            raise RuntimeError(
                "camera images need optics.optical_mode 'Tem' and projector_mode 'Imaging' here; "
                f"they are {state['optics.optical_mode']!r} and {state['optics.projector_mode']!r}"
            )
        stage = self.stage.position()
        nominal = state["optics.magnification"]
        fov = cam.width / (nominal * self.hardware.post_magnification)
        centre = self.view_centre(state, stage, "optics.image_shift")
        tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
        view = self.hrtem.view(  # may refuse: nothing has changed yet
            (centre[0], centre[1]), fov, size, state["source.acceleration_voltage"], self.aberrations(state),
            tilt, cam.sizes, f"magnification {nominal:g}",
        )
        window = view.window
        beam_on = self.beam_reaches(state, cam.name)

        started = datetime.now(timezone.utc)
        with self._acquire_lock:
            frame_index = self._frames
            self._frames += 1
            pixel = fov / size
            if beam_on:
                electrons = self._dose_per_area(state, exposure, fov) * pixel**2
                illuminated = self._illumination(window, size, state, centre)
                expected = self.hrtem.intensity(view) * illuminated * electrons
            else:
                expected = np.zeros((size, size))
            rng = np.random.default_rng([self.seed, _STREAM_CAMERA, frame_index])
            mtf = camera_mtf(size, cam.pixels // size, cam.mtf_half)
            data = camera_counts(shot_noise(expected, rng), mtf, cam.counts_per_electron, cam.read_noise, rng)
            self.clock.advance(exposure)
        finished = datetime.now(timezone.utc)
        metadata = self._metadata(state, stage, frame_index, started, finished, view.method) | {
            "binary_result": {
                "pixel_size": {"x": pixel, "y": pixel},
                "image_size": {"x": size, "y": size},
                "detector": cam.name,
                "bit_depth": 16,
                "counts_per_electron": cam.counts_per_electron,
            },
        }
        metadata["acquisition"]["exposure_time"] = exposure
        metadata["optics"] |= {"magnification": nominal, "field_of_view": fov,
                               "dose_per_area": self._dose_per_area(state, exposure, fov) if beam_on else 0.0}
        metadata["twin"] |= {
            "window": window.as_dict(),
            "padding": view.grid.padding if view.grid else 0.0,
            "oversampling": view.grid.oversampling if view.grid else 1,
            "beam_reaches_camera": beam_on,
        }
        return {"data": data, "metadata": metadata}

    def _beam_diameter(self, fov: float) -> float:
        """The condenser spreads the beam just over the camera's field of view."""
        return max(self.hardware.min_beam_diameter, np.sqrt(2.0) * fov)

    def _dose_per_area(self, state: dict[str, Any], exposure: float, fov: float) -> float:
        """Electrons per m² in ``exposure`` s inside the illuminated disk."""
        area = np.pi * self._beam_diameter(fov) ** 2 / 4.0
        return self.beam_current(state) * exposure / constants.e / area

    def _illumination(self, window: Window, size: int, state: dict[str, Any], axis: np.ndarray) -> np.ndarray:
        """1 inside the illuminated disk (centred on the beam-shifted axis), 0 outside, per pixel."""
        pixel = window.width / size
        x = window.x_min + (np.arange(size) + 0.5) * pixel
        y = window.y_min + (np.arange(size) + 0.5) * pixel
        beam = axis - np.array(state["optics.image_shift"]) + np.array(state["optics.beam_shift"])
        radius = self._beam_diameter(window.width) / 2
        return ((x[None, :] - beam[0]) ** 2 + (y[:, None] - beam[1]) ** 2 <= radius**2).astype(np.float64)

    def _metadata(self, state: dict[str, Any], stage: dict[str, Any], frame_index: int,
                  started: datetime, finished: datetime, method: str) -> dict[str, Any]:
        aberrations = self.aberrations(state)
        energy = state["source.acceleration_voltage"]
        coherence = self.hardware.coherence(energy)
        return {
            "acquisition": {
                "acquisition_id": f"{self.seed}-{frame_index}",
                "acquisition_start_date_time": started.isoformat(),
                "acquisition_date_time": finished.isoformat(),
                "frame_index": frame_index,
            },
            "optics": {
                "optical_mode": state["optics.optical_mode"],
                "projector_mode": state["optics.projector_mode"],
                "defocus": state["optics.focus"] - self._defocus_reference,
                "focus": state["optics.focus"],
                "acceleration_voltage": energy,
                "spot_size_index": state["optics.spot_size_index"],
                "beam_current": self.beam_current(state),
                "objective_stigmator": {"x": state["optics.objective_stigmator"][0],
                                        "y": state["optics.objective_stigmator"][1]},
                "beam_shift": dict(zip("xy", state["optics.beam_shift"], strict=True)),
                "image_shift": dict(zip("xy", state["optics.image_shift"], strict=True)),
                "spherical_aberration": self.hardware.spherical_aberration,
                "focal_spread": coherence.focal_spread,
                "illumination_semiangle": coherence.angular_spread,
                "beam_blanked": state["optics.beam_blanked"],
            },
            "stage_settings": {"stage_position": stage},
            "vacuum": {"column_valves_open": state["vacuum.column_valves_open"]},
            "twin": {
                "pixel_origin": "centre",
                "row_axis": "y",
                "sample": self.sample.name,
                "sample_version": self.sample.version,
                "seed": self.seed,
                "simulation": method,
                "instrument_time": self.clock.now(),
                "aberrations": {"C10": aberrations.C10, "C12": aberrations.C12, "phi12": aberrations.phi12,
                                "C30": aberrations.C30},
            },
        }

    # --- start-up ------------------------------------------------------------------------------
    def warm_up(self, sizes: tuple[int, ...] = (1024,)) -> None:
        """Run the physics once per image size (numba JIT, FFT plans) away from the current view."""
        state = self.settings.snapshot()
        fov = self.field_of_view(state["optics.magnification"])
        stage = self.stage.position()
        away = (stage["x"] + 10 * fov, stage["y"])
        with self._acquire_lock:
            for size in sizes:
                energy = state["source.acceleration_voltage"]
                self.hrtem.intensity(self.hrtem.view(away, fov, size, energy, self.aberrations(state)))

    def describe(self) -> dict[str, Any]:
        """Everything a client needs to present the instrument."""
        return {
            "settings": self.settings.describe(),
            "stage_axes": list(self.stage.axes),
            "stage_limits": {a: self.stage.limits(a) for a in self.stage.axes},
            "holder_type": self.hardware.holder,
            "cameras": [{"name": c.name, "pixels": c.pixels, "pitch": c.pitch, "sizes": list(c.sizes),
                         "retractable": c.retractable} for c in self.hardware.cameras],
            "scanning_detectors": [{"name": d.name, "inner": d.inner, "outer": d.outer,
                                    "retractable": d.retractable} for d in self.hardware.scanning_detectors],
            "magnifications": [
                {"nominal": m, "calibrated": m * self.hardware.post_magnification,
                 "field_of_view": self.field_of_view(m)}
                for m in NOMINAL_MAGNIFICATIONS
            ],
            "camera_lengths": list(CAMERA_LENGTHS),
            "system": {"name": "Digital twin TEM/STEM", "version": __version__,
                       "serial_number": f"TWIN-{self.seed}"},
        }
