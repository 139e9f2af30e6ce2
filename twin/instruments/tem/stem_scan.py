"""A STEM scan on the TEM/STEM: the detectors, size, dwell time and region checked; the scan's signals
(:class:`~twin.instruments.tem.scanning.StemSimulator`) smeared by drift; the exposure; each
detector's counts; a recorder riding along (a spectrometer); the damage; and the images' metadata."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy import constants, ndimage

from twin import validation
from twin.instruments.tem import apertures
from twin.instruments.tem.camera import STREAM_NOISE
from twin.instruments.tem.hardware import ScanningDetector, TemHardware
from twin.instruments.tem.irradiation import irradiate
from twin.instruments.tem.metadata import acquisition_metadata
from twin.instruments.tem.scanning import MODES, SHORTEST_DWELL, Scan, scan_region
from twin.physics.detectors import UINT16_MAX, shot_noise
from twin.validation import brief

if TYPE_CHECKING:
    from twin.instruments.tem.instrument import State, TemInstrument

LONGEST_FRAME = 600.0  # s: the longest STEM frame a scan may take


class ScanRecorder(Protocol):
    """Something recording along a STEM scan besides the scanning detectors (a spectrometer)."""

    name: str

    def __call__(self, scan: Scan, state: State, stage: State, offset: np.ndarray, dwell_time: float,
                 frame_index: int, beam_on: bool) -> Any: ...


def acquire_scan(tem: TemInstrument, detectors: Any, size: Any, dwell_time: Any, region: Any = None,
                 mode: Any = None, during: ScanRecorder | None = None) -> tuple[list[dict[str, Any]], Any]:
    """One scan of ``tem`` (see :meth:`TemInstrument.stem_scan`): the images and what ``during``
    returned."""
    chosen = detector_list(tem.hardware, detectors, allow_empty=during is not None)
    size = validation.integer("size", size, 16, 4096)
    dwell = validation.real("dwell_time", dwell_time, SHORTEST_DWELL, 1.0, "s")
    rectangle = scan_region(region)
    state = tem.snapshot()
    mode = state["twin.stem_mode"] if mode is None else validation.one_of("mode", mode, MODES)
    if state["optics.optical_mode"] != "Stem":
        raise RuntimeError("STEM acquisitions need optics.optical_mode 'Stem'; it is 'Tem'")
    cutoff = apertures.objective_cutoff(state, tem.hardware)
    if cutoff is not None:  # the objective aperture stops what scatters beyond it before the detectors
        chosen = [dataclasses.replace(d, inner=min(d.inner, cutoff), outer=min(d.outer, cutoff))
                  for d in chosen]
    for detector in chosen:
        if not state[f"detectors.{detector.name}.inserted"]:
            raise RuntimeError(f"detector {detector.name} is retracted; insert() it first")
    stage, offset = tem.stage_reading(state)  # one reading: what the image shows is what it reports
    centre = tem.view_centre(state, stage, offset, "optics.beam_shift")
    scan = Scan((float(centre[0]), float(centre[1])), state["optics.scan_field_of_view"],
                state["optics.scan_rotation"], size, rectangle)
    rows, cols = scan.shape
    frame_time = rows * cols * dwell
    if frame_time > LONGEST_FRAME:
        raise ValueError(
            f"dwell_time = {dwell!r} s over {rows} x {cols} pixels takes {frame_time:.4g} s per frame; "
            f"allowed at most {LONGEST_FRAME:g} s (dwell_time <= {LONGEST_FRAME / (rows * cols):.3g} s "
            "at this size)"
        )
    energy = state["source.acceleration_voltage"]
    on_specimen = tem.beam_on_specimen(state)
    beam_on = on_specimen and not state["detectors.screen_inserted"]
    tilt = (stage["a"] or 0.0, stage["b"] or 0.0)
    aberrations, known = tem.aberrations(state, stage), tem.known_aberrations(state, stage)
    alpha = state["optics.convergence_angle"]
    # the method, refusals and cost from the column as the instrument knows it (no hidden part)
    method = tem.stem.method(scan, energy, alpha, known, chosen, mode, tilt)  # may refuse
    cost = tem.stem.cost(scan, energy, alpha, known, chosen, method)
    article, names = "an" if method[0] in "aeiou" else "a", ", ".join(d.name for d in chosen)
    names = ", ".join(filter(None, (names, during and during.name)))
    task = f"{article} {method} STEM scan of {rows} x {cols} pixels with {names}"
    tem.limits.check(task, cost, "use a smaller size, fewer detectors"
                     + (" or mode 'interactive'" if method in ("exact", "prism") else ""))
    current = tem.beam_current(state)
    with tem.acquisition(task, cost, on_specimen, current * frame_time / constants.e, frame_time) as taken:
        frame_index, job = taken.frame_index, taken.job
        if beam_on:
            signals = tem.stem.signals(scan, energy, alpha, aberrations, chosen, method, tilt, job.step)
            if state["twin.drift"]:
                velocity = -tem.stage.drift_velocity  # the view moves opposite to the specimen
                signals = {k: drifted(v, scan, velocity, frame_time) for k, v in signals.items()}
        else:
            signals = {d.name: np.zeros(scan.shape) for d in chosen}
        electrons = current * dwell / constants.e
        rng = np.random.default_rng([tem.seed, STREAM_NOISE, frame_index])
        data = {}
        for detector in chosen:
            counts = shot_noise(signals[detector.name] * electrons, rng)
            noise = rng.standard_normal(counts.shape, dtype=np.float32)
            counts += noise * np.float32(detector.read_noise)
            data[detector.name] = np.clip(np.rint(counts), 0, UINT16_MAX).astype(np.uint16)
        recorded = None if during is None else during(scan, state, stage, offset, dwell, frame_index, beam_on)
        knocked_out = 0
        if on_specimen:
            corner = tuple(c[0] - scan.step / 2 for c in scan.scan_coordinates())
            extent = (cols * scan.step, rows * scan.step)
            knocked_out = irradiate(
                tem, scan.bounding_window(0.0), lambda x, y: _inside(scan.to_scan(x, y), corner, extent),
                electrons / scan.step**2, energy, frame_index,
            )
    images = []
    for detector in chosen:
        metadata = acquisition_metadata(tem, state, stage, taken, method)
        metadata["binary_result"] = {
            "pixel_size": {"x": scan.step, "y": scan.step}, "pixel_size_unit": "m",
            "image_size": {"x": cols, "y": rows}, "detector": detector.name, "bit_depth": 16,
        }
        metadata["scan_settings"] = {"dwell_time": dwell, "scan_size": size, "frame_time": frame_time,
                                     "scan_rotation": scan.rotation, "field_of_view": scan.field_of_view,
                                     "region": dict(zip(("left", "top", "width", "height"), rectangle,
                                                        strict=True))}
        metadata["optics"] |= {"convergence_angle": alpha,
                               "collection_angles": {"inner": detector.inner, "outer": detector.outer},
                               "electrons_per_pixel": electrons if beam_on else 0.0}
        metadata["twin"] |= {
            "window": scan.unrotated_window().as_dict(),
            "scan_rotation": scan.rotation, "scan_centre": {"x": scan.centre[0], "y": scan.centre[1]},
            "stem_mode": mode, "atoms_knocked_out": knocked_out, "beam_reaches_detector": beam_on,
            "tem_engine": tem.hardware.tem_engine if method == "exact" else None,
            "specimen_offset": offset.tolist(),
        }
        images.append({"data": data[detector.name], "metadata": metadata})
    return images, recorded


def detector_list(hardware: TemHardware, detectors: Any, allow_empty: bool) -> list[ScanningDetector]:
    """The scanning detectors named by ``detectors`` (a name or a list of them; empty if allowed)."""
    names = [d.name for d in hardware.scanning_detectors]
    if isinstance(detectors, str):
        detectors = [detectors]
    if not isinstance(detectors, (list, tuple)) or not (detectors or allow_empty):
        raise TypeError(f"detectors must be a detector name or a list of them, got {brief(detectors)}; "
                        f"allowed: {', '.join(map(repr, names))}")
    return [hardware.detector(validation.one_of("detector", d, names)) for d in detectors]


def drifted(signal: np.ndarray, scan: Scan, velocity: np.ndarray, frame_time: float) -> np.ndarray:
    """The signal as scanned line by line (rows in time order, ``frame_time`` s a frame) while the view
    moves at ``velocity`` (m/s, sample frame)."""
    rows = signal.shape[0]
    du, dv = scan.to_scan(scan.centre[0] + velocity[0], scan.centre[1] + velocity[1])  # per second
    t = (np.arange(rows) + 0.5) / rows * frame_time
    if max(abs(du), abs(dv)) * frame_time < 1e-3 * scan.step:
        return signal
    r, c = np.indices(signal.shape, dtype=float)
    r += (dv * t / scan.step)[:, None]
    c += (du * t / scan.step)[:, None]
    return ndimage.map_coordinates(signal, [r, c], order=1, mode="nearest")


def _inside(uv: tuple[np.ndarray, np.ndarray], corner: tuple[float, float], extent: tuple[float, float]):
    """Whether scan-frame points ``uv`` lie in the rectangle from ``corner`` spanning ``extent`` (m)."""
    (u, v), (u0, v0), (width, height) = uv, corner, extent
    return (u >= u0) & (u < u0 + width) & (v >= v0) & (v < v0 + height)
