"""HRTEM imaging of the shared sample: which atoms, on which grid, through which lens.

A camera pixel finer than half the lattice's first-order spacing gets a multislice of the atoms in view
(the hardware's ``tem_engine``: :mod:`twin.physics.fast_multislice`, or abTEM itself); a coarser one (low
and medium magnification) images the specimen's projected mass instead (:mod:`twin.physics.projected_mass`):
the crystal's unresolvable lattice averages out, while the film's Thon rings, holes, flakes, pores and
contamination keep their contrast.

Exit waves are cached per (sample version, window, grid, energy, tilt), so a focus series, a
stigmator sweep or a repeated exposure only re-applies the lens; lens kernels are cached too. Both
caches are bounded in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
from ase import Atoms

from twin.common.cache import ArrayCache
from twin.constants import ANGSTROM
from twin.instruments.tem.hardware import TemHardware
from twin.physics import fast_multislice, projected_mass
from twin.physics import tem as tem_physics
from twin.physics.ctf import (
    Aberrations,
    Coherence,
    delocalization,
    electron_wavelength,
    information_limit,
    spatial_frequencies,
    transfer_function,
)
from twin.physics.tem import SimulationGrid
from twin.sample import Sample, Window
from twin.sample.coarse import CoarseGrid, areal_densities

_TILT_MARGIN = 2e-9  # m of extra sample fetched around a tilted view (its height range projects in)
TEM_ENGINES = ("fast", "abtem")  # what computes plane-wave exit waves (TemHardware.tem_engine)


def exit_wave_spectrum(atoms: Atoms, grid: SimulationGrid, energy: float, engine: str = "fast",
                       distance: float = 0.0) -> np.ndarray:
    """The spectrum (complex64, FFT order, ``[ky, kx]``) of the exit wave of a plane wave of ``energy`` (eV)
    through ``atoms`` (Å, from the padded window's corner; see :func:`twin.physics.tem.simulation_cell`),
    propagated ``distance`` (m) further, by ``engine`` ("fast" or "abtem", :data:`TEM_ENGINES`)."""
    if engine == "abtem":
        wave = tem_physics.spectrum(tem_physics.exit_wave(atoms, grid, energy))
        return wave * tem_physics.free_propagation(grid, energy, distance) if distance else wave
    if engine != "fast":
        raise ValueError(f"tem_engine = {engine!r}: choose one of {', '.join(TEM_ENGINES)}")
    return fast_multislice.exit_wave_spectrum(atoms.numbers, atoms.positions, grid, energy, distance)


@dataclass(frozen=True)
class View:
    """What one camera acquisition images and how: the window (m, sample frame), the image size,
    the simulation grid, optics and tilt; ``continuum`` when the pixels cannot resolve the lattice and
    the specimen images through its projected mass."""

    window: Window
    field_of_view: float  # exact, as set by the optics (window.width may differ in the last bit)
    size: int
    grid: SimulationGrid
    energy: float
    aberrations: Aberrations
    coherence: Coherence
    tilt: tuple[float, float] = (0.0, 0.0)  # alpha, beta (rad) about the window's centre
    beam_tilt: tuple[float, float] = (0.0, 0.0)  # illumination angle (rad), x and y
    aperture: float | None = None  # rad: the objective aperture stops scattering beyond this
    continuum: bool = False

    @property
    def method(self) -> str:
        return "continuum" if self.continuum else "multislice"


@dataclass(frozen=True)
class DiffractionGeometry:
    """Sampling of a selected-area diffraction pattern on ``size``² camera pixels.

    The camera pixel spans ``pixel_angle`` (rad), so a periodic area ``k * lambda / pixel_angle``
    wide puts ``k`` reciprocal-space samples on each camera pixel (summed over ``k``² when ``k > 1``,
    which keeps the area at least ``smallest`` wide). Of that area a square ``area_points`` grid
    points wide diffracts (at most ``largest``, like a selected-area aperture; the rest is dark), so
    a long camera length gives each Bragg spot the width of the aperture's diffraction. Angles beyond
    ``MAX_ANGLE`` are not simulated (the objective's aperture and lenses stop them).
    """

    size: int
    binning: int  # k
    points: int  # grid points across the periodic area
    area_points: int  # grid points across the diffracting area
    sampling: float  # m between grid points

    MAX_ANGLE = 0.25  # rad

    @classmethod
    def plan(cls, size: int, pixel_angle: float, wavelength: float, smallest: float, largest: float
             ) -> DiffractionGeometry:
        side = wavelength / pixel_angle
        binning = max(1, int(np.ceil(smallest / side)))
        edge = min(size * pixel_angle / 2, cls.MAX_ANGLE)  # the largest angle the camera needs
        points = int(np.ceil(binning * side * 3 * edge / wavelength))  # abTEM's band reaches ``edge``
        points += points % 2
        while not tem_physics.is_smooth(points):
            points += 2
        sampling = binning * side / points
        area_points = min(points, max(2, int(round(largest / sampling))))
        while not tem_physics.is_smooth(area_points):  # fast FFTs
            area_points -= 1
        return cls(size, binning, points, area_points, sampling)

    def pattern(self, wave: np.ndarray) -> np.ndarray:
        """The camera's pattern (float64, ``size``², sums to the fraction of the beam that lands on it)
        from the exit ``wave`` of the diffracting area."""
        padded = np.zeros((self.points, self.points), dtype=np.complex64)
        padded[: self.area_points, : self.area_points] = wave
        far = np.abs(np.fft.fftshift(scipy.fft.fft2(padded, workers=-1))) ** 2
        far /= float(self.points) ** 2 * float(self.area_points) ** 2
        k, wide = self.binning, self.size * self.binning
        shift = (self.size // 2) * k + k // 2 - self.points // 2  # direct beam -> centre camera pixel
        lo, hi = max(0, shift), min(wide, shift + self.points)
        camera = np.zeros((wide, wide))
        camera[lo:hi, lo:hi] = far[lo - shift : hi - shift, lo - shift : hi - shift]
        return camera.reshape(self.size, k, self.size, k).sum(axis=(1, 3))


class HrtemSimulator:
    """Turns views of the sample into noise-free camera images (vacuum = 1)."""

    def __init__(self, sample: Sample, hardware: TemHardware) -> None:
        self.sample = sample
        self.hardware = hardware
        self.exit_waves = ArrayCache(hardware.cache_bytes)
        self.kernels = ArrayCache(hardware.kernel_cache_bytes)

    def view(
        self, centre: tuple[float, float], field_of_view: float, size: int, energy: float,
        aberrations: Aberrations, tilt: tuple[float, float] = (0.0, 0.0), sizes: tuple[int, ...] = (),
        label: str = "", beam_tilt: tuple[float, float] = (0.0, 0.0), aperture: float | None = None,
        refuse: bool = True,
    ) -> View:
        """Plan a ``size``² image of the square ``field_of_view`` (m) centred on ``centre`` (m);
        refuses views beyond the simulation limit, naming the ``sizes`` that would work (unless not
        ``refuse``: the view of a column whose known part was checked already)."""
        coherence = self.hardware.coherence(energy)
        fov = field_of_view
        grid = self.grid_for(fov, size, energy, aberrations, coherence)
        too_big = refuse and self._beyond_limits(fov, grid, tilt)
        if too_big:
            usable = [s for s in sizes if not self._beyond_limits(
                fov, self.grid_for(fov, s, energy, aberrations, coherence), tilt)]
            raise ValueError(
                f"size = {size} at {label or f'{fov:.3g} m field of view'} {too_big}; allowed sizes here: "
                f"{', '.join(map(str, sorted(usable))) or 'none'}, or a higher magnification"
            )
        window = Window.around(centre[0], centre[1], fov, fov)
        return View(window, fov, size, grid, energy, aberrations, coherence, tilt, beam_tilt, aperture,
                    self.continuum(fov / size))

    def continuum(self, pixel: float) -> bool:
        """Whether camera pixels of ``pixel`` (m) leave the lattice beyond Nyquist (projected mass)."""
        return pixel >= self.sample.lattice_spacing / 2

    def grid_for(
        self, fov: float, size: int, energy: float, aberrations: Aberrations, coherence: Coherence
    ) -> SimulationGrid:
        """The simulation grid for ``size``² camera pixels over ``fov`` (m): padded against the lens's
        delocalisation; oversampled where the multislice's band would cut recorded frequencies."""
        pixel = fov / size
        oversampling = 1 if self.continuum(pixel) else tem_physics.oversampling_for(
            pixel, information_limit(energy, coherence))
        spread = delocalization(energy, aberrations, coherence, pixel / oversampling)
        return tem_physics.simulation_grid(fov, size, tem_physics.padding_for(spread), oversampling)

    def _beyond_limits(self, fov: float, grid: SimulationGrid, tilt: tuple[float, float]) -> str:
        """Why the simulation of this view is more than the twin simulates ('' when it is not)."""
        atoms, limit = self.atoms_in_view(fov, grid, tilt), self.hardware.multislice_atom_limit
        if atoms > limit and not self.continuum(grid.sampling):
            return f"resolves the lattice over {atoms:.3g} atoms, more than the twin simulates ({limit:.3g})"
        if grid.n > self.hardware.grid_point_limit:
            return (f"needs a simulation grid of {grid.n}² points ({grid.padding:.3g} m of padding for "
                    "the lens's delocalisation), more than the twin simulates "
                    f"({self.hardware.grid_point_limit}²); less defocus or astigmatism also helps")
        return ""

    def atoms_in_view(self, fov: float, grid: SimulationGrid, tilt: tuple[float, float]) -> float:
        """How many atoms the multislice of this view would hold (estimate)."""
        stretch = 1.0 / (np.cos(tilt[0]) * np.cos(tilt[1]))
        return self.sample.atom_density() * (fov + 2 * grid.padding) ** 2 * stretch

    def intensity(self, view: View) -> np.ndarray:
        """Noise-free image (float32, ``size``², vacuum = 1) of ``view``."""
        grid = view.grid
        padded = view.window.grown(grid.padding)
        # Cache the exit wave of a window snapped to a coarse lattice and move the rest exactly in
        # Fourier space: drift and small stage errors then re-use it (the padding absorbs the move).
        # Projected-mass views snap to their own pixels, so the same place gives the same film.
        anchor_step = grid.step if view.continuum else max(grid.padding / 4, grid.step)
        ix, iy = (int(np.rint(v / anchor_step)) for v in (padded.x_min, padded.y_min))
        x0, y0, side = ix * anchor_step, iy * anchor_step, grid.n * grid.step
        anchor = Window(x0, y0, x0 + side, y0 + side)

        def exit_wave() -> np.ndarray:
            if view.continuum:
                coarse = CoarseGrid(ix, iy, grid.step / ANGSTROM, (grid.n, grid.n))
                stretch = 1.0 / (np.cos(view.tilt[0]) * np.cos(view.tilt[1]))
                wave = projected_mass.transmission(areal_densities(self.sample, coarse), coarse.step,
                                                   view.energy, view.aperture, stretch)
                return tem_physics.spectrum(wave)
            atoms = self.atoms(anchor, view.tilt)
            self._check_depth(atoms, grid, view)
            back = -tem_physics.refocus_distance(atoms, self.sample.mean_plane)  # zero defocus: the specimen
            return exit_wave_spectrum(atoms, grid, view.energy, self.hardware.tem_engine, back)

        def kernel() -> np.ndarray:
            shape = (grid.n, grid.n)
            lens = transfer_function(shape, grid.step, view.energy, view.aberrations, view.coherence)
            if view.aperture is not None:  # the objective aperture in the back focal plane
                kx, ky = spatial_frequencies(shape, grid.step)
                lens *= np.hypot(kx, ky) * electron_wavelength(view.energy) <= view.aperture
            return lens

        wave_key = (id(self.sample), self.sample.version, ix, iy, grid, view.energy, view.tilt,
                    view.aperture if view.continuum else self.hardware.tem_engine)
        spectrum = self.exit_waves.get_or_compute(wave_key, exit_wave)
        lens_key = (grid, view.energy, view.aberrations, view.coherence, view.aperture)
        lens = self.kernels.get_or_compute(lens_key, kernel)
        if view.beam_tilt != (0.0, 0.0):  # tilted illumination of a thin specimen: the spectrum moves
            spectrum = tem_physics.tilted_illumination(spectrum, grid, view.energy, view.beam_tilt)
        moved = tem_physics.translation(grid.n, grid.step, padded.x_min - x0, padded.y_min - y0)
        moved *= lens
        return tem_physics.hrtem_intensity(spectrum, moved, grid)

    def _check_depth(self, atoms: Atoms, grid: SimulationGrid, view: View) -> None:
        """Refuse a multislice too deep to simulate (a large view at a high stage tilt)."""
        slices = tem_physics.slice_count(atoms)
        if slices * grid.n**2 > self.hardware.multislice_cell_limit:
            a, b = view.tilt
            raise ValueError(
                f"stage tilt (a, b) = ({a:.3g}, {b:.3g}) rad over a {view.field_of_view:.3g} m view makes "
                f"the specimen {slices * tem_physics.SLICE_THICKNESS:.3g} m deep along the beam: {slices} "
                f"slices of {grid.n}² points, more than the twin simulates "
                f"({self.hardware.multislice_cell_limit:.3g} point-slices); tilt less, use a higher "
                "magnification or a smaller size"
            )

    def diffraction_geometry(self, size: int, pixel_angle: float, energy: float,
                             selected: float | None = None) -> DiffractionGeometry:
        """How the pattern on ``size``² camera pixels of ``pixel_angle`` (rad) is simulated; an SA
        aperture selecting ``selected`` (m) narrows the diffracting area to it, when it is smaller."""
        smallest, largest = self.hardware.diffraction_area
        largest = largest if selected is None else max(smallest, min(largest, selected))
        return DiffractionGeometry.plan(size, pixel_angle, electron_wavelength(energy), smallest, largest)

    def diffraction_pattern(
        self, centre: tuple[float, float], size: int, pixel_angle: float, energy: float,
        tilt: tuple[float, float] = (0.0, 0.0), selected: float | None = None,
    ) -> tuple[np.ndarray, Window]:
        """The far field of the exit wave on ``size``² camera pixels of ``pixel_angle`` (rad) each,
        as the fraction of the beam landing on each pixel (direct beam in the centre pixel).

        The area that diffracts is selected as by a square selected-area aperture (see
        :class:`DiffractionGeometry`). Returns the pattern and the selected area (m, sample frame).
        """
        geometry = self.diffraction_geometry(size, pixel_angle, energy, selected)
        side = geometry.area_points * geometry.sampling
        area = Window.around(centre[0], centre[1], side, side)
        grid = SimulationGrid(size=geometry.area_points, pad=0, sampling=geometry.sampling)
        engine = self.hardware.tem_engine

        def exit_wave() -> np.ndarray:
            atoms = self.atoms(area, tilt)
            if engine == "abtem":
                return tem_physics.exit_wave(atoms, grid, energy)
            spectrum = exit_wave_spectrum(atoms, grid, energy, engine)
            return scipy.fft.ifft2(spectrum, workers=-1, overwrite_x=True)

        key = ("diffraction", id(self.sample), self.sample.version, area, grid, energy, tilt, engine)
        wave = self.exit_waves.get_or_compute(key, exit_wave)
        return geometry.pattern(wave), area

    def atoms(self, window: Window, tilt: tuple[float, float]) -> Atoms:
        """The atoms seen in projection through ``window`` at ``tilt`` (Å, relative to its corner)."""
        return atoms_in_view(self.sample, window, tilt)


def atoms_in_view(sample: Sample, window: Window, tilt: tuple[float, float] = (0.0, 0.0)) -> Atoms:
    """The atoms seen in projection through ``window`` with the stage tilted by ``tilt`` (alpha,
    beta, rad) about the window's centre; positions in Å relative to the window's corner."""
    if tilt == (0.0, 0.0):
        return sample.atoms_in_window(window)
    alpha, beta = tilt
    cx, cy = window.centre
    wider = Window.around(cx, cy, window.width / np.cos(beta) + 2 * _TILT_MARGIN,
                          window.height / np.cos(alpha) + 2 * _TILT_MARGIN)
    atoms = sample.atoms_in_window(wider)
    centre = np.array([(cx - wider.x_min) / ANGSTROM, (cy - wider.y_min) / ANGSTROM, 0.0])
    atoms.positions = tem_physics.tilted(atoms.positions, alpha, beta, centre)
    offset = np.array([window.x_min - wider.x_min, window.y_min - wider.y_min, 0.0]) / ANGSTROM
    atoms.positions -= offset
    x, y = atoms.positions[:, 0], atoms.positions[:, 1]
    inside = (x >= 0) & (x < window.width / ANGSTROM) & (y >= 0) & (y < window.height / ANGSTROM)
    return atoms[inside]
