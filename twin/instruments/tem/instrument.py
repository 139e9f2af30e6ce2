"""The TEM/STEM: optics, source, stage, detectors and vacuum around one shared sample.

The instrument holds the state: the settings (declared in :mod:`~twin.instruments.tem.settings` with
the rules that tie them together), the defocus reference, the gun's last flash, the frames taken and
the acquisition running. It derives the optics from them and runs each acquisition through one
sequence (:meth:`TemInstrument.acquisition`); what each acquisition records lives in its own module:
:mod:`~twin.instruments.tem.camera` (camera frames), :mod:`~twin.instruments.tem.stem_scan` (STEM
scans), :mod:`~twin.instruments.tem.spectroscopy` (EDS), with :mod:`~twin.instruments.tem.irradiation`
for the damage they do and :mod:`~twin.instruments.tem.metadata` for what they report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy import constants

from twin import __version__, validation
from twin.instruments.clock import Clock
from twin.instruments.tem import apertures, autofunctions
from twin.instruments.tem.camera import acquire_frame
from twin.instruments.tem.hardware import CAMERA_LENGTHS, NOMINAL_MAGNIFICATIONS, TemHardware
from twin.instruments.tem.imaging import HrtemSimulator
from twin.instruments.tem.metadata import Exposure
from twin.instruments.tem.scanning import SHORTEST_DWELL, Scan, StemSimulator
from twin.instruments.tem.settings import State, check_setting, settings_table
from twin.instruments.tem.spectroscopy import EdsSpectrometer
from twin.instruments.tem.stage import Stage
from twin.instruments.tem.stem_scan import ScanRecorder, acquire_scan
from twin.instruments.usage import Usage
from twin.instruments.work import Cost, Job, Limits, duration
from twin.physics import random_draws
from twin.physics.ctf import Aberrations
from twin.physics.damage import displaced
from twin.sample import Sample
from twin.sample.frames import FramedSample, InstrumentFrame

SERIAL_NUMBER = "TWIN-0001"  # the same on every twin: nothing about an episode can be read from it
_STREAM_PARKED = 0x50524B  # random stream tag for knock-ons under the parked probe between acquisitions
GUN_LENS_SCALE = 50.0  # monochromator focus units per e-fold of beam current
FLASH_SECONDS = 5.0  # s of instrument time a gun flash takes


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
        self.settings = settings_table(self.hardware)
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
        #: the most the column's hidden focus offset and astigmatism (m) may be, as a challenge's rules say
        self.hidden_column = (0.0, 0.0)

    def restarted(self, sample: Sample, clock: Clock) -> TemInstrument:
        """This microscope as it was switched on, over ``sample`` and on ``clock``: the same hardware,
        frame, budget and limits. Over the same sample it keeps the simulators and the images they
        cached (they depend on the sample, the window and the optics, never on this state)."""
        fresh = TemInstrument(sample, clock, self.seed, self.hardware, self.sample.frame,
                              self.sample.revealed, self.usage)
        fresh.limits, fresh.hidden_column = self.limits, self.hidden_column
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
    def acquisition(self, task: str, cost: Cost, beam_on_specimen: bool, electrons: float,
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
        if elapsed <= 0 or state["optics.optical_mode"] != "Stem" or not self.beam_on_specimen(state):
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
        """Set a setting (``optics.defocus``: the focus relative to :attr:`defocus_reference`) as the
        rules of :func:`~twin.instruments.tem.settings.check_setting` allow, with what changes along."""
        self.settle_parked_beam()  # what the probe gave where it was, before anything moves it
        if name == "optics.defocus":
            lo, hi = self.settings.parameter("optics.focus").lo, self.settings.parameter("optics.focus").hi
            with self._focus_lock:
                reference = self._defocus_reference
                defocus = validation.real("optics.defocus", value, lo - reference, hi - reference, "m")
                self.settings.set("optics.focus", reference + defocus)
            return defocus
        also = check_setting(self.settings, self.hardware, name, value)
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

    def known_aberrations(self, state: State, stage: State | None = None, worst: bool = True) -> Aberrations:
        """The aberrations as far as the instrument knows them, for what a client learns of an acquisition
        before its data (its cost, refusal, progress, dose): the true ones with the ground truth on; else
        what the settings make, plus (``worst``) the most the column's hidden focus offset and astigmatism
        may add (:attr:`hidden_column`). No estimate then tells the hidden part, and the worst one never
        falls short of the true cost (every cost grows with |C10| + |C12|)."""
        if self.sample.revealed:
            return self.aberrations(state, stage)
        seen = self.aberrations({**state, "twin.focus_offset": 0.0, "twin.objective_astigmatism": (0.0, 0.0)},
                                stage)
        focus, astigmatism = self.hidden_column if worst else (0.0, 0.0)
        return dataclasses.replace(seen, C10=abs(seen.C10) + focus, C12=seen.C12 + astigmatism)

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

    def beam_on_specimen(self, state: State) -> bool:
        """Whether the settings ``state`` let the beam reach the specimen: unblanked, valves open."""
        return not state["optics.beam_blanked"] and state["vacuum.column_valves_open"]

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

    def parked_probe(self, state: State, stage: State, offset: np.ndarray) -> np.ndarray:
        """Where the parked probe sits (m, sample frame): ``optics.paused_scan_beam_position`` as fractions
        of the scan field (x to the right, y down from the top, as on the image), turned by the scan
        rotation, around the scan's centre (the beam shift moves it)."""
        centre = self.view_centre(state, stage, offset, "optics.beam_shift")
        fov, (px, py) = state["optics.scan_field_of_view"], state["optics.paused_scan_beam_position"]
        scan = Scan((float(centre[0]), float(centre[1])), fov, state["optics.scan_rotation"], 16)
        x, y = scan.to_sample(np.array((px - 0.5) * fov), np.array((0.5 - py) * fov))
        return np.array([float(x), float(y)])

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
        on = self.beam_on_specimen(state) and state["detectors.screen_inserted"]
        return self.beam_current(state) if on else 0.0

    # --- acquisitions ---------------------------------------------------------------------------
    def acquire_camera_image(self, camera: Any, size: Any, exposure_time: Any,
                             readout_area: Any = "Full") -> dict[str, Any]:
        """A camera frame: ``{"data": uint16 [y, x], "metadata": {...}}`` of the image, in diffraction
        mode of the far field of the illuminated area, in STEM mode of the parked probe's convergent-beam
        pattern. ``readout_area``: the whole sensor ("Full") or its central "Half" or "Quarter" (a
        smaller field at the same pixel pitch). See :mod:`twin.instruments.tem.camera`."""
        return acquire_frame(self, camera, size, exposure_time, readout_area)

    def acquire_stem_images(
        self, detectors: Any, size: Any, dwell_time: Any, region: Any = None, mode: Any = None
    ) -> list[dict[str, Any]]:
        """One scan read out by every detector in ``detectors``: a list of
        ``{"data": uint16 [rows, columns], "metadata": {...}}`` in the order given."""
        return self.stem_scan(detectors, size, dwell_time, region, mode)[0]

    def stem_scan(
        self, detectors: Any, size: Any, dwell_time: Any, region: Any = None, mode: Any = None,
        during: ScanRecorder | None = None,
    ) -> tuple[list[dict[str, Any]], Any]:
        """One scan read out by every detector in ``detectors`` (perhaps none) and by ``during``, a
        recorder called once the signals exist and before the beam damages the sample (a spectrometer:
        it gets the scan, the settings, the stage reading and specimen offset, the dwell time, the frame
        index and whether the beam reaches the specimen). Returns the images and what ``during`` returned.
        See :mod:`twin.instruments.tem.stem_scan`."""
        return acquire_scan(self, detectors, size, dwell_time, region, mode, during)

    # --- auto functions ----------------------------------------------------------------------------
    def run_auto_function(self, name: Any, arguments: Any, reset_blanker: Any = False) -> dict[str, Any]:
        """Run one of the image-based auto functions with ``arguments`` (a mapping). The beam is
        unblanked while it works; ``reset_beam_blanker_afterwards`` puts the blanker back as it was."""
        return autofunctions.run(self, name, arguments, reset_blanker)

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
            random_draws.warm_up()
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
