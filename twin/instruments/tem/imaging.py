"""HRTEM imaging of the shared sample: which atoms, on which grid, through which lens.

Exit waves are cached per (sample version, window, grid, energy, tilt), so a focus series, a
stigmator sweep or a repeated exposure only re-applies the lens; lens kernels are cached too. Both
caches are bounded in bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from twin.instruments.cache import ArrayCache
from twin.instruments.tem.hardware import TemHardware
from twin.physics import tem as tem_physics
from twin.physics.ctf import (
    Aberrations,
    Coherence,
    delocalization,
    electron_wavelength,
    information_limit,
    transfer_function,
)
from twin.physics.tem import SimulationGrid
from twin.sample import Sample, Window

ANGSTROM = 1e-10
_TILT_MARGIN = 2e-9  # m of extra sample fetched around a tilted view (its height range projects in)


@dataclass(frozen=True)
class View:
    """What one camera acquisition images and how: the window (m, sample frame), the image size,
    the simulation grid (``None`` when the crystal images as a uniform film), optics and tilt."""

    window: Window
    field_of_view: float  # exact, as set by the optics (window.width may differ in the last bit)
    size: int
    grid: SimulationGrid | None
    energy: float
    aberrations: Aberrations
    coherence: Coherence
    tilt: tuple[float, float] = (0.0, 0.0)  # alpha, beta (rad) about the window's centre
    beam_tilt: tuple[float, float] = (0.0, 0.0)  # illumination angle (rad), x and y

    @property
    def method(self) -> str:
        return "continuum" if self.grid is None else "multislice"


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
        label: str = "", beam_tilt: tuple[float, float] = (0.0, 0.0),
    ) -> View:
        """Plan a ``size``² image of the square ``field_of_view`` (m) centred on ``centre`` (m);
        refuses views beyond the simulation limit, naming the ``sizes`` that would work."""
        coherence = self.hardware.coherence(energy)
        fov = field_of_view
        grid = self.grid_for(fov, size, energy, aberrations, coherence)
        if grid is not None and self.atoms_in_view(fov, grid, tilt) > self.hardware.multislice_atom_limit:
            usable = [
                s for s in sizes
                if (g := self.grid_for(fov, s, energy, aberrations, coherence)) is None
                or self.atoms_in_view(fov, g, tilt) <= self.hardware.multislice_atom_limit
            ]
            raise ValueError(
                f"size = {size} at {label or f'{fov:.3g} m field of view'} resolves the "
                f"lattice over {self.atoms_in_view(fov, grid, tilt):.3g} atoms, more than the twin simulates "
                f"({self.hardware.multislice_atom_limit:.3g}); allowed sizes here: "
                f"{', '.join(map(str, sorted(usable))) or 'none'}, or a higher magnification"
            )
        window = Window.around(centre[0], centre[1], fov, fov)
        return View(window, fov, size, grid, energy, aberrations, coherence, tilt, beam_tilt)

    def grid_for(
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

    def atoms_in_view(self, fov: float, grid: SimulationGrid, tilt: tuple[float, float]) -> float:
        """How many atoms the multislice of this view would hold (estimate)."""
        stretch = 1.0 / (np.cos(tilt[0]) * np.cos(tilt[1]))
        return self.sample.atom_density() * (fov + 2 * grid.padding) ** 2 * stretch

    def intensity(self, view: View) -> np.ndarray:
        """Noise-free image (float32, ``size``², vacuum = 1) of ``view``."""
        if view.grid is None:
            return np.ones((view.size, view.size), dtype=np.float32)
        grid = view.grid
        padded = view.window.grown(grid.padding)
        # Cache the exit wave of a window snapped to a coarse lattice and move the rest exactly in
        # Fourier space: drift and small stage errors then re-use it (the padding absorbs the move).
        anchor_step = max(grid.padding / 4, grid.step)
        ix, iy = (int(np.rint(v / anchor_step)) for v in (padded.x_min, padded.y_min))
        x0, y0, side = ix * anchor_step, iy * anchor_step, grid.n * grid.step
        anchor = Window(x0, y0, x0 + side, y0 + side)

        def exit_wave() -> np.ndarray:
            atoms = self.atoms(anchor, view.tilt)
            return tem_physics.spectrum(tem_physics.exit_wave(atoms, grid, view.energy))

        def kernel() -> np.ndarray:
            shape = (grid.n, grid.n)
            return transfer_function(shape, grid.step, view.energy, view.aberrations, view.coherence)

        wave_key = (id(self.sample), self.sample.version, ix, iy, grid, view.energy, view.tilt)
        spectrum = self.exit_waves.get_or_compute(wave_key, exit_wave)
        lens = self.kernels.get_or_compute((grid, view.energy, view.aberrations, view.coherence), kernel)
        if view.beam_tilt != (0.0, 0.0):  # tilted illumination of a thin specimen: the spectrum moves
            spectrum = tem_physics.tilted_illumination(spectrum, grid, view.energy, view.beam_tilt)
        moved = tem_physics.translation(grid.n, grid.step, padded.x_min - x0, padded.y_min - y0)
        moved *= lens
        return tem_physics.hrtem_intensity(spectrum, moved, grid)

    def diffraction_pattern(
        self, centre: tuple[float, float], size: int, pixel_angle: float, energy: float,
        tilt: tuple[float, float] = (0.0, 0.0),
    ) -> tuple[np.ndarray, Window]:
        """The far field of the exit wave on ``size``² camera pixels of ``pixel_angle`` (rad) each,
        as the fraction of the beam landing on each pixel (direct beam in the centre).

        The simulated area is ``lambda / pixel_angle`` wide, so its reciprocal-lattice spacing is one
        camera pixel; the grid is twice as fine as needed so that abTEM's anti-aliasing band reaches
        beyond the camera's edge. Returns the pattern and the area that diffracted.
        """
        wavelength = electron_wavelength(energy)
        side = wavelength / pixel_angle
        grid = SimulationGrid(size=2 * size, pad=0, sampling=side / (2 * size))
        area = Window.around(centre[0], centre[1], side, side)
        key = ("diffraction", id(self.sample), self.sample.version, area, grid, energy, tilt)
        wave = self.exit_waves.get_or_compute(
            key, lambda: tem_physics.exit_wave(self.atoms(area, tilt), grid, energy)
        )
        far_field = np.abs(np.fft.fftshift(np.fft.fft2(wave))) ** 2 / grid.n**4
        crop = slice(size // 2, size // 2 + size)
        return far_field[crop, crop], area

    def atoms(self, window: Window, tilt: tuple[float, float]) -> Atoms:
        """The atoms seen in projection through ``window`` at ``tilt`` (Å, relative to its corner)."""
        return atoms_in_view(self.sample, window, tilt)


def atoms_in_view(sample: Sample, window: Window, tilt: tuple[float, float] = (0.0, 0.0)) -> Atoms:
    """The atoms seen in projection through ``window`` with the stage tilted by ``tilt`` (alpha,
    beta, rad) about the window's centre; positions in Å relative to the window's corner."""
    if tilt == (0.0, 0.0):
        return sample.atoms_in_window(window)
    alpha, beta = tilt
    cx, cy = (window.x_min + window.x_max) / 2, (window.y_min + window.y_max) / 2
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
