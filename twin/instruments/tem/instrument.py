"""The TEM/STEM: optics, source, stage, detectors and vacuum around one shared sample.

Settings live in one declared :class:`Settings`; the instrument adds the rules that tie them
together (STEM-only and TEM-only settings, defocus relative to a reference, stigmators adding to the
column's own astigmatism) and the acquisitions, which snapshot the state and hand it to physics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

import numpy as np
from scipy import constants, ndimage

from twin import __version__, validation
from twin.instruments.clock import Clock
from twin.instruments.parameters import Choice, Flag, Integer, Real, Settings, Vector
from twin.instruments.tem import apertures, autofunctions
from twin.instruments.tem.hardware import CAMERA_LENGTHS, NOMINAL_MAGNIFICATIONS, Camera, TemHardware
from twin.instruments.tem.imaging import DiffractionGeometry, HrtemSimulator, atoms_in_view
from twin.instruments.tem.metadata import Exposure, acquisition_metadata
from twin.instruments.tem.scanning import MODES, SHORTEST_DWELL, Scan, StemSimulator, scan_region
from twin.instruments.tem.spectroscopy import EdsSpectrometer
from twin.instruments.tem.stage import Stage
from twin.instruments.usage import Usage
from twin.instruments.work import Cost, Job, Limits, duration, fft_seconds_per_unit, fft_units
from twin.physics import stem as stem_physics
from twin.physics.ctf import Aberrations, electron_wavelength
from twin.physics.damage import displaced, displaced_in_area, largest_cross_section, sampled_knock_ons
from twin.physics.detectors import UINT16_MAX, camera_counts, counting_counts, psf_sigma, shot_noise
from twin.physics.tem import SimulationGrid
from twin.sample import Sample, Window
from twin.sample.coarse import BYTES_PER_POINT
from twin.sample.frames import FramedSample, InstrumentFrame
from twin.validation import brief

State = dict[str, Any]  # a snapshot of settings, or of the stage


class ScanRecorder(Protocol):
    """Something recording along a STEM scan besides the scanning detectors (a spectrometer)."""

    name: str

    def __call__(self, scan: Scan, state: State, stage: State, offset: np.ndarray, dwell_time: float,
                 frame_index: int, beam_on: bool) -> Any: ...


STEM_ONLY = ("optics.scan_field_of_view", "optics.scan_rotation", "optics.paused_scan_beam_position")
TEM_ONLY = ("optics.magnification",)
SERIAL_NUMBER = "TWIN-0001"  # the same on every twin: nothing about an episode can be read from it
_STREAM_CAMERA = 0x43414D  # random stream tag for camera noise
_STREAM_DAMAGE = 0x444D47  # random stream tag for knock-on damage
_STREAM_PARKED = 0x50524B  # random stream tag for knock-ons under the parked probe between acquisitions
_NEGLIGIBLE_DISPLACEMENTS = 1e-9  # per atom: below this an exposure damages nothing
_MOST_SAMPLED_HITS = 100_000  # knock-ons one low-magnification exposure may record
_LONGEST_FRAME = 600.0  # s: the longest STEM frame a scan may take
GUN_LENS_SCALE = 50.0  # monochromator focus units per e-fold of beam current
FLASH_SECONDS = 5.0  # s of instrument time a gun flash takes
READOUT_AREAS = {"Full": 1, "Half": 2, "Quarter": 4}  # the camera's fixed readout areas: sensor width over it
_AUTO_FUNCTION_SETTINGS = ("optics.focus", "optics.objective_stigmator", "optics.beam_tilt",
                           "optics.beam_blanked")  # what an auto function may change


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


@dataclass(frozen=True)
class CameraPlan:
    """What a camera exposure will record: the expected electrons per pixel for a dose (e/m²), the
    illuminated disk, and what to say about it in the metadata."""

    electrons: Callable[[float], np.ndarray]
    beam_centre: np.ndarray
    beam_diameter: float
    method: str
    pixel_size: float
    pixel_unit: str
    optics: dict[str, Any]
    twin: dict[str, Any]
    cost: Cost = Cost(0.0, 0)


def moved_on_camera(pattern: np.ndarray, shift: tuple[float, float]) -> np.ndarray:
    """``pattern`` (rows along y) moved by ``shift`` = (x, y) camera pixels; what leaves the camera is
    lost, nothing wraps around (bilinear for a fraction of a pixel)."""
    if shift == (0.0, 0.0):
        return pattern
    return ndimage.shift(pattern, (shift[1], shift[0]), order=1, mode="constant", cval=0.0)


def objective_stop(pattern: np.ndarray, pixel_angle: float, cutoff: float | None) -> np.ndarray:
    """``pattern`` (direct beam on the centre pixel) with every pixel beyond the objective aperture's
    ``cutoff`` angle (rad) dark; unchanged without an aperture."""
    if cutoff is None:
        return pattern
    rows, columns = np.indices(pattern.shape)
    centre = pattern.shape[0] // 2
    return np.where(np.hypot(rows - centre, columns - centre) * pixel_angle <= cutoff, pattern, 0.0)


def _disk(window: Window, size: int, centre: np.ndarray, diameter: float) -> np.ndarray:
    """1 for the pixels of a ``size``² image of ``window`` inside the disk of ``diameter`` (m) around
    ``centre`` (m), 0 outside."""
    pixel = window.width / size
    x = window.x_min + (np.arange(size) + 0.5) * pixel
    y = window.y_min + (np.arange(size) + 0.5) * pixel
    inside = (x[None, :] - centre[0]) ** 2 + (y[:, None] - centre[1]) ** 2 <= diameter**2 / 4
    return inside.astype(np.float64)


def _multislice_cost(points: int, slices: int) -> Cost:
    """A multislice of one plane wave on a grid of ``points`` through ``slices`` slices, then a lens:
    two FFTs a slice and a few more, a potential slice and a few waves held at once."""
    return Cost((2 * slices + 6) * fft_units(points) * fft_seconds_per_unit(), (4 * slices + 80) * points)


def _inside(uv: tuple[np.ndarray, np.ndarray], corner: tuple[float, float], extent: tuple[float, float]):
    """Whether scan-frame points ``uv`` lie in the rectangle from ``corner`` spanning ``extent`` (m)."""
    (u, v), (u0, v0), (width, height) = uv, corner, extent
    return (u >= u0) & (u < u0 + width) & (v >= v0) & (v < v0 + height)


class TemInstrument:
    """State and acquisitions of the simulated TEM/STEM."""

    def __init__(self, sample: Sample, clock: Clock, seed: int, hardware: TemHardware | None = None,
                 frame: InstrumentFrame | None = None, reveal_frame: bool = True, usage: Usage | None = None):
        """``frame``: how this microscope's stage axes sit on the sample (hidden from image metadata
        unless ``reveal_frame``); ``usage``: where acquisitions charge their electrons (a budget)."""
        self.sample = FramedSample(sample, frame or InstrumentFrame(), reveal_frame)
        self.clock = clock
        self.seed = seed
        self.hardware = hardware or TemHardware()
        self.settings = _settings(self.hardware)
        self.stage = Stage(self.hardware, clock, seed)
        self.hrtem = HrtemSimulator(self.sample, self.hardware)
        self.stem = StemSimulator(self.sample, self.hardware, self.hrtem)
        self.eds = EdsSpectrometer(self)
        self._defocus_reference = 0.0
        self._flashed_at = clock.now()  # the gun was flashed as the twin started
        self._parked_since = clock.now()  # the parked probe's dose is settled up to this time
        self._parked_doses = 0
        self._focus_lock = threading.Lock()  # focus and its defocus reference change together
        self._acquire_lock = threading.Lock()
        self._job: Job | None = None
        self._frames = 0
        self.usage = usage or Usage()
        self.limits = Limits()  # ``twin serve`` gives every instance the server's one

    def restarted(self, sample: Sample, clock: Clock) -> TemInstrument:
        """This microscope as it was switched on, over ``sample`` and on ``clock``: the same hardware,
        frame, budget and limits. Over the same sample it keeps the simulators and the images they
        cached (they depend on the sample, the window and the optics, never on this state)."""
        fresh = TemInstrument(sample, clock, self.seed, self.hardware, self.sample.frame,
                              self.sample.revealed, self.usage)
        fresh.limits = self.limits
        if sample is self.sample.sample:
            fresh.sample, fresh.hrtem, fresh.stem = self.sample, self.hrtem, self.stem
        else:
            fresh.hrtem.exit_waves.max_bytes = self.hrtem.exit_waves.max_bytes  # a shared server's share
            fresh.hrtem.kernels.max_bytes = self.hrtem.kernels.max_bytes
        return fresh

    @contextlib.contextmanager
    def _working(self, task: str, cost: Cost) -> Iterator[Job]:
        """An acquisition: one at a time on this microscope (a second waits up to the limits'
        ``wait_seconds`` and is then refused, naming what runs), its memory held from the server's
        budget, its progress visible to :meth:`progress`."""
        if not self._acquire_lock.acquire(timeout=self.limits.wait_seconds):
            running = self._job
            doing = (f"{running.task}, about {duration(running.report()['seconds_left'])} left"
                     if running is not None else "another acquisition")
            raise RuntimeError(f"the microscope is busy with {doing}; try again when it is done")
        try:
            self._settle_parked_beam()
            with self.limits.held(cost):
                self._job = Job(task, cost)
                try:
                    yield self._job
                finally:
                    self._job = None
        finally:
            self._parked_since = self.clock.now()  # the acquisition counted its own electrons
            self._acquire_lock.release()

    @contextlib.contextmanager
    def _exposure(self, task: str, cost: Cost, beam_on_specimen: bool, electrons: float,
                  seconds: float) -> Iterator[Exposure]:
        """The sequence every acquisition follows: charge the budget ``electrons`` (when the beam is
        on the specimen), hold the microscope (:meth:`_working`) and give the frame its index; once the
        body has recorded it, count the frame and pass ``seconds`` of instrument time. A body that
        raises leaves the frame uncounted and the clock where it was."""
        if beam_on_specimen:
            self.usage.charge(electrons=electrons)
        started = datetime.now(timezone.utc)
        with self._working(task, cost) as job:
            exposure = Exposure(self._frames, job, started)  # counted only once the frame exists
            yield exposure
            self._frames += 1
            self.clock.advance(seconds)
        exposure.finished = datetime.now(timezone.utc)

    def settle_parked_beam(self) -> int:
        """Deposit the electrons a parked, unblanked STEM probe gave the specimen since the last
        command (with a running clock, ``--time-scale`` > 0, a probe held still writes into the sample
        as on the instrument). Returns the atoms knocked out. An acquisition running now accounts for
        its own electrons; nothing happens then."""
        if not self._acquire_lock.acquire(blocking=False):
            return 0
        try:
            return self._settle_parked_beam()
        finally:
            self._acquire_lock.release()

    def _settle_parked_beam(self) -> int:
        now = self.clock.now()
        elapsed, self._parked_since = now - self._parked_since, now
        state = self.snapshot()
        if elapsed <= 0 or state["optics.optical_mode"] != "Stem" or not self._beam_on_specimen(state):
            return 0
        if self.stage.is_moving:  # jogging: the probe sweeps over the specimen, its dose spread thin
            return 0
        stage, offset = self.stage_reading(state)
        atoms, density = self.eds.under_probe(state, stage, self.parked_probe(state, stage, offset))
        electrons = self.beam_current(state) * elapsed / constants.e
        self._parked_doses += 1
        rng = np.random.default_rng([self.seed, _STREAM_PARKED, self._parked_doses])
        hit = displaced(atoms.numbers, electrons * density, state["source.acceleration_voltage"],
                        self.sample.crystal.name, rng)
        return self.sample.remove_atoms(atoms[hit])

    def progress(self) -> dict[str, Any] | None:
        """The acquisition running now (task, fraction done, seconds so far and left), or None."""
        job = self._job
        return None if job is None else job.report()

    @property
    def frames_taken(self) -> int:
        """Camera frames and STEM scans acquired so far."""
        return self._frames

    # --- settings --------------------------------------------------------------------------------
    def get(self, name: Any) -> Any:
        """A setting's value. Reads are harmless in either optical mode (a STEM-only setting reads what
        it was last set to); setting one in the other mode is refused (:meth:`set`)."""
        if name == "optics.defocus":
            with self._focus_lock:
                return self.settings.get("optics.focus") - self._defocus_reference
        return self.settings.get(name)

    def set(self, name: Any, value: Any) -> Any:
        self.settle_parked_beam()  # what the probe gave where it was, before anything moves it
        if name == "optics.defocus":
            lo, hi = self.settings.parameter("optics.focus").lo, self.settings.parameter("optics.focus").hi
            with self._focus_lock:
                reference = self._defocus_reference
                defocus = validation.real("optics.defocus", value, lo - reference, hi - reference, "m")
                self.settings.set("optics.focus", reference + defocus)
            return defocus
        self._check_mode(name)
        if isinstance(name, str) and name.startswith("detectors.") and name.endswith(".inserted"):
            self._check_retractable(name.split(".")[1], value)
        also: dict[str, Any] = {}
        if isinstance(name, str) and name.startswith("apertures.") and name in self.settings.names():
            also = apertures.check(self.settings.snapshot(), self.hardware, name, value)
        if name == "optics.convergence_angle":
            widest = apertures.largest_convergence(self.settings.snapshot(), self.hardware)
            parameter = self.settings.parameter(name)
            angle = validation.real(name, value, parameter.lo, parameter.hi, "rad")
            if angle > widest:
                raise ValueError(f"{name} = {angle!r} rad: the C2 aperture in the beam allows at most "
                                 f"{widest:.4g} rad; select a larger one")
        result = self.settings.set(name, value)
        for other, changed in also.items():
            self.settings.set(other, changed)
        return result

    @property
    def defocus_reference(self) -> float:
        """The focus (m) that reads as zero defocus (:meth:`reset_defocus`)."""
        return self._defocus_reference

    def reset_defocus(self) -> None:
        """Make the current focus read as zero defocus (the focus itself does not change)."""
        with self._focus_lock:
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
        units = {u.name: u for u in (*self.hardware.cameras, *self.hardware.scanning_detectors,
                                     *self.hardware.eds_detectors)}
        unit = units[validation.one_of("detector", detector, list(units))]
        if not unit.retractable and not validation.flag(f"detectors.{detector}.inserted", value):
            raise RuntimeError(f"detector {detector} is not retractable")

    # --- derived optics ----------------------------------------------------------------------
    def aberrations(self, state: State, stage: State | None = None) -> Aberrations:
        """The objective's aberrations: focus, stigmator plus the column's own astigmatism, Cs. The
        specimen's height counts as defocus: raising it by dz (stage z, toward the lens) underfocuses by
        dz (``stage``: the reading to use; the stage now by default)."""
        height = (stage if stage is not None else self.stage.position())["z"] or 0.0
        intrinsic = np.array(state["twin.objective_astigmatism"])
        a = intrinsic + self.hardware.stigmator_strength * np.array(state["optics.objective_stigmator"])
        return Aberrations(
            C10=state["optics.focus"] - state["twin.focus_offset"] - height,
            C12=float(np.hypot(*a)),
            phi12=float(np.arctan2(a[1], a[0]) / 2),
            C30=self.hardware.spherical_aberration,
        )

    def beam_current(self, state: State) -> float:
        """The beam current (A): the spot size's nominal one times the gun's emission (falling since
        the last flash, see :meth:`emission`), scaled by the gun lens (``optics.monochromator_focus`` f:
        a factor exp(-f / 50), smooth and monotonic, as operators calibrate it against the screen
        current) and by the C2 aperture's area."""
        gun_lens = np.exp(-state["optics.monochromator_focus"] / GUN_LENS_SCALE)
        emission = state.get("gun.emission", self.emission())
        return (self.hardware.beam_current(state["optics.spot_size_index"]) * state["twin.emission"]
                * emission * gun_lens * apertures.current_factor(state, self.hardware))

    def snapshot(self) -> State:
        """The settings at this moment, with the gun's emission then (an acquisition's beam current)."""
        return {**self.settings.snapshot(), "gun.emission": self.emission()}

    def emission(self) -> float:
        """The cold field-emission gun's emission relative to just after a flash: it falls as
        ``exp(-t / lifetime)`` with the instrument time since (adsorbed gas on the tip)."""
        return float(np.exp(-(self.clock.now() - self._flashed_at) / self.hardware.emission_lifetime))

    def is_flashing_advised(self) -> bool:
        return self.clock.now() - self._flashed_at > self.hardware.flash_advised_after

    def flash(self) -> None:
        """Flash the gun's tip: the emission is back to its full value (the beam is off for a few
        seconds of instrument time)."""
        with self._acquire_lock:
            self._settle_parked_beam()
            self.clock.advance(FLASH_SECONDS)
            self._flashed_at = self._parked_since = self.clock.now()  # no beam while it flashes

    def beam_reaches(self, state: State, detector: str) -> bool:
        """Whether electrons arrive at ``detector``: beam unblanked, valves open, screen out, inserted."""
        return (not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]
                and not state["detectors.screen_inserted"] and state[f"detectors.{detector}.inserted"])

    def field_of_view(self, magnification: float | None = None) -> float:
        """Side (m) of the square area the Ceta camera sees at ``magnification`` (default: current)."""
        nominal = magnification if magnification is not None else self.settings.get("optics.magnification")
        return self.hardware.camera("BM-Ceta").width / (nominal * self.hardware.post_magnification)

    def stage_reading(self, state: State) -> tuple[State, np.ndarray]:
        """The stage's encoders and the specimen offset (as the settings ``state`` has errors and drift)
        at one moment (see :meth:`Stage.reading`)."""
        return self.stage.reading(state["twin.stage_errors"], state["twin.drift"])

    @staticmethod
    def view_centre(state: State, stage: State, offset: np.ndarray, shift: str) -> np.ndarray:
        """The sample point (m) on the optical axis with the stage at ``stage`` and the specimen
        ``offset`` from it, moved by the ``shift`` deflector."""
        return np.array([stage["x"], stage["y"]]) + offset + np.array(state[shift])

    # --- stage, screen -----------------------------------------------------------------------
    def move_stage(self, target: Any, relative: bool = False, safe: bool = False) -> dict[str, Any]:
        """Move the stage; the probe sweeps over the specimen meanwhile (its dose spread thin, not
        counted)."""
        self.settle_parked_beam()
        moved = self.stage.move(target, relative, safe)
        self._parked_since = self.clock.now()
        return moved

    def screen_current(self) -> float:
        """What the screen's electrometer reads (A): the beam current when the beam reaches it."""
        state = self.snapshot()
        on = not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]
        return self.beam_current(state) if on and state["detectors.screen_inserted"] else 0.0

    # --- camera --------------------------------------------------------------------------------
    def acquire_camera_image(self, camera: Any, size: Any, exposure_time: Any,
                             readout_area: Any = "Full") -> dict[str, Any]:
        """A camera frame: ``{"data": uint16 [y, x], "metadata": {...}}`` of the image, in diffraction
        mode of the far field of the illuminated area, in STEM mode of the parked probe's convergent-beam
        pattern. ``readout_area``: the whole sensor ("Full") or its central "Half" or "Quarter" (a
        smaller field at the same pixel pitch)."""
        names = [c.name for c in self.hardware.cameras]
        cam = self.hardware.camera(validation.one_of("camera", camera, names))
        area = validation.one_of("readout_area", readout_area, tuple(READOUT_AREAS))
        cam = dataclasses.replace(cam, pixels=cam.pixels // READOUT_AREAS[area])
        size = validation.integer("size", size, min(cam.sizes), cam.pixels)
        validation.one_of("size", size, cam.sizes)
        exposure = validation.real("exposure_time", exposure_time, *cam.exposure_limits, "s")
        state = self.snapshot()
        if not state[f"detectors.{cam.name}.inserted"]:
            raise RuntimeError(f"camera {cam.name} is retracted; insert() it first")
        stage, offset = self.stage_reading(state)  # one reading: what the image shows is what it reports
        if state["optics.optical_mode"] == "Stem":
            plan = self._convergent_beam_plan(state, stage, offset, cam, size)
        elif state["optics.projector_mode"] == "Imaging":
            plan = self._imaging_plan(state, stage, offset, cam, size)  # may refuse: nothing has changed yet
        else:
            plan = self._diffraction_plan(state, stage, offset, cam, size)
        kind = {"m": "image", "1/m": "diffraction pattern"}[plan.pixel_unit]
        kind = f"convergent-beam {kind}" if "probe_position" in plan.twin else kind
        task = f"a {size} x {size} {cam.name} {kind}"
        self.limits.check(task, plan.cost, "use a smaller size or a lower magnification")
        beam_on = self.beam_reaches(state, cam.name)
        dose = self._dose_per_area(state, exposure, plan.beam_diameter)
        electrons = self.beam_current(state) * exposure / constants.e
        with self._exposure(task, plan.cost, self._beam_on_specimen(state), electrons, exposure) as taken:
            expected = plan.electrons(dose) if beam_on else np.zeros((size, size))
            rng = np.random.default_rng([self.seed, _STREAM_CAMERA, taken.frame_index])
            data = self._record(cam, expected, exposure, cam.pixels // size, rng)
            knocked_out = self._irradiate_disk(state, plan, dose, taken.frame_index)
        metadata = self._metadata(state, stage, taken, plan.method)
        metadata["binary_result"] = {
            "pixel_size": {"x": plan.pixel_size, "y": plan.pixel_size},
            "pixel_size_unit": plan.pixel_unit,
            "image_size": {"x": size, "y": size},
            "detector": cam.name,
            "bit_depth": 16,
            "counts_per_electron": cam.counts_per_electron,
            "offset": cam.offset,  # a dark pixel: electrons = (counts - offset) / counts_per_electron
            "read_noise": cam.read_noise,
            "camera_type": cam.kind,
            "readout_area": area,
        }
        metadata["acquisition"]["exposure_time"] = exposure
        metadata["optics"] |= plan.optics | {"dose_per_area": dose if beam_on else 0.0}
        metadata["twin"] |= plan.twin | {"beam_reaches_camera": beam_on, "atoms_knocked_out": knocked_out,
                                         "specimen_offset": offset.tolist()}
        return {"data": data, "metadata": metadata}

    @staticmethod
    def _record(cam: Camera, expected: np.ndarray, exposure: float, binning: int,
                rng: np.random.Generator) -> np.ndarray:
        """The frame ``cam`` records (uint16 counts) of ``expected`` electrons per read-out pixel."""
        if cam.counting:
            return counting_counts(expected, exposure, binning, cam.counts_per_electron, cam.dead_time, rng)
        electrons = shot_noise(expected, rng)
        return camera_counts(electrons, psf_sigma(cam.psf_sigma, binning), cam.counts_per_electron,
                             cam.read_noise, rng, gain_variance=cam.gain_variance,
                             tail=psf_sigma(cam.psf_tail, binning), tail_fraction=cam.psf_tail_fraction,
                             offset=cam.offset)

    def _imaging_plan(self, state: State, stage: State, offset: np.ndarray, cam: Camera,
                      size: int) -> CameraPlan:
        nominal = state["optics.magnification"]
        fov = cam.width / (nominal * self.hardware.post_magnification)
        centre = self.view_centre(state, stage, offset, "optics.image_shift")
        view = self.hrtem.view(
            (centre[0], centre[1]), fov, size, state["source.acceleration_voltage"],
            self.aberrations(state, stage),
            (stage["a"] or 0.0, stage["b"] or 0.0), cam.sizes, f"magnification {nominal:g}",
            tuple(state["optics.beam_tilt"]), apertures.objective_cutoff(state, self.hardware),
        )
        beam = centre - np.array(state["optics.image_shift"]) + np.array(state["optics.beam_shift"])
        pixel = fov / size

        selected = apertures.selected_area(state, self.hardware)

        def electrons(dose: float) -> np.ndarray:
            illuminated = self._illumination(state, view.window, size, beam)
            if selected is not None:  # the SA aperture sits in an image plane: dark outside its disk
                illuminated = illuminated * _disk(view.window, size, centre, selected)
            return self.hrtem.intensity(view) * illuminated * dose * pixel**2

        return CameraPlan(
            electrons=electrons, beam_centre=beam, beam_diameter=self._beam_diameter(state, fov),
            method=view.method,
            pixel_size=pixel, pixel_unit="m",
            optics={"magnification": nominal, "field_of_view": fov},
            twin={"window": view.window.as_dict(), "padding": view.grid.padding,
                  "oversampling": view.grid.oversampling},
            cost=(Cost(_multislice_cost(view.grid.n**2, 1).seconds, BYTES_PER_POINT * view.grid.n**2)
                  if view.continuum else _multislice_cost(view.grid.n**2, self.stem.slices())),
        )

    def _diffraction_plan(self, state: State, stage: State, offset: np.ndarray, cam: Camera,
                          size: int) -> CameraPlan:
        """Selected-area diffraction: the far field of the illuminated area on the camera."""
        camera_length = state["optics.camera_length"]
        pixel_angle = cam.pitch * (cam.pixels // size) / camera_length
        energy = state["source.acceleration_voltage"]
        centre = self.view_centre(state, stage, offset, "optics.beam_shift")
        diameter = self._beam_diameter(state, self.field_of_view(state["optics.magnification"]))
        tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
        selected = apertures.selected_area(state, self.hardware)
        geometry = self.hrtem.diffraction_geometry(size, pixel_angle, energy, selected)
        shift = self._pattern_shift(state, pixel_angle)
        cutoff = apertures.objective_cutoff(state, self.hardware)
        through = 1.0 if selected is None else min(1.0, (selected / diameter) ** 2)  # of the disk's electrons

        def electrons(dose: float) -> np.ndarray:
            pattern, _ = self.hrtem.diffraction_pattern(tuple(centre), size, pixel_angle, energy, tilt,
                                                        selected)
            pattern = moved_on_camera(objective_stop(pattern, pixel_angle, cutoff), shift)
            return pattern * dose * through * np.pi * diameter**2 / 4  # the electrons through the SA disk

        return CameraPlan(
            electrons=electrons, beam_centre=centre, beam_diameter=diameter, method="multislice",
            pixel_size=pixel_angle / electron_wavelength(energy), pixel_unit="1/m",
            optics={"camera_length": camera_length, "pixel_angle": pixel_angle},
            twin={"diffracting_area_centre": {"x": centre[0], "y": centre[1]},
                  "selected_area_width": geometry.area_points * geometry.sampling},
            cost=_multislice_cost(geometry.points**2, self.stem.slices()),
        )

    @staticmethod
    def _pattern_shift(state: State, pixel_angle: float) -> tuple[float, float]:
        """How far (camera pixels, x and y) the beam tilt and the diffraction shift (image tilt) move a
        pattern: by their angles over the camera's pixel angle."""
        x, y = np.add(state["optics.beam_tilt"], state["optics.image_tilt"]) / pixel_angle
        return float(x), float(y)

    def parked_probe(self, state: State, stage: State, offset: np.ndarray) -> np.ndarray:
        """Where the parked probe sits (m, sample frame): ``optics.paused_scan_beam_position`` as fractions
        of the scan field (x to the right, y down from the top, as on the image), turned by the scan
        rotation, around the scan's centre (the beam shift moves it)."""
        centre = self.view_centre(state, stage, offset, "optics.beam_shift")
        fov, (px, py) = state["optics.scan_field_of_view"], state["optics.paused_scan_beam_position"]
        scan = Scan((float(centre[0]), float(centre[1])), fov, state["optics.scan_rotation"], 16)
        x, y = scan.to_sample(np.array((px - 0.5) * fov), np.array((0.5 - py) * fov))
        return np.array([float(x), float(y)])

    def _convergent_beam_plan(self, state: State, stage: State, offset: np.ndarray, cam: Camera,
                              size: int) -> CameraPlan:
        """STEM with a camera: the probe parked (:meth:`parked_probe`), its convergent-beam pattern
        through the sample on the camera at the camera length (abTEM multislice of the probe)."""
        camera_length = state["optics.camera_length"]
        pixel_angle = cam.pitch * (cam.pixels // size) / camera_length
        energy, alpha = state["source.acceleration_voltage"], state["optics.convergence_angle"]
        aberrations = self.aberrations(state, stage)
        probe = self.parked_probe(state, stage, offset)
        reach = stem_physics.probe_reach(energy, alpha, aberrations)
        cell = 2 * reach + 2e-9  # m: the probe and its tails, periodic
        planned = DiffractionGeometry.plan(size, pixel_angle, electron_wavelength(energy), cell, cell)
        geometry = DiffractionGeometry(size, planned.binning, planned.points, planned.points,
                                       planned.sampling)
        side = geometry.points * geometry.sampling
        grid = SimulationGrid(size=geometry.points, pad=0, sampling=geometry.sampling)
        window = Window.around(probe[0], probe[1], side, side)
        tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
        shift = self._pattern_shift(state, pixel_angle)
        cutoff = apertures.objective_cutoff(state, self.hardware)

        def electrons(dose: float) -> np.ndarray:
            atoms = atoms_in_view(self.sample, window, tilt)
            wave = stem_physics.convergent_beam_exit_wave(atoms, grid, energy, alpha, aberrations,
                                                          (side / 2, side / 2))
            pattern = moved_on_camera(objective_stop(geometry.pattern(wave), pixel_angle, cutoff), shift)
            return pattern * dose * np.pi * (2 * reach) ** 2 / 4  # every electron lands

        return CameraPlan(
            electrons=electrons, beam_centre=probe, beam_diameter=2 * reach, method="multislice",
            pixel_size=pixel_angle / electron_wavelength(energy), pixel_unit="1/m",
            optics={"camera_length": camera_length, "pixel_angle": pixel_angle, "convergence_angle": alpha},
            twin={"probe_position": {"x": probe[0], "y": probe[1]}, "simulated_area_width": side},
            cost=_multislice_cost(geometry.points**2, self.stem.slices()),
        )

    # --- STEM ------------------------------------------------------------------------------------
    def acquire_stem_images(
        self, detectors: Any, size: Any, dwell_time: Any, region: Any = None, mode: Any = None
    ) -> list[dict[str, Any]]:
        """One scan read out by every detector in ``detectors``: a list of
        ``{"data": uint16 [rows, columns], "metadata": {...}}`` in the order given."""
        return self.stem_scan(detectors, size, dwell_time, region, mode)[0]

    def _detector_list(self, detectors: Any, allow_empty: bool) -> list[Any]:
        names = [d.name for d in self.hardware.scanning_detectors]
        if isinstance(detectors, str):
            detectors = [detectors]
        if not isinstance(detectors, (list, tuple)) or not (detectors or allow_empty):
            raise TypeError(f"detectors must be a detector name or a list of them, got {brief(detectors)}; "
                            f"allowed: {', '.join(map(repr, names))}")
        return [self.hardware.detector(validation.one_of("detector", d, names)) for d in detectors]

    def stem_scan(
        self, detectors: Any, size: Any, dwell_time: Any, region: Any = None, mode: Any = None,
        during: ScanRecorder | None = None,
    ) -> tuple[list[dict[str, Any]], Any]:
        """One scan read out by every detector in ``detectors`` (perhaps none) and by ``during``, a
        recorder called once the signals exist and before the beam damages the sample (a spectrometer:
        it gets the scan, the settings, the stage reading and specimen offset, the dwell time, the frame
        index and whether the beam reaches the specimen). Returns the images and what ``during`` returned."""
        chosen = self._detector_list(detectors, allow_empty=during is not None)
        size = validation.integer("size", size, 16, 4096)
        dwell = validation.real("dwell_time", dwell_time, SHORTEST_DWELL, 1.0, "s")
        rectangle = scan_region(region)
        state = self.snapshot()
        mode = state["twin.stem_mode"] if mode is None else validation.one_of("mode", mode, MODES)
        if state["optics.optical_mode"] != "Stem":
            raise RuntimeError("STEM acquisitions need optics.optical_mode 'Stem'; it is 'Tem'")
        cutoff = apertures.objective_cutoff(state, self.hardware)
        if cutoff is not None:  # the objective aperture stops what scatters beyond it before the detectors
            chosen = [dataclasses.replace(d, inner=min(d.inner, cutoff), outer=min(d.outer, cutoff))
                      for d in chosen]
        for detector in chosen:
            if not state[f"detectors.{detector.name}.inserted"]:
                raise RuntimeError(f"detector {detector.name} is retracted; insert() it first")
        stage, offset = self.stage_reading(state)  # one reading: what the image shows is what it reports
        centre = self.view_centre(state, stage, offset, "optics.beam_shift")
        scan = Scan((float(centre[0]), float(centre[1])), state["optics.scan_field_of_view"],
                    state["optics.scan_rotation"], size, rectangle)
        rows, cols = scan.shape
        frame_time = rows * cols * dwell
        if frame_time > _LONGEST_FRAME:
            raise ValueError(
                f"dwell_time = {dwell!r} s over {rows} x {cols} pixels takes {frame_time:.4g} s per frame; "
                f"allowed at most {_LONGEST_FRAME:g} s (dwell_time <= {_LONGEST_FRAME / (rows * cols):.3g} s "
                "at this size)"
            )
        energy = state["source.acceleration_voltage"]
        beam_on = self._beam_on_specimen(state) and not state["detectors.screen_inserted"]
        tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
        aberrations = self.aberrations(state, stage)
        method = self.stem.method(scan, energy, state["optics.convergence_angle"], aberrations,
                                  chosen, mode, tilt)  # may refuse: nothing has changed yet
        cost = self.stem.cost(scan, energy, state["optics.convergence_angle"], aberrations,
                              chosen, method)
        article, names = "an" if method[0] in "aeiou" else "a", ", ".join(d.name for d in chosen)
        names = ", ".join(filter(None, (names, during and during.name)))
        task = f"{article} {method} STEM scan of {rows} x {cols} pixels with {names}"
        self.limits.check(task, cost, "use a smaller size, fewer detectors"
                          + (" or mode 'interactive'" if method in ("exact", "prism") else ""))
        charged = self.beam_current(state) * frame_time / constants.e
        with self._exposure(task, cost, self._beam_on_specimen(state), charged, frame_time) as taken:
            frame_index, job = taken.frame_index, taken.job
            if beam_on:
                signals = self.stem.signals(scan, energy, state["optics.convergence_angle"],
                                            aberrations, chosen, method, tilt, job.step)
                if state["twin.drift"]:
                    signals = {k: self._drifted(v, scan, frame_time) for k, v in signals.items()}
            else:
                signals = {d.name: np.zeros(scan.shape) for d in chosen}
            electrons = self.beam_current(state) * dwell / constants.e
            rng = np.random.default_rng([self.seed, _STREAM_CAMERA, frame_index])
            data = {}
            for detector in chosen:
                counts = shot_noise(signals[detector.name] * electrons, rng)
                noise = rng.standard_normal(counts.shape, dtype=np.float32)
                counts += noise * np.float32(detector.read_noise)
                data[detector.name] = np.clip(np.rint(counts), 0, UINT16_MAX).astype(np.uint16)
            recorded = None if during is None else during(scan, state, stage, offset, dwell, frame_index,
                                                          beam_on)
            knocked_out = 0
            if self._beam_on_specimen(state):
                corner = tuple(c[0] - scan.step / 2 for c in scan.scan_coordinates())
                extent = (cols * scan.step, rows * scan.step)
                knocked_out = self._irradiate(
                    scan.bounding_window(0.0), lambda x, y: _inside(scan.to_scan(x, y), corner, extent),
                    electrons / scan.step**2, energy, frame_index,
                )
        images = []
        for detector in chosen:
            metadata = self._metadata(state, stage, taken, method)
            metadata["binary_result"] = {
                "pixel_size": {"x": scan.step, "y": scan.step}, "pixel_size_unit": "m",
                "image_size": {"x": cols, "y": rows}, "detector": detector.name, "bit_depth": 16,
            }
            metadata["scan_settings"] = {"dwell_time": dwell, "scan_size": size, "frame_time": frame_time,
                                         "scan_rotation": scan.rotation, "field_of_view": scan.field_of_view,
                                         "region": dict(zip(("left", "top", "width", "height"), rectangle,
                                                            strict=True))}
            metadata["optics"] |= {"convergence_angle": state["optics.convergence_angle"],
                                   "collection_angles": {"inner": detector.inner, "outer": detector.outer},
                                   "electrons_per_pixel": electrons if beam_on else 0.0}
            metadata["twin"] |= {
                "window": scan.unrotated_window().as_dict(),
                "scan_rotation": scan.rotation, "scan_centre": {"x": scan.centre[0], "y": scan.centre[1]},
                "stem_mode": mode, "atoms_knocked_out": knocked_out, "beam_reaches_detector": beam_on,
                "specimen_offset": offset.tolist(),
            }
            images.append({"data": data[detector.name], "metadata": metadata})
        return images, recorded

    def _drifted(self, signal: np.ndarray, scan: Scan, frame_time: float) -> np.ndarray:
        """The signal as scanned line by line while the specimen drifts (rows in time order)."""
        rows = signal.shape[0]
        velocity = -self.stage.drift_velocity  # the view moves opposite to the specimen
        du, dv = scan.to_scan(scan.centre[0] + velocity[0], scan.centre[1] + velocity[1])  # per second
        t = (np.arange(rows) + 0.5) / rows * frame_time
        if max(abs(du), abs(dv)) * frame_time < 1e-3 * scan.step:
            return signal
        r, c = np.indices(signal.shape, dtype=float)
        r += (dv * t / scan.step)[:, None]
        c += (du * t / scan.step)[:, None]
        return ndimage.map_coordinates(signal, [r, c], order=1, mode="nearest")

    def _irradiate_disk(self, state: State, plan: CameraPlan, dose: float, frame_index: int) -> int:
        """Deposit ``dose`` (e/m²) over the illuminated disk of a camera exposure."""
        if not self._beam_on_specimen(state):
            return 0
        (cx, cy), diameter = plan.beam_centre, plan.beam_diameter
        return self._irradiate(
            Window.around(cx, cy, diameter, diameter),
            lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= diameter**2 / 4,
            dose, state["source.acceleration_voltage"], frame_index,
        )

    def _beam_on_specimen(self, state: State) -> bool:
        return not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]

    def _irradiate(self, area: Window, inside: Any, dose: float, energy: float, frame_index: int) -> int:
        """Knock atoms out of the shared sample: ``dose`` electrons per m² wherever ``inside(x, y)``
        holds within ``area`` (:mod:`twin.physics.damage`; every atom drawn, or over an area too large
        to list its atoms the collisions sampled). Returns how many atoms left; later images of either
        instrument lack them."""
        material = self.sample.crystal.name
        sigma = largest_cross_section(self.sample.species, material, energy)
        if sigma * dose < _NEGLIGIBLE_DISPLACEMENTS:
            return 0
        rng = np.random.default_rng([self.seed, _STREAM_DAMAGE, frame_index])
        if self.sample.atom_density() * area.width * area.height > self.hardware.damage_atom_limit:
            reach = self.sample.lattice_spacing

            def atoms_around(x: float, y: float) -> Any:
                return self.sample.atoms_in_window(Window.around(x, y, 2 * reach, 2 * reach))

            bounds = (area.x_min, area.y_min, area.x_max, area.y_max)
            hit = sampled_knock_ons(bounds, inside, dose, energy, material, sigma, self.sample.atom_density(),
                                    reach, atoms_around, rng, _MOST_SAMPLED_HITS)
            if hit is None:
                return 0
            hit.info["window"] = area.as_dict()
            return self.sample.remove_atoms(hit)
        atoms = self.sample.atoms_in_window(area)
        hit = displaced_in_area(atoms, (area.x_min, area.y_min), inside, dose, energy, material, rng)
        return self.sample.remove_atoms(atoms[hit])

    def _beam_diameter(self, state: State, fov: float) -> float:
        """The TEM beam's diameter (m): at the default ``optics.intensity`` the condenser spreads it just
        over the camera's field of view ``fov`` (never below ``min_beam_diameter``), following the
        magnification; the diameter grows in proportion to the intensity's distance from crossover,
        down to the crossover's own size."""
        hardware = self.hardware
        spread = abs(state["optics.intensity"] - hardware.crossover_intensity) / abs(
            hardware.default_intensity - hardware.crossover_intensity)
        return max(hardware.crossover_diameter, max(hardware.min_beam_diameter, np.sqrt(2.0) * fov) * spread)

    def _dose_per_area(self, state: State, exposure: float, beam_diameter: float) -> float:
        """Electrons per m² in ``exposure`` s inside an illuminated disk of ``beam_diameter`` (m)."""
        return self.beam_current(state) * exposure / constants.e / (np.pi * beam_diameter**2 / 4.0)

    def _illumination(self, state: State, window: Window, size: int, beam: np.ndarray) -> np.ndarray | float:
        """1 inside the illuminated disk centred on ``beam`` (m), 0 outside, per pixel (just 1 when the
        disk covers the whole window)."""
        radius = self._beam_diameter(state, window.width) / 2
        corners = np.array([[window.x_min, window.y_min], [window.x_max, window.y_max],
                            [window.x_min, window.y_max], [window.x_max, window.y_min]])
        if np.hypot(*(corners - beam).T).max() <= radius:
            return 1.0
        pixel = window.width / size
        x = window.x_min + (np.arange(size) + 0.5) * pixel
        y = window.y_min + (np.arange(size) + 0.5) * pixel
        return ((x[None, :] - beam[0]) ** 2 + (y[:, None] - beam[1]) ** 2 <= radius**2).astype(np.float64)

    def _metadata(self, state: State, stage: State, exposure: Exposure, method: str) -> dict[str, Any]:
        """The metadata every acquisition starts from (see :mod:`twin.instruments.tem.metadata`)."""
        return acquisition_metadata(self, state, stage, exposure, method)

    # --- auto functions ----------------------------------------------------------------------------
    def run_auto_function(self, name: Any, arguments: Any, reset_blanker: Any = False) -> dict[str, Any]:
        """Run one of the image-based auto functions with ``arguments`` (a mapping). The beam is
        unblanked while it works; ``reset_beam_blanker_afterwards`` puts the blanker back as it was."""
        routines = {"stem_auto_focus": autofunctions.stem_auto_focus,
                    "beam_tilt_auto_focus": autofunctions.beam_tilt_auto_focus,
                    "objective_auto_stigmator": autofunctions.objective_auto_stigmator}
        routine = routines[validation.one_of("auto function", name, list(routines))]
        if not isinstance(arguments, dict):
            raise TypeError(f"arguments must be a mapping of the settings, got {brief(arguments)}")
        allowed = [p for p in inspect.signature(routine).parameters if p != "tem"]
        for key in arguments:
            validation.one_of(f"{name} setting", key, allowed)
        reset = validation.flag("reset_beam_blanker_afterwards", reset_blanker)
        before = {name: self.settings.get(name) for name in _AUTO_FUNCTION_SETTINGS}
        self.settings.set("optics.beam_blanked", False)
        try:
            result = routine(self, **arguments)
        except BaseException:  # a refused or failed run leaves the optics as they were
            for name, value in before.items():
                self.settings.set(name, value)
            raise
        if reset:
            self.settings.set("optics.beam_blanked", before["optics.beam_blanked"])
        return result

    # --- start-up ------------------------------------------------------------------------------
    def share_caches(self, fraction: float) -> None:
        """Keep at most ``fraction`` (0-1] of the hardware's cache budgets: a server hosting many twins
        gives each a share of the memory one twin would use."""
        fraction = validation.real("fraction", fraction, 1e-3, 1.0)
        self.hrtem.exit_waves.max_bytes = int(self.hardware.cache_bytes * fraction)
        self.hrtem.kernels.max_bytes = int(self.hardware.kernel_cache_bytes * fraction)

    def warm_up(self, sizes: tuple[int, ...] = (1024,)) -> None:
        """Run the physics once per image size (numba JIT, FFT plans) away from the current view."""
        state = self.settings.snapshot()
        fov = self.field_of_view(state["optics.magnification"])
        stage = self.stage.position()
        away = (stage["x"] + 10 * fov, stage["y"])
        with self._working("warming up", Cost(0.0, 0)):
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
                         "retractable": c.retractable, "exposure_time_limits": list(c.exposure_limits)}
                        for c in self.hardware.cameras],
            "dwell_time_limits": [SHORTEST_DWELL, 1.0],
            "scanning_detectors": [{"name": d.name, "inner": d.inner, "outer": d.outer,
                                    "retractable": d.retractable} for d in self.hardware.scanning_detectors],
            "eds_detectors": [{"name": d.name, "retractable": d.retractable, "segments": d.segments,
                               "solid_angle": d.solid_angle, "bin_counts": list(d.bin_counts),
                               "dispersions": list(d.dispersions), "shaping_times": list(d.shaping_times),
                               "exposure_time_limits": list(d.exposure_limits)}
                              for d in self.hardware.eds_detectors],
            "magnifications": [
                {"nominal": m, "calibrated": m * self.hardware.post_magnification,
                 "field_of_view": self.field_of_view(m)}
                for m in NOMINAL_MAGNIFICATIONS
            ],
            "camera_lengths": list(CAMERA_LENGTHS),
            "aperture_mechanisms": [{"name": m.name, "retractable": m.retractable,
                                     "apertures": [{"name": n, "diameter": d} for n, d in m.apertures]}
                                    for m in self.hardware.aperture_mechanisms],
            "system": {"name": "Digital twin TEM/STEM", "version": __version__,
                       "serial_number": SERIAL_NUMBER},
        }
