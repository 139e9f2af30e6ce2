"""Auto functions that work from images, as on the instrument (they never read the hidden state).

- Beam-tilt focus and stigmation (TEM): tilting the illumination by ``tau`` shifts the image of a
  thin specimen by ``(C10 + A) tau``, with ``A = [[C12a, C12b], [C12b, -C12a]]`` the two-fold
  astigmatism. Image pairs at ``±tau`` along x and along y give C10, C12a and C12b; the tilt is kept
  small enough that the shift stays within half a lattice period, where a crystal's correlation is
  unambiguous, and grows as the estimate improves.
- STEM focus: a through-focus series of small scans, keeping the focus of highest contrast
  (shot-noise-corrected normalised variance), refined with finer steps and a parabola.
"""

from __future__ import annotations

import inspect
from typing import Any, Protocol

import numpy as np

from twin import validation
from twin.physics.ctf import electron_wavelength
from twin.validation import brief


class TemInstrument(Protocol):
    """What the auto functions use of the TEM (:class:`twin.instruments.tem.TemInstrument` has it): its
    settings, its acquisitions, its clock, hardware and sample. The instrument calls the auto functions,
    so they name what they need here instead of importing it."""

    clock: Any
    hardware: Any
    sample: Any
    settings: Any

    def get(self, name: str) -> Any: ...

    def set(self, name: str, value: Any) -> Any: ...

    def acquire_camera_image(self, *args: Any, **kwargs: Any) -> Any: ...

    def acquire_stem_images(self, *args: Any, **kwargs: Any) -> Any: ...


_SHIFT_BUDGET = 0.35  # of the lattice spacing: the largest image shift a measurement may produce
_CHANGED_SETTINGS = ("optics.focus", "optics.objective_stigmator", "optics.beam_tilt",
                     "optics.beam_blanked")  # what an auto function may change


def run(tem: TemInstrument, name: Any, arguments: Any, reset_blanker: Any = False) -> dict[str, Any]:
    """Run the auto function ``name`` on ``tem`` with ``arguments`` (a mapping of its settings), the
    beam unblanked meanwhile; ``reset_blanker`` puts the blanker back as it was. A refused or failed
    run leaves the optics as they were."""
    routines = {"stem_auto_focus": stem_auto_focus, "beam_tilt_auto_focus": beam_tilt_auto_focus,
                "objective_auto_stigmator": objective_auto_stigmator}
    routine = routines[validation.one_of("auto function", name, list(routines))]
    if not isinstance(arguments, dict):
        raise TypeError(f"arguments must be a mapping of the settings, got {brief(arguments)}")
    allowed = [p for p in inspect.signature(routine).parameters if p != "tem"]
    for key in arguments:
        validation.one_of(f"{name} setting", key, allowed)
    reset = validation.flag("reset_beam_blanker_afterwards", reset_blanker)
    before = {setting: tem.settings.get(setting) for setting in _CHANGED_SETTINGS}
    tem.settings.set("optics.beam_blanked", False)
    try:
        result = routine(tem, **arguments)
    except BaseException:
        for setting, value in before.items():
            tem.settings.set(setting, value)
        raise
    if reset:
        tem.settings.set("optics.beam_blanked", before["optics.beam_blanked"])
    return result


def image_shift(moved: np.ndarray, reference: np.ndarray, pixel: float, largest: float,
                components: int = 40) -> np.ndarray:
    """How far (m, x and y) ``moved`` is displaced relative to ``reference``, for shifts up to
    ``largest`` (m): a weighted fit of ``phase = -2 pi k.d`` to the strongest Fourier components of
    their cross-power spectrum below ``1 / (2 largest)``, where no phase wraps. Unbiased at any
    sub-pixel shift, and blind to a crystal's lattice translations beyond ``largest``."""
    window = np.outer(np.hanning(moved.shape[0]), np.hanning(moved.shape[1]))
    spectra = [np.fft.fft2((image - image.mean()) * window) for image in (moved, reference)]
    cross = spectra[0] * np.conj(spectra[1])
    kx, ky = np.meshgrid(np.fft.fftfreq(moved.shape[1], pixel), np.fft.fftfreq(moved.shape[0], pixel))
    usable = (np.hypot(kx, ky) > 0) & (np.hypot(kx, ky) < 1 / (2 * largest)) & (ky >= 0)
    strength = np.where(usable, np.abs(cross), 0.0).ravel()
    chosen = np.argsort(strength)[-components:]
    weights = np.sqrt(strength[chosen])
    design = -2 * np.pi * np.column_stack([kx.ravel()[chosen], ky.ravel()[chosen]]) * weights[:, None]
    shift, *_ = np.linalg.lstsq(design, np.angle(cross.ravel()[chosen]) * weights, rcond=None)
    return shift


def measure_by_beam_tilt(tem: TemInstrument, camera: str, size: int, exposure: float, tilt: float) -> dict:
    """C10, C12a, C12b (m) and the drift (m/s) from images at beam tilts ``±tilt`` (rad) along x and y.

    Along each axis the tilts go +, -, + (the three-image method): the two shifts against the middle
    image carry the tilt's shift with opposite drift, so their mean is free of linear drift.
    """
    original = tem.get("optics.beam_tilt")
    radius = _SHIFT_BUDGET * tem.sample.lattice_spacing
    tilt_shift, drift = {}, []
    try:
        for axis, unit in (("x", (1.0, 0.0)), ("y", (0.0, 1.0))):
            frames = []
            for sign in (1, -1, 1):
                offset = (sign * unit[0] * tilt, sign * unit[1] * tilt)
                tem.set("optics.beam_tilt", (original[0] + offset[0], original[1] + offset[1]))
                start = tem.clock.now()
                frames.append((tem.acquire_camera_image(camera, size, exposure), start))
            images = [f["data"].astype(float) for f, _ in frames]
            pixel = frames[0][0]["metadata"]["binary_result"]["pixel_size"]["x"]
            before = image_shift(images[0], images[1], pixel, radius)  # 2 C tau - v dt
            after = image_shift(images[2], images[1], pixel, radius)  # 2 C tau + v dt
            tilt_shift[axis] = (before + after) / 2 / (2 * tilt)
            drift.append((after - before) / 2 / max(frames[2][1] - frames[1][1], 1e-12))
    finally:
        tem.set("optics.beam_tilt", original)
    along_x, along_y = tilt_shift["x"], tilt_shift["y"]  # (C10 + C12a, C12b) and (C12b, C10 - C12a)
    return {
        "C10": float((along_x[0] + along_y[1]) / 2),
        "C12a": float((along_x[0] - along_y[1]) / 2),
        "C12b": float((along_x[1] + along_y[0]) / 2),
        "fit_error": float(abs(along_x[1] - along_y[0]) / 2),  # two estimates of C12b disagree by this
        "drift": tuple(float(v) for v in np.mean(drift, axis=0)),
    }


def _camera_exposure(
    tem: TemInstrument, camera: Any, size: Any, exposure_time: Any
) -> tuple[str, int, float]:
    """The camera, image size and exposure an image-based routine will use, checked."""
    names = [c.name for c in tem.hardware.cameras]
    return (validation.one_of("camera_detector", camera, names), validation.integer("size", size, 64, 4096),
            validation.positive("exposure_time", exposure_time, 0.0, 100.0, "s"))


def _measure_near_focus(tem: TemInstrument, camera: str, size: int, exposure: float, expected: float) -> dict:
    """Beam-tilt measurement of the aberrations at the present focus, taken at the focus offset where
    the crystal's first-order fringes have their strongest contrast (chi(g1) = -pi/2): at Gaussian focus
    a crystal's weak-phase contrast vanishes and the measurement would be biased. The material's
    lattice spacing is known to the operator, as on the instrument."""
    wavelength = electron_wavelength(tem.get("source.acceleration_voltage"))
    offset = -0.5 * tem.sample.lattice_spacing**2 / wavelength
    tilt = min(10e-3, _SHIFT_BUDGET * tem.sample.lattice_spacing / (2 * max(expected + abs(offset), 2e-9)))
    focus = tem.get("optics.focus")
    tem.set("optics.focus", focus + offset)
    try:
        measured = measure_by_beam_tilt(tem, camera, size, exposure, tilt)
    finally:
        tem.set("optics.focus", focus)
    return measured | {"C10": measured["C10"] - offset}


def beam_tilt_auto_focus(
    tem: TemInstrument, camera: Any, size: Any, exposure_time: Any, auto_stigmate: Any = False,
    maximum_focus_change: Any = 200e-9, maximum_iterations: Any = 6,
) -> dict[str, Any]:
    """Measure and correct defocus (and, with ``auto_stigmate``, astigmatism) from tilted images."""
    camera, size, exposure = _camera_exposure(tem, camera, size, exposure_time)
    stigmate = validation.flag("auto_stigmate", auto_stigmate)
    limit = validation.positive("maximum_focus_change", maximum_focus_change, 0.0, 10e-6, "m")
    iterations = validation.integer("maximum_iterations", maximum_iterations, 1, 20)
    start = tem.get("optics.focus")
    expected = limit  # the largest defocus the first measurement must be able to see
    measured: dict = {}
    for _ in range(iterations):
        measured = _measure_near_focus(tem, camera, size, exposure, expected)
        focus = tem.get("optics.focus") - measured["C10"]
        tem.set("optics.focus", float(np.clip(focus, start - limit, start + limit)))
        if stigmate:
            _correct_astigmatism(tem, measured)
        astigmatism = np.hypot(measured["C12a"], measured["C12b"])
        expected = 4 * max(abs(measured["C10"]), astigmatism)
        if abs(measured["C10"]) < 0.3e-9 and (astigmatism < 0.3e-9 or not stigmate):  # both converged
            break
    return {"defocus": tem.get("optics.defocus"), "astigmatism": (measured["C12a"], measured["C12b"]),
            "fit_error": measured["fit_error"], "drift": measured["drift"]}


def objective_auto_stigmator(tem: TemInstrument, camera: Any, size: Any, exposure_time: Any,
                             maximum_iterations: Any = 3) -> dict[str, Any]:
    """Measure the two-fold astigmatism from tilted images and cancel it with the objective stigmator."""
    camera, size, exposure = _camera_exposure(tem, camera, size, exposure_time)
    iterations = validation.integer("maximum_iterations", maximum_iterations, 1, 20)
    expected = 200e-9
    measured: dict = {}
    for _ in range(iterations):
        measured = _measure_near_focus(tem, camera, size, exposure, expected)
        _correct_astigmatism(tem, measured)
        expected = 4 * max(abs(measured["C10"]), np.hypot(measured["C12a"], measured["C12b"]))
    magnitude = float(np.hypot(measured["C12a"], measured["C12b"]))
    return {"astigmatism": (measured["C12a"], measured["C12b"]),
            "astigmatism_orientation": float(np.arctan2(measured["C12b"], measured["C12a"]) / 2),
            "astigmatism_fit_error": measured["fit_error"],
            "is_reliable": bool(measured["fit_error"] < max(2e-9, 0.5 * magnitude))}


def _correct_astigmatism(tem: TemInstrument, measured: dict) -> None:
    strength = tem.hardware.stigmator_strength
    x, y = tem.get("optics.objective_stigmator")
    tem.set("optics.objective_stigmator", tuple(np.clip((x - measured["C12a"] / strength,
                                                         y - measured["C12b"] / strength), -1.0, 1.0)))


def contrast(image: np.ndarray) -> float:
    """Shot-noise-corrected normalised variance of a counting image: ``(var - mean) / mean²``."""
    mean = image.mean()
    return float((image.var() - mean) / mean**2) if mean > 0 else 0.0


def stem_auto_focus(tem: TemInstrument, detector: Any, size: Any, dwell_time: Any,
                    auto_stigmate: Any = False, maximum_focus_change: Any = 150e-9) -> dict[str, Any]:
    """Through-focus series of STEM scans: keep the focus of highest contrast, then refine."""
    names = [d.name for d in tem.hardware.scanning_detectors]
    detector = validation.one_of("scanning_detector", detector, names)
    size = validation.integer("size", size, 16, 4096)
    dwell = validation.positive("dwell_time", dwell_time, 0.0, 1.0, "s")
    stigmate = validation.flag("auto_stigmate", auto_stigmate)
    limit = validation.positive("maximum_focus_change", maximum_focus_change, 0.0, 10e-6, "m")
    scan_size = min(size, 128)  # the series uses small scans, as the instrument's routine does

    def score(focus: float) -> float:
        tem.set("optics.focus", focus)
        return contrast(tem.acquire_stem_images([detector], scan_size, dwell)[0]["data"].astype(float))

    energy, convergence = tem.get("source.acceleration_voltage"), tem.get("optics.convergence_angle")
    depth = electron_wavelength(energy) / convergence**2  # the probe's depth of field

    def sweep(centre: float, span: float, step: float) -> tuple[np.ndarray, np.ndarray]:
        focuses = centre + np.arange(-span, span + step / 2, step)
        return focuses, np.array([score(f) for f in focuses])

    def refine(best: float) -> float:
        focuses, scores = sweep(best, 2 * depth, depth / 5)
        best = float(focuses[int(np.argmax(scores))])
        focuses = best + np.array([-2, -1, 0, 1, 2]) * depth / 5
        curve = np.polyfit(focuses - best, [score(f) for f in focuses], 2)
        if curve[0] < 0:
            best += float(np.clip(-curve[1] / (2 * curve[0]), -2 * depth / 5, 2 * depth / 5))
        tem.set("optics.focus", best)
        return best

    focuses, scores = sweep(tem.get("optics.focus"), limit, depth)
    best = float(focuses[int(np.argmax(scores))])
    if stigmate:  # an astigmatic probe has line foci at ±|C12|: start between them
        focuses, scores = sweep(best, 5 * depth, depth / 3)
        peaks = [i for i in range(1, len(scores) - 1) if scores[i] > 0.3 * scores.max()
                 and scores[i] >= scores[i - 1] and scores[i] >= scores[i + 1]]
        if len(peaks) >= 2 and focuses[peaks[-1]] - focuses[peaks[0]] > depth:
            best = float((focuses[peaks[0]] + focuses[peaks[-1]]) / 2)
        tem.set("optics.focus", best)
        _stem_stigmate(tem, detector, scan_size, dwell)
    refine(best)
    a, b = tem.hardware.stigmator_strength * np.array(tem.get("optics.objective_stigmator"))
    return {"defocus": tem.get("optics.defocus"), "astigmatism": (float(a), float(b))}


def _stem_stigmate(tem: TemInstrument, detector: str, size: int, dwell: float) -> None:
    """Stigmator search for the highest contrast: a coarse grid over ±0.3 (±15 nm of astigmatism, the
    residual after column alignment), since a lattice's contrast vanishes a few nm away from the
    optimum and leaves nothing to climb; then a pattern search in finer steps."""
    def score(point: np.ndarray, pixels: int) -> float:
        tem.set("optics.objective_stigmator", tuple(np.clip(point, -1, 1)))
        return contrast(tem.acquire_stem_images([detector], pixels, dwell)[0]["data"].astype(float))

    start = np.array(tem.get("optics.objective_stigmator"))
    offsets = np.arange(-0.3, 0.3001, 0.05)
    grid = [start + np.array([dx, dy]) for dx in offsets for dy in offsets]
    point = grid[int(np.argmax([score(p, min(size, 64)) for p in grid]))]
    best = score(point, size)
    for step in (0.02, 0.005):  # a pattern search from the best grid point
        improved = True
        while improved:
            improved = False
            for direction in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                candidate = point + step * np.array(direction)
                value = score(candidate, size)
                if value > best:
                    point, best, improved = candidate, value, True
    tem.set("optics.objective_stigmator", tuple(np.clip(point, -1, 1)))
