"""The TEM: optics, high tension, stage and camera around one shared sample.

An acquisition takes a snapshot of the state, asks the sample for the atoms under the field of
view, and hands them to the pure physics. Exit waves are cached per (sample version, window,
grid, energy), so a defocus series or a repeated exposure only re-applies the lens and the noise.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from scipy import constants

from twin import validation
from twin.instruments.cache import ArrayCache
from twin.instruments.clock import Clock
from twin.instruments.parameters import Choice, Real, Settings
from twin.physics import tem as tem_physics
from twin.physics.ctf import (
    Aberrations,
    Coherence,
    delocalization,
    information_limit,
    transfer_function,
)
from twin.physics.noise import shot_noise_counts
from twin.physics.tem import SimulationGrid
from twin.sample import Sample, Window

# Nominal magnifications of the imaging (SA/Mh) range; the camera sees nominal × post-magnification.
NOMINAL_MAGNIFICATIONS = (
    1_000.0, 2_000.0, 5_000.0, 10_000.0, 20_000.0, 38_000.0, 57_000.0, 88_000.0, 145_000.0,
    195_000.0, 285_000.0, 380_000.0, 490_000.0, 640_000.0, 810_000.0, 1_050_000.0, 1_300_000.0,
    1_650_000.0, 2_050_000.0, 2_550_000.0, 3_200_000.0, 4_000_000.0,
)
STAGE_AXES = ("x", "y", "z", "a", "b")
_STREAM_CAMERA = 0x43414D  # random stream tag for camera noise


@dataclass(frozen=True)
class Camera:
    """A pixelated camera: full-frame size, physical pixel pitch (m) and saturation."""

    name: str
    pixels: int
    pitch: float

    @property
    def sizes(self) -> tuple[int, ...]:
        """Read-out sizes by binning the full frame (square)."""
        return tuple(self.pixels // 2**k for k in range(7))

    @property
    def width(self) -> float:
        """Sensor width (m)."""
        return self.pixels * self.pitch


@dataclass(frozen=True)
class TemHardware:
    """Fixed properties of the simulated column (SI units)."""

    spherical_aberration: float = 1.0e-6  # residual Cs of an aberration-corrected objective
    chromatic_aberration: float = 1.2e-3
    energy_spread: float = 0.3  # eV, FWHM of the source
    illumination_semiangle: float = 0.1e-3  # rad, angular spread of the parallel beam
    beam_current: float = 1.0e-9  # A
    min_beam_diameter: float = 100e-9  # the condenser never spreads the beam less than this
    post_magnification: float = 1.5  # camera magnification / nominal magnification
    multislice_atom_limit: int = 4_000_000  # atoms one multislice may handle
    cache_bytes: int = 384 * 2**20  # exit-wave spectra
    kernel_cache_bytes: int = 128 * 2**20  # lens transfer functions
    camera: Camera = Camera("BM-Ceta", 4096, 14e-6)
    stage_limits: tuple[tuple[float, float], ...] = (
        (-1e-3, 1e-3), (-1e-3, 1e-3), (-0.375e-3, 0.375e-3), (-0.61, 0.61), (-0.52, 0.52)
    )

    def coherence(self, energy: float) -> Coherence:
        """Focal spread (1/e) from Cc and the energy spread at ``energy`` (eV), plus angular spread."""
        sigma_energy = self.energy_spread / (2 * np.sqrt(2 * np.log(2)))
        focal_spread = np.sqrt(2) * self.chromatic_aberration * sigma_energy / energy
        return Coherence(focal_spread=float(focal_spread), angular_spread=self.illumination_semiangle)


@dataclass(frozen=True)
class View:
    """What one camera acquisition images and how: the window (m), the image size, the simulation
    grid (``None`` when the crystal images as a uniform film) and the optics."""

    window: Window
    size: int
    grid: SimulationGrid | None
    energy: float
    aberrations: Aberrations
    coherence: Coherence
    method: str


class TemInstrument:
    """State and acquisitions of the simulated TEM."""

    def __init__(self, sample: Sample, clock: Clock, seed: int, hardware: TemHardware | None = None):
        self.sample = sample
        self.clock = clock
        self.seed = seed
        self.hardware = hardware or TemHardware()
        self.settings = Settings(
            [
                Real("optics.defocus", "m", -100e-6, 100e-6, 0.0,
                     "objective defocus C10; negative is underfocus"),
                Choice("optics.magnification", NOMINAL_MAGNIFICATIONS, 2_550_000.0,
                       "nominal magnification; the camera field of view follows from it", unit="x"),
                Real("source.acceleration_voltage", "V", 60e3, 300e3, 80e3, "high tension"),
            ]
        )
        self._stage = dict.fromkeys(STAGE_AXES, 0.0)
        self._stage_lock = threading.Lock()
        self._acquire_lock = threading.Lock()
        self._frames = 0
        self._exit_waves = ArrayCache(self.hardware.cache_bytes)
        self._kernels = ArrayCache(self.hardware.kernel_cache_bytes)

    # --- stage ---------------------------------------------------------------------------------
    def stage_position(self) -> dict[str, float]:
        with self._stage_lock:
            return dict(self._stage)

    def stage_limits(self, axis: str) -> tuple[float, float]:
        axis = validation.one_of("axis", axis, STAGE_AXES)
        return self.hardware.stage_limits[STAGE_AXES.index(axis)]

    def move_stage(self, target: dict[str, Any], relative: bool = False) -> dict[str, float]:
        """Move the axes given in ``target`` (m, rad); ``None`` leaves an axis. All or nothing."""
        if not isinstance(target, dict):
            raise TypeError(f"stage target must be a mapping of axes to values, got {target!r}")
        relative = validation.flag("relative", relative)
        with self._stage_lock:
            new = dict(self._stage)
            for axis, value in target.items():
                axis = validation.one_of("stage axis", axis, STAGE_AXES)
                if value is None:
                    continue
                unit = "rad" if axis in "ab" else "m"
                lo, hi = self.stage_limits(axis)
                if relative:
                    step = validation.real(f"stage {axis} step", value, lo - hi, hi - lo, unit)
                    destination = self._stage[axis] + step
                    if not lo <= destination <= hi:
                        raise ValueError(
                            f"stage {axis} step = {value!r} would reach {destination:.6g} {unit}, out of "
                            f"range; allowed {validation.allowed_range(lo, hi, unit)}"
                        )
                    new[axis] = destination
                else:
                    new[axis] = validation.real(f"stage {axis}", value, lo, hi, unit)
            self._stage = new
            return dict(new)

    # --- optics --------------------------------------------------------------------------------
    def field_of_view(self, magnification: float | None = None) -> float:
        """Side (m) of the square area the camera sees at ``magnification`` (default: current)."""
        nominal = magnification if magnification is not None else self.settings.get("optics.magnification")
        return self.hardware.camera.width / (nominal * self.hardware.post_magnification)

    def camera_detectors(self) -> list[str]:
        return [self.hardware.camera.name]

    # --- acquisition ---------------------------------------------------------------------------
    def acquire_camera_image(self, camera: Any, size: Any, exposure_time: Any) -> dict[str, Any]:
        """A camera frame of the area under the beam: ``{"data": uint16 [y, x], "metadata": {...}}``."""
        cam = self.hardware.camera
        validation.one_of("camera", camera, self.camera_detectors())
        size = validation.integer("size", size, min(cam.sizes), cam.pixels)
        validation.one_of("size", size, cam.sizes)
        exposure = validation.positive("exposure_time", exposure_time, 0.0, 100.0, "s")
        state = self.settings.snapshot()
        stage = self.stage_position()
        view = self._view(state, stage, size)  # may refuse; nothing has changed yet

        started = datetime.now(timezone.utc)
        with self._acquire_lock:
            frame_index = self._frames
            self._frames += 1
            intensity = self._intensity(view)
            rng = np.random.default_rng([self.seed, _STREAM_CAMERA, frame_index])
            fov = view.window.width
            pixel = fov / size
            dose = self.dose_per_area(exposure, fov)
            data = shot_noise_counts(intensity, dose * pixel**2, rng)
            self.clock.sleep(exposure)
        finished = datetime.now(timezone.utc)
        energy, window, coherence = view.energy, view.window, view.coherence
        metadata = {
            "acquisition": {
                "acquisition_id": f"{self.seed}-{frame_index}",
                "acquisition_start_date_time": started.isoformat(),
                "acquisition_date_time": finished.isoformat(),
                "exposure_time": exposure,
                "frame_index": frame_index,
            },
            "binary_result": {
                "pixel_size": {"x": pixel, "y": pixel},
                "image_size": {"x": size, "y": size},
                "detector": cam.name,
                "bit_depth": 16,
                "counts_per_electron": 1.0,
            },
            "optics": {
                "defocus": state["optics.defocus"],
                "acceleration_voltage": energy,
                "magnification": state["optics.magnification"],
                "field_of_view": fov,
                "spherical_aberration": self.hardware.spherical_aberration,
                "focal_spread": coherence.focal_spread,
                "illumination_semiangle": coherence.angular_spread,
                "beam_current": self.hardware.beam_current,
                "dose_per_area": dose,
            },
            "stage_settings": {"stage_position": stage},
            "twin": {
                "window": window.as_dict(),
                "pixel_origin": "centre",
                "row_axis": "y",
                "sample": self.sample.name,
                "sample_version": self.sample.version,
                "seed": self.seed,
                "simulation": view.method,
                "padding": view.grid.padding if view.grid else 0.0,
                "oversampling": view.grid.oversampling if view.grid else 1,
            },
        }
        return {"data": data, "metadata": metadata}

    def dose_per_area(self, exposure: float, field_of_view: float) -> float:
        """Electrons per m² in ``exposure`` s with the beam spread just over the field of view."""
        diameter = max(self.hardware.min_beam_diameter, np.sqrt(2.0) * field_of_view)
        area = np.pi * diameter**2 / 4.0
        return self.hardware.beam_current * exposure / constants.e / area

    def _view(self, state: dict[str, Any], stage: dict[str, float], size: int) -> View:
        """What an acquisition of ``size``² pixels will image and how; refuses what it cannot do."""
        energy = state["source.acceleration_voltage"]
        fov = self.field_of_view(state["optics.magnification"])
        window = Window.around(stage["x"], stage["y"], fov, fov)
        aberrations = Aberrations(C10=state["optics.defocus"], C30=self.hardware.spherical_aberration)
        coherence = self.hardware.coherence(energy)
        grid = self._grid_for(fov, size, energy, aberrations, coherence)
        if grid is not None and self._atoms_in_view(fov, grid) > self.hardware.multislice_atom_limit:
            usable = [
                s for s in self.hardware.camera.sizes
                if (g := self._grid_for(fov, s, energy, aberrations, coherence)) is None
                or self._atoms_in_view(fov, g) <= self.hardware.multislice_atom_limit
            ]
            raise ValueError(
                f"size = {size} at magnification {state['optics.magnification']:g} resolves the lattice "
                f"over {self._atoms_in_view(fov, grid):.3g} atoms, more than the twin simulates "
                f"({self.hardware.multislice_atom_limit:.3g}); allowed sizes here: "
                f"{', '.join(map(str, sorted(usable))) or 'none'}, or a higher magnification"
            )
        return View(window, size, grid, energy, aberrations, coherence,
                    "continuum" if grid is None else "multislice")

    def _grid_for(
        self, fov: float, size: int, energy: float, aberrations: Aberrations, coherence: Coherence
    ) -> SimulationGrid | None:
        """The simulation grid for ``size``² camera pixels over ``fov`` (m), or ``None`` when the
        lattice lies beyond the camera's Nyquist frequency and the crystal images as a uniform film."""
        pixel = fov / size
        if pixel >= self.sample.lattice_spacing / 2:
            return None
        oversampling = tem_physics.oversampling_for(pixel, information_limit(energy, coherence))
        spread = delocalization(energy, aberrations, coherence, pixel / oversampling)
        return tem_physics.simulation_grid(fov, size, tem_physics.padding_for(spread), oversampling)

    def _atoms_in_view(self, field_of_view: float, grid: SimulationGrid) -> float:
        return self.sample.atom_density() * (field_of_view + 2 * grid.padding) ** 2

    def _intensity(self, view: View) -> np.ndarray:
        """Noise-free image (vacuum = 1) of ``view``, re-using cached exit waves and lens kernels."""
        if view.grid is None:
            return np.ones((view.size, view.size), dtype=np.float32)
        grid = view.grid
        padded = view.window.grown(grid.padding)

        def exit_wave() -> np.ndarray:
            atoms = self.sample.atoms_in_window(padded)
            return tem_physics.spectrum(tem_physics.exit_wave(atoms, grid, view.energy))

        def kernel() -> np.ndarray:
            shape = (grid.n, grid.n)
            return transfer_function(shape, grid.step, view.energy, view.aberrations, view.coherence)

        wave_key = (id(self.sample), self.sample.version, padded, grid, view.energy)
        spectrum = self._exit_waves.get_or_compute(wave_key, exit_wave)
        lens = self._kernels.get_or_compute((grid, view.energy, view.aberrations, view.coherence), kernel)
        return tem_physics.hrtem_intensity(spectrum, lens, grid)

    def warm_up(self, sizes: tuple[int, ...] = (1024,)) -> None:
        """Run the physics once per image size (numba JIT, FFT plans) away from the current view."""
        state = self.settings.snapshot()
        stage = self.stage_position()
        away = {**stage, "x": stage["x"] + 10 * self.field_of_view(state["optics.magnification"])}
        with self._acquire_lock:
            for size in sizes:
                self._intensity(self._view(state, away, size))

    def describe(self) -> dict[str, Any]:
        """Everything a client needs to present the instrument."""
        return {
            "settings": self.settings.describe(),
            "stage_axes": list(STAGE_AXES),
            "stage_limits": {a: self.stage_limits(a) for a in STAGE_AXES},
            "holder_type": "DoubleTilt",
            "camera_detectors": self.camera_detectors(),
            "camera_sizes": list(self.hardware.camera.sizes),
            "magnifications": [
                {"nominal": m, "calibrated": m * self.hardware.post_magnification,
                 "field_of_view": self.field_of_view(m)}
                for m in NOMINAL_MAGNIFICATIONS
            ],
        }
