"""STEM: the probe scanned over the shared sample, and what each detector collects.

Two ways to compute a frame, chosen per server and per request:

- ``interactive``: thin-sample physics that is fast enough to drive live — incoherent imaging for
  dark-field detectors (screened-Rutherford cross-sections convolved with the probe) and reciprocity
  for bright-field ones (the plane-wave exit wave seen through the probe-forming aperture);
- ``exact``: multislice of every probe position, by the hardware's ``tem_engine``: ``fast``
  (:mod:`twin.physics.fast_stem`: the transmission functions built once per scan, each probe through a
  window of its reach) or ``abtem`` (abTEM's own scan); ``prism``: abTEM's PRISM, interpolation 4.

Scans whose step cannot resolve the lattice and whose area holds more atoms than the twin simulates
(micrometre fields of view) see the specimen's projected mass (``continuum``): the crystal as a uniform
film, the support film, its holes, flakes and contamination by what they scatter.

Signals are fractions of the beam reaching each detector at each probe position, on the scan grid
(``[row, column]``, rows along the scan's +v axis, columns along +u, pixel centres).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers
from scipy import ndimage

from twin import validation
from twin.constants import ANGSTROM
from twin.instruments.tem.hardware import ScanningDetector, TemHardware
from twin.instruments.tem.imaging import HrtemSimulator, atoms_in_view, exit_wave_spectrum
from twin.instruments.work import Cost, fft_seconds_per_unit, fft_units
from twin.physics import fast_stem, stem
from twin.physics import tem as tem_physics
from twin.physics.ctf import Aberrations, electron_wavelength
from twin.physics.tem import SimulationGrid
from twin.sample import Sample, Window
from twin.sample.coarse import BYTES_PER_POINT, CoarseGrid, areal_densities
from twin.validation import brief

MODES = ("interactive", "exact", "prism")
PRISM_INTERPOLATION = 4
_WAVE_BATCH_BYTES = 64 * 2**20  # exact mode's probe waves at a time (see stem.exact_annular_scan)
_EXACT_CELLS = 16  # exact scans whose cells' padding and slice thickness are remembered


SHORTEST_DWELL = 10e-9  # s: the scan generator's fastest pixel


def scan_region(region: Any) -> tuple[float, float, float, float]:
    """A relative scan region (left, top, width, height) in 0..1; ``None`` is the whole field."""
    if region is None:
        return (0.0, 0.0, 1.0, 1.0)
    if isinstance(region, dict):
        region = [region.get(k) for k in ("left", "top", "width", "height")]
    if not isinstance(region, (list, tuple)) or len(region) != 4:
        raise TypeError(
            f"region must be (left, top, width, height) as fractions of the scan field, got {brief(region)}"
        )
    left = validation.real("region left", region[0], 0.0, 1.0)
    top = validation.real("region top", region[1], 0.0, 1.0)
    width = validation.positive("region width", region[2], 0.0, 1.0 - left)
    height = validation.positive("region height", region[3], 0.0, 1.0 - top)
    return (left, top, width, height)



@dataclass(frozen=True)
class Scan:
    """Where the probe goes: a square field of view (m) centred on ``centre`` (sample frame), turned
    by ``rotation`` (rad), ``size`` pixels across; ``region`` = (left, top, width, height) as fractions
    of the field, ``top`` counted from the image's top edge (largest v)."""

    centre: tuple[float, float]
    field_of_view: float
    rotation: float
    size: int
    region: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0)

    @property
    def step(self) -> float:
        return self.field_of_view / self.size

    @property
    def first_pixel(self) -> tuple[int, int]:
        """Column and row (in full-frame pixels) of the region's first pixel (lowest u and v)."""
        left, top, _, height = self.region
        rows = self.shape[0]
        return int(round(left * self.size)), self.size - int(round(top * self.size)) - rows

    @property
    def shape(self) -> tuple[int, int]:
        """(rows, columns) of the scanned region."""
        _, _, width, height = self.region
        return max(1, int(round(height * self.size))), max(1, int(round(width * self.size)))

    def scan_coordinates(self) -> tuple[np.ndarray, np.ndarray]:
        """u (columns) and v (rows) of the probe positions relative to the centre (m)."""
        c0, r0 = self.first_pixel
        rows, cols = self.shape
        u = -self.field_of_view / 2 + (c0 + np.arange(cols) + 0.5) * self.step
        v = -self.field_of_view / 2 + (r0 + np.arange(rows) + 0.5) * self.step
        return u, v

    def to_sample(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Scan-frame offsets (m) to sample-frame coordinates."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        return self.centre[0] + c * u - s * v, self.centre[1] + s * u + c * v

    def to_scan(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sample-frame coordinates (m) to scan-frame offsets from the centre."""
        c, s = np.cos(self.rotation), np.sin(self.rotation)
        dx, dy = x - self.centre[0], y - self.centre[1]
        return c * dx + s * dy, -s * dx + c * dy

    def unrotated_window(self) -> Window:
        """The scanned region in the sample frame as if the scan were not rotated (exact when it isn't)."""
        u, v = self.scan_coordinates()
        half = self.step / 2
        cx, cy = self.centre
        return Window(cx + u[0] - half, cy + v[0] - half, cx + u[-1] + half, cy + v[-1] + half)

    def bounding_window(self, margin: float) -> Window:
        """The sample-frame rectangle holding the scanned region grown by ``margin`` (m)."""
        u, v = self.scan_coordinates()
        uu = np.array([u[0], u[-1], u[0], u[-1]]) + np.array([-1, 1, -1, 1]) * (margin + self.step)
        vv = np.array([v[0], v[0], v[-1], v[-1]]) + np.array([-1, -1, 1, 1]) * (margin + self.step)
        x, y = self.to_sample(uu, vv)
        return Window(float(x.min()), float(y.min()), float(x.max()), float(y.max()))


def _coarse_grid(scan: Scan) -> CoarseGrid:
    """The grid of the scan's step (on the global lattice of that step) holding every probe position."""
    area, step = scan.bounding_window(0.0), scan.step
    ix0, iy0 = int(np.floor(area.x_min / step)), int(np.floor(area.y_min / step))
    shape = (int(np.ceil(area.y_max / step)) - iy0 + 1, int(np.ceil(area.x_max / step)) - ix0 + 1)
    return CoarseGrid(ix0, iy0, step / ANGSTROM, shape)


class StemSimulator:
    """Turns scans of the sample into per-detector signals (fractions of the beam)."""

    def __init__(self, sample: Sample, hardware: TemHardware, hrtem: HrtemSimulator) -> None:
        self.sample = sample
        self.hardware = hardware
        self.exit_waves = hrtem.exit_waves  # one byte budget for every cached wave
        self._slice_count: int | None = None
        self._exact_cells: dict[tuple, tuple[int, float]] = {}  # exact scans' cells: padding, thickness

    def method(
        self, scan: Scan, energy: float, convergence_angle: float, aberrations: Aberrations,
        detectors: list[ScanningDetector], mode: str, tilt: tuple[float, float] = (0.0, 0.0),
    ) -> str:
        """How :meth:`signals` computes this scan: ``mode``, or ``continuum`` when the scan step
        cannot resolve the lattice and the area holds more atoms than the twin simulates. Raises a
        ``ValueError`` naming the cause when the scan is more than the twin simulates."""
        reach = stem.probe_reach(energy, convergence_angle, aberrations)
        area = scan.bounding_window(reach)
        atoms = self.sample.atom_density() * area.width * area.height / (np.cos(tilt[0]) * np.cos(tilt[1]))
        limit, hardware = self.hardware.multislice_atom_limit, self.hardware
        where = f"size = {scan.size} over scan_field_of_view = {scan.field_of_view:.4g} m"
        if atoms > limit:
            if scan.step >= self.sample.lattice_spacing / 2:
                return "continuum"
            raise ValueError(f"{where} resolves the lattice over {atoms:.3g} atoms, more than the twin "
                             f"simulates ({limit:.3g}); use a smaller size or field of view")
        positions = scan.size**2
        for detector in detectors:
            if mode == "interactive" and detector.inner >= convergence_angle:
                continue
            if mode == "interactive":
                grid = self._bright_field_grid(scan, energy, convergence_angle, detector, reach)
            else:
                probe_limit = hardware.prism_probe_limit if mode == "prism" else hardware.exact_probe_limit
                if positions > probe_limit:
                    raise ValueError(f"mode = {mode!r} at size = {scan.size} runs {positions} probe "
                                     f"positions, more than the twin simulates in this mode ({probe_limit}); "
                                     "use a smaller size or mode 'interactive'")
                grid = self._exact_grid(scan, energy, detector, reach, mode)
            if grid.n > hardware.grid_point_limit:
                raise ValueError(
                    f"{where} needs a simulation grid of {grid.n}² points for detector {detector.name} "
                    f"in mode {mode!r}, more than the twin simulates ({hardware.grid_point_limit}²); use a "
                    "smaller size" + (" or mode 'interactive'" if mode != "interactive" else "")
                )
        return mode

    def cost(
        self, scan: Scan, energy: float, convergence_angle: float, aberrations: Aberrations,
        detectors: list[ScanningDetector], mode: str,
    ) -> Cost:
        """What :meth:`signals` will take for this scan (``mode`` as returned by :meth:`method`), from
        the size of the grids it uses and this machine's FFT speed. The work per grid point (in FFTs)
        is calibrated against measured runs (graphene, 80 kV, 2 cores): within a factor of 2."""
        if mode == "continuum":  # the projected mass on a grid over the scan, then one read per probe
            points = int(np.prod(_coarse_grid(scan).shape))
            return Cost(4 * fft_units(points) * fft_seconds_per_unit(),
                        BYTES_PER_POINT * points + 8 * scan.shape[0] * scan.shape[1] * len(detectors))
        unit = fft_seconds_per_unit()
        reach = stem.probe_reach(energy, convergence_angle, aberrations)
        slices = self.slices()
        rows, cols = scan.shape
        seconds, peak = 0.0, 0
        for detector in detectors:
            if mode == "interactive" and detector.inner >= convergence_angle:
                m = int(np.ceil(scan.step * 8.0 * convergence_angle / electron_wavelength(energy)))
                pad = 2 * int(np.ceil(reach / (scan.step / m))) + 8
                points = (m * rows + pad) * (m * cols + pad)
                seconds += 6 * fft_units(points) * unit + 0.05  # spreading the atoms, the FFTs over the band
                peak = max(peak, 48 * points)
            elif mode == "interactive":
                points = self._bright_field_grid(scan, energy, convergence_angle, detector, reach).n ** 2
                seconds += (8 * 68 + 2 * slices) * fft_units(points) * unit  # 64 quadrature samples
                peak = max(peak, 14 * 16 * points)
            else:
                grid = self._exact_grid(scan, energy, detector, reach, mode)
                points = grid.n**2
                per_probe = 3 * (2 * slices + 2) * fft_units(points) * unit
                if mode == "prism":
                    beams = np.pi * (convergence_angle * grid.n * grid.step / electron_wavelength(energy)
                                     / PRISM_INTERPOLATION) ** 2
                    reduce = rows * cols * beams * points / PRISM_INTERPOLATION**2 * 2e-9  # s per sum term
                    seconds += beams * per_probe / 3 + reduce  # one plane wave a beam, batched
                    peak = max(peak, int(beams * points * 12) + 4 * slices * points)
                elif self.hardware.tem_engine == "fast":
                    window = fast_stem.window_points(grid, energy, convergence_angle, aberrations,
                                                     slices * tem_physics.SLICE_THICKNESS, detector.outer)
                    seconds += 3 * (2 * slices + 2) * fft_units(points) * unit  # the transmission functions
                    seconds += rows * cols * 2 * 2 * slices * fft_units(window**2) * unit
                    peak = max(peak, 16 * slices * points + 4 * fast_stem.BATCH_BYTES)
                else:
                    seconds += rows * cols * per_probe
                    peak = max(peak, 4 * slices * points + 4 * _WAVE_BATCH_BYTES)
        return Cost(seconds, peak + 8 * rows * cols * len(detectors))

    def slices(self) -> int:
        """Slices of a multislice through the sample (from a 1 nm² piece of it), found once."""
        if self._slice_count is None:
            piece = atoms_in_view(self.sample, Window(0.0, 0.0, 1e-9, 1e-9), (0.0, 0.0))
            self._slice_count = tem_physics.slice_count(piece)
        return self._slice_count

    def signals(
        self, scan: Scan, energy: float, convergence_angle: float, aberrations: Aberrations,
        detectors: list[ScanningDetector], mode: str, tilt: tuple[float, float] = (0.0, 0.0),
        progress: Callable[[float], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """The fraction of the beam each detector collects at each probe position of ``scan``
        (``mode`` as returned by :meth:`method``); ``progress(fraction)`` is told how far it is."""
        if mode == "continuum":
            densities = self._densities_at_probes(scan, tilt)
            return {d.name: self._continuum(d, energy, convergence_angle, densities) for d in detectors}
        reach = stem.probe_reach(energy, convergence_angle, aberrations)
        atoms = atoms_in_view(self.sample, scan.bounding_window(reach), tilt)
        window = atoms.info["window"]
        x = window["x_min"] + atoms.positions[:, 0] * ANGSTROM
        y = window["y_min"] + atoms.positions[:, 1] * ANGSTROM
        u, v = scan.to_scan(x, y)
        signals = {}
        for k, detector in enumerate(detectors):
            def step(fraction: float, k: int = k) -> None:
                if progress is not None:
                    progress((k + fraction) / len(detectors))

            if mode == "interactive" and detector.inner >= convergence_angle:
                signals[detector.name] = self._dark_field(scan, u, v, atoms, energy, convergence_angle,
                                                          aberrations, detector)
            elif mode == "interactive":
                signals[detector.name] = self._bright_field(scan, u, v, atoms, energy, convergence_angle,
                                                            aberrations, detector, reach, tilt, step)
            else:
                signals[detector.name] = self._exact(scan, u, v, atoms, energy, convergence_angle,
                                                     aberrations, detector, reach, mode, tilt, step)
            step(1.0)
        return signals

    def _densities_at_probes(self, scan: Scan, tilt: tuple[float, float]) -> dict[str, np.ndarray]:
        """Atoms per m² of each element (projected along the beam) under each probe position: the
        specimen's projected mass on a grid of the scan's step, read where the probe sits."""
        grid, step = _coarse_grid(scan), scan.step
        ix0, iy0 = grid.ix0, grid.iy0
        densities = areal_densities(self.sample, grid)
        u, v = scan.scan_coordinates()
        x, y = scan.to_sample(u[None, :], v[:, None])
        at = (y / step - iy0 - 0.5, x / step - ix0 - 0.5)  # fractional pixel indices (row, column)
        stretch = 1.0 / (np.cos(tilt[0]) * np.cos(tilt[1]))
        return {symbol: ndimage.map_coordinates(density, at, order=1, mode="nearest") * stretch / ANGSTROM**2
                for symbol, density in densities.items()}

    @staticmethod
    def _continuum(detector: ScanningDetector, energy: float, convergence_angle: float,
                   densities: dict[str, np.ndarray]) -> np.ndarray:
        """Signals where the step is far coarser than the lattice, from the atoms per m² under each probe:
        incoherent scattering into the detector's angles, plus for a detector inside the probe's cone the
        part of the unscattered cone it collects (the beam scattered out of the cone is lost)."""
        alpha = convergence_angle
        inner, outer = max(detector.inner, alpha), max(detector.outer, alpha)
        scattered_in = scattered_out = 0.0
        for symbol, density in densities.items():
            z = np.array([atomic_numbers[symbol]])
            into, out_of = (float(stem.annular_cross_section(z, energy, lo, hi)[0])
                            for lo, hi in ((inner, outer), (alpha, 1.0)))
            scattered_in = scattered_in + density * into
            scattered_out = scattered_out + density * out_of
        if detector.inner >= alpha:
            return np.asarray(scattered_in, dtype=float)
        cone = (min(detector.outer, alpha) ** 2 - detector.inner**2) / alpha**2
        return np.asarray(cone * (1.0 - scattered_out) + scattered_in, dtype=float)

    def _dark_field(self, scan: Scan, u: np.ndarray, v: np.ndarray, atoms: Atoms, energy: float,
                    convergence_angle: float, aberrations: Aberrations,
                    detector: ScanningDetector) -> np.ndarray:
        pu, pv = scan.scan_coordinates()
        origin = (pu[0] - scan.step / 2, pv[0] - scan.step / 2)
        return stem.incoherent_annular_image(
            np.column_stack([u, v]), atoms.numbers, origin, scan.step, scan.shape, energy,
            convergence_angle, aberrations, detector.inner, detector.outer,
        )

    @staticmethod
    def _grid(scan: Scan, reach: float, oversampling: int, divisible_by: int = 1) -> SimulationGrid:
        """A square grid over the scanned region plus the probe's reach, ``oversampling`` points per
        scan step (every probe position a grid point when it is odd), ``n`` divisible as asked."""
        pad = int(np.ceil(reach / scan.step)) + 1
        while (oversampling * (max(scan.shape) + 2 * pad)) % divisible_by:
            pad += 1
        return SimulationGrid(max(scan.shape), pad, scan.step, oversampling)

    @staticmethod
    def _cell(scan: Scan, u: np.ndarray, v: np.ndarray, atoms: Atoms, grid: SimulationGrid) -> Atoms:
        """The atoms inside ``grid``'s area, in the scan frame, relative to its corner (Å)."""
        pu, pv = scan.scan_coordinates()
        corner_u, corner_v = pu[0] - scan.step / 2 - grid.padding, pv[0] - scan.step / 2 - grid.padding
        local = np.column_stack([u - corner_u, v - corner_v, atoms.positions[:, 2] * ANGSTROM]) / ANGSTROM
        side = grid.n * grid.step / ANGSTROM
        inside = np.all((local[:, :2] >= 0) & (local[:, :2] < side), axis=1)
        return Atoms(numbers=atoms.numbers[inside], positions=local[inside])

    def _bright_field(self, scan: Scan, u: np.ndarray, v: np.ndarray, atoms: Atoms, energy: float,
                      convergence_angle: float, aberrations: Aberrations, detector: ScanningDetector,
                      reach: float, tilt: tuple[float, float],
                      progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Reciprocity: the exit wave of a plane wave, seen through the probe aperture, on a grid fine
        enough for the detector; probe positions are every ``m``-th grid point (``m`` odd)."""
        grid = self._bright_field_grid(scan, energy, convergence_angle, detector, reach)
        m = grid.oversampling
        engine = self.hardware.tem_engine
        key = ("stem-bf", id(self.sample), self.sample.version, scan, grid, energy, tilt, engine)

        def exit_wave() -> np.ndarray:
            return exit_wave_spectrum(self._cell(scan, u, v, atoms, grid), grid, energy, engine)

        spectrum = self.exit_waves.get_or_compute(key, exit_wave)
        signal = stem.bright_field_image(spectrum, grid.step, energy, convergence_angle, aberrations,
                                         detector.inner, detector.outer, progress=progress)
        rows, cols = scan.shape
        r = m * (grid.pad + np.arange(rows)) + (m - 1) // 2
        c = m * (grid.pad + np.arange(cols)) + (m - 1) // 2
        return signal[np.ix_(r, c)]

    def _bright_field_grid(self, scan: Scan, energy: float, convergence_angle: float,
                           detector: ScanningDetector, reach: float) -> SimulationGrid:
        """Fine enough for the detector; probe positions every ``m``-th grid point (``m`` odd)."""
        finest = 2 * electron_wavelength(energy) / (3 * (convergence_angle + detector.outer))
        m = int(np.ceil(scan.step / finest))
        m += 1 - m % 2  # odd, so that pixel centres are grid points
        return self._grid(scan, reach, m)

    def _exact_grid(self, scan: Scan, energy: float, detector: ScanningDetector, reach: float,
                    mode: str) -> SimulationGrid:
        interpolation = PRISM_INTERPOLATION if mode == "prism" else 1
        oversampling = stem.exact_oversampling(scan.step, energy, detector.outer)
        return self._grid(scan, reach, oversampling, interpolation)

    def _exact(self, scan: Scan, u: np.ndarray, v: np.ndarray, atoms: Atoms, energy: float,
               convergence_angle: float, aberrations: Aberrations, detector: ScanningDetector,
               reach: float, mode: str, tilt: tuple[float, float],
               progress: Callable[[float], None] | None = None) -> np.ndarray:
        interpolation = PRISM_INTERPOLATION if mode == "prism" else 1
        grid = self._exact_grid(scan, energy, detector, reach, mode)
        if mode == "exact" and self.hardware.tem_engine == "fast":
            return self._fast_exact(scan, u, v, atoms, energy, convergence_angle, aberrations, detector, grid,
                                    tilt, progress)
        square = stem.exact_annular_scan(self._cell(scan, u, v, atoms, grid), grid, energy, convergence_angle,
                                         aberrations, detector.inner, detector.outer, interpolation, progress)
        rows, cols = scan.shape
        return square[:rows, :cols]

    def _fast_exact(self, scan: Scan, u: np.ndarray, v: np.ndarray, atoms: Atoms, energy: float,
                    convergence_angle: float, aberrations: Aberrations, detector: ScanningDetector,
                    grid: SimulationGrid, tilt: tuple[float, float],
                    progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Exact mode by :mod:`twin.physics.fast_stem`. The slices' transmission functions of the scan's
        cell are cached: a new focus or detector on the same scan runs the probes alone, through a cell
        padded at least as ``grid`` (the padding grows with the probe's reach)."""
        scanned = ("stem-exact", id(self.sample), self.sample.version, scan, grid.sampling, grid.oversampling,
                   energy, tilt)
        pad, thickness = self._exact_cells.get(scanned, (-1, 0.0))
        transmission = self.exit_waves.get((*scanned, pad)) if pad >= grid.pad else None
        if transmission is not None:
            grid = replace(grid, pad=pad)
        else:
            cell = self._cell(scan, u, v, atoms, grid)
            built, thickness = fast_stem.transmissions(cell.numbers, cell.positions, grid, energy)
            transmission = self.exit_waves.get_or_compute((*scanned, grid.pad), lambda: built)
            self._exact_cells[scanned] = (grid.pad, thickness)
            while len(self._exact_cells) > _EXACT_CELLS:
                self._exact_cells.pop(next(iter(self._exact_cells)))
        return fast_stem.annular_scan(transmission, thickness, grid, scan.shape, energy, convergence_angle,
                                      aberrations, [(detector.inner, detector.outer)], progress=progress)[0]
