"""A camera frame on the TEM/STEM: the camera, read-out area, size (binning) and exposure checked; the
plan of what it records (a TEM image, a selected-area diffraction pattern, or in STEM the parked
probe's convergent-beam pattern); the exposure; the camera's counts; and the frame's metadata."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import constants, ndimage

from twin import validation
from twin.instruments.tem import apertures
from twin.instruments.tem.hardware import Camera
from twin.instruments.tem.illumination import beam_diameter, disk, dose_per_area, illuminated
from twin.instruments.tem.imaging import DiffractionGeometry, atoms_in_view
from twin.instruments.tem.irradiation import irradiate_disk
from twin.instruments.tem.metadata import acquisition_metadata
from twin.instruments.work import Cost, fft_seconds_per_unit, fft_units
from twin.physics import stem as stem_physics
from twin.physics.ctf import electron_wavelength
from twin.physics.detectors import camera_counts, counting_counts, psf_sigma, scintillator_light
from twin.physics.tem import SimulationGrid
from twin.sample import Window
from twin.sample.coarse import BYTES_PER_POINT

if TYPE_CHECKING:
    from twin.instruments.tem.imaging import View
    from twin.instruments.tem.instrument import State, TemInstrument
    from twin.physics.ctf import Aberrations

STREAM_NOISE = 0x43414D  # random stream tag for detector noise (cameras and STEM detectors)
READOUT_AREAS = {"Full": 1, "Half": 2, "Quarter": 4}  # the camera's fixed readout areas: sensor width over it


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
    cost: Cost = Cost(0.0, 0)  # from the column as the instrument knows it
    dose_diameter: float | None = None  # the disk the metadata's dose spreads over; None: ``beam_diameter``


def acquire_frame(tem: TemInstrument, camera: Any, size: Any, exposure_time: Any,
                  readout_area: Any = "Full") -> dict[str, Any]:
    """A frame of ``tem``'s ``camera`` (see :meth:`TemInstrument.acquire_camera_image`)."""
    names = [c.name for c in tem.hardware.cameras]
    cam = tem.hardware.camera(validation.one_of("camera", camera, names))
    area = validation.one_of("readout_area", readout_area, tuple(READOUT_AREAS))
    cam = dataclasses.replace(cam, pixels=cam.pixels // READOUT_AREAS[area])
    size = validation.integer("size", size, min(cam.sizes), cam.pixels)
    validation.one_of("size", size, cam.sizes)
    exposure = validation.real("exposure_time", exposure_time, *cam.exposure_limits, "s")
    state = tem.snapshot()
    if not state[f"detectors.{cam.name}.inserted"]:
        raise RuntimeError(f"camera {cam.name} is retracted; insert() it first")
    stage, offset = tem.stage_reading(state)  # one reading: what the image shows is what it reports
    if state["optics.optical_mode"] == "Stem":
        plan = convergent_beam_plan(tem, state, stage, offset, cam, size)
    elif state["optics.projector_mode"] == "Imaging":
        plan = imaging_plan(tem, state, stage, offset, cam, size)  # may refuse: nothing has changed yet
    else:
        plan = diffraction_plan(tem, state, stage, offset, cam, size)
    kind = {"m": "image", "1/m": "diffraction pattern"}[plan.pixel_unit]
    kind = f"convergent-beam {kind}" if "probe_position" in plan.twin else kind
    task = f"a {size} x {size} {cam.name} {kind}"
    tem.limits.check(task, plan.cost, "use a smaller size or a lower magnification")
    beam_on = tem.beam_reaches(state, cam.name)
    current = tem.beam_current(state)
    dose = dose_per_area(current, exposure, plan.beam_diameter)
    on_specimen = tem.beam_on_specimen(state)
    with tem.acquisition(task, plan.cost, on_specimen, current * exposure / constants.e, exposure) as taken:
        expected = plan.electrons(dose) if beam_on else np.zeros((size, size))
        rng = np.random.default_rng([tem.seed, STREAM_NOISE, taken.frame_index])
        data = record(cam, expected, exposure, cam.pixels // size, rng)
        knocked_out = 0
        if on_specimen:
            knocked_out = irradiate_disk(tem, plan.beam_centre, plan.beam_diameter, dose,
                                         state["source.acceleration_voltage"], taken.frame_index)
    metadata = acquisition_metadata(tem, state, stage, taken, plan.method)
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
    shown_dose = dose_per_area(current, exposure, plan.dose_diameter or plan.beam_diameter)
    metadata["optics"] |= plan.optics | {"dose_per_area": shown_dose if beam_on else 0.0}
    metadata["twin"] |= plan.twin | {"beam_reaches_camera": beam_on, "atoms_knocked_out": knocked_out,
                                     "specimen_offset": offset.tolist()}
    return {"data": data, "metadata": metadata}


def record(cam: Camera, expected: np.ndarray, exposure: float, binning: int,
           rng: np.random.Generator) -> np.ndarray:
    """The frame ``cam`` records (uint16 counts) of ``expected`` electrons per read-out pixel."""
    if cam.counting:
        return counting_counts(expected, exposure, binning, cam.counts_per_electron, cam.dead_time, rng)
    light = scintillator_light(expected, cam.counts_per_electron, cam.gain_variance, rng)
    return camera_counts(light, psf_sigma(cam.psf_sigma, binning), cam.read_noise, rng,
                         tail=psf_sigma(cam.psf_tail, binning), tail_fraction=cam.psf_tail_fraction,
                         offset=cam.offset)


def imaging_plan(tem: TemInstrument, state: State, stage: State, offset: np.ndarray, cam: Camera,
                 size: int) -> CameraPlan:
    """A TEM image: the exit wave of the area the magnification shows, through the objective."""
    nominal = state["optics.magnification"]
    fov = cam.width / (nominal * tem.hardware.post_magnification)
    centre = tem.view_centre(state, stage, offset, "optics.image_shift")

    def planned(aberrations: Aberrations, refuse: bool) -> View:
        return tem.hrtem.view(
            (centre[0], centre[1]), fov, size, state["source.acceleration_voltage"], aberrations,
            (stage["a"] or 0.0, stage["b"] or 0.0), cam.sizes, f"magnification {nominal:g}",
            tuple(state["optics.beam_tilt"]), apertures.objective_cutoff(state, tem.hardware), refuse,
        )

    known = planned(tem.known_aberrations(state, stage), True)  # refusals from what the instrument knows
    view = planned(tem.aberrations(state, stage), False)
    beam = centre - np.array(state["optics.image_shift"]) + np.array(state["optics.beam_shift"])
    pixel = fov / size

    selected = apertures.selected_area(state, tem.hardware)

    def electrons(dose: float) -> np.ndarray:
        lit = illuminated(view.window, size, beam, beam_diameter(state, tem.hardware, view.window.width))
        if selected is not None:  # the SA aperture sits in an image plane: dark outside its disk
            lit = lit * disk(view.window, size, centre, selected)
        return tem.hrtem.intensity(view) * lit * dose * pixel**2

    return CameraPlan(
        electrons=electrons, beam_centre=beam, beam_diameter=beam_diameter(state, tem.hardware, fov),
        method=view.method,
        pixel_size=pixel, pixel_unit="m",
        optics={"magnification": nominal, "field_of_view": fov},
        twin={"window": view.window.as_dict(), "padding": view.grid.padding,
              "oversampling": view.grid.oversampling,
              "tem_engine": None if view.continuum else tem.hardware.tem_engine},
        cost=imaging_cost(tem, known),
    )


def imaging_cost(tem: TemInstrument, view: View) -> Cost:
    """What a TEM image of ``view`` takes: the projected mass, or a multislice through the sample."""
    points = view.grid.n**2
    if view.continuum:
        return Cost(multislice_cost(points, 1).seconds, BYTES_PER_POINT * points)
    return multislice_cost(points, tem.stem.slices())


def diffraction_plan(tem: TemInstrument, state: State, stage: State, offset: np.ndarray, cam: Camera,
                     size: int) -> CameraPlan:
    """Selected-area diffraction: the far field of the illuminated area on the camera."""
    camera_length = state["optics.camera_length"]
    pixel_angle = cam.pitch * (cam.pixels // size) / camera_length
    energy = state["source.acceleration_voltage"]
    centre = tem.view_centre(state, stage, offset, "optics.beam_shift")
    diameter = beam_diameter(state, tem.hardware, tem.field_of_view(state["optics.magnification"]))
    tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
    selected = apertures.selected_area(state, tem.hardware)
    geometry = tem.hrtem.diffraction_geometry(size, pixel_angle, energy, selected)
    shift = pattern_shift(state, pixel_angle)
    cutoff = apertures.objective_cutoff(state, tem.hardware)
    through = 1.0 if selected is None else min(1.0, (selected / diameter) ** 2)  # of the disk's electrons

    def electrons(dose: float) -> np.ndarray:
        pattern, _ = tem.hrtem.diffraction_pattern(tuple(centre), size, pixel_angle, energy, tilt, selected)
        pattern = moved_on_camera(objective_stop(pattern, pixel_angle, cutoff), shift)
        return pattern * dose * through * np.pi * diameter**2 / 4  # the electrons through the SA disk

    return CameraPlan(
        electrons=electrons, beam_centre=centre, beam_diameter=diameter, method="multislice",
        pixel_size=pixel_angle / electron_wavelength(energy), pixel_unit="1/m",
        optics={"camera_length": camera_length, "pixel_angle": pixel_angle},
        twin={"diffracting_area_centre": {"x": centre[0], "y": centre[1]},
              "selected_area_width": geometry.area_points * geometry.sampling,
              "tem_engine": tem.hardware.tem_engine},
        cost=multislice_cost(geometry.points**2, tem.stem.slices()),
    )


def convergent_beam_plan(tem: TemInstrument, state: State, stage: State, offset: np.ndarray, cam: Camera,
                         size: int) -> CameraPlan:
    """STEM with a camera: the probe parked (:meth:`TemInstrument.parked_probe`), its convergent-beam
    pattern through the sample on the camera at the camera length (abTEM multislice of the probe)."""
    camera_length = state["optics.camera_length"]
    pixel_angle = cam.pitch * (cam.pixels // size) / camera_length
    energy, alpha = state["source.acceleration_voltage"], state["optics.convergence_angle"]
    aberrations = tem.aberrations(state, stage)
    probe = tem.parked_probe(state, stage, offset)
    reach = stem_physics.probe_reach(energy, alpha, aberrations)
    worst, seen = (stem_physics.probe_reach(energy, alpha, tem.known_aberrations(state, stage, w))
                   for w in (True, False))

    def points(reach: float) -> DiffractionGeometry:
        cell = 2 * reach + 2e-9  # m: the probe and its tails, periodic
        return DiffractionGeometry.plan(size, pixel_angle, electron_wavelength(energy), cell, cell)

    planned = points(reach)
    geometry = DiffractionGeometry(size, planned.binning, planned.points, planned.points, planned.sampling)
    side = geometry.points * geometry.sampling
    grid = SimulationGrid(size=geometry.points, pad=0, sampling=geometry.sampling)
    window = Window.around(probe[0], probe[1], side, side)
    tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
    shift = pattern_shift(state, pixel_angle)
    cutoff = apertures.objective_cutoff(state, tem.hardware)

    def electrons(dose: float) -> np.ndarray:
        atoms = atoms_in_view(tem.sample, window, tilt)
        wave = stem_physics.convergent_beam_exit_wave(atoms, grid, energy, alpha, aberrations,
                                                      (side / 2, side / 2))
        pattern = moved_on_camera(objective_stop(geometry.pattern(wave), pixel_angle, cutoff), shift)
        return pattern * dose * np.pi * (2 * reach) ** 2 / 4  # every electron lands

    return CameraPlan(
        electrons=electrons, beam_centre=probe, beam_diameter=2 * reach, method="multislice",
        pixel_size=pixel_angle / electron_wavelength(energy), pixel_unit="1/m",
        optics={"camera_length": camera_length, "pixel_angle": pixel_angle, "convergence_angle": alpha},
        twin={"probe_position": {"x": probe[0], "y": probe[1]}, "simulated_area_width": side},
        cost=multislice_cost(points(worst).points**2, tem.stem.slices()),
        dose_diameter=2 * seen,
    )


def multislice_cost(points: int, slices: int) -> Cost:
    """A multislice of one plane wave on a grid of ``points`` through ``slices`` slices, then a lens:
    two FFTs a slice and a few more, a potential slice and a few waves held at once."""
    return Cost((2 * slices + 6) * fft_units(points) * fft_seconds_per_unit(), (4 * slices + 80) * points)


def pattern_shift(state: State, pixel_angle: float) -> tuple[float, float]:
    """How far (camera pixels, x and y) the beam tilt and the diffraction shift (image tilt) move a
    pattern: by their angles over the camera's pixel angle."""
    x, y = np.add(state["optics.beam_tilt"], state["optics.image_tilt"]) / pixel_angle
    return float(x), float(y)


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
