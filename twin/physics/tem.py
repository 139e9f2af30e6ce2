"""Plane-wave HRTEM: abTEM multislice of the atoms in view, then the objective lens.

Images are ``[row, column] = [y, x]`` with pixel ``(r, c)`` centred at
``(x0 + (c + 1/2) p, y0 + (r + 1/2) p)`` for a window whose lower-left corner is ``(x0, y0)`` and
pixel size ``p``. abTEM samples at ``i * p`` and indexes ``[x, y]``; the half-pixel shift and the
transpose are applied here so that callers never see abTEM's conventions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import ducc0
import numpy as np
import scipy.fft
from ase import Atoms

from twin.common.fft_threads import FFT_THREADS
from twin.constants import ANGSTROM
from twin.physics.ctf import electron_wavelength

if TYPE_CHECKING:  # abTEM is imported where it is used: it takes seconds, and the fast engine needs none
    import abtem

# FFTW plans chosen by estimate, not by timing: a measured plan differs from run to run (and with a
# process's history), changing results in the last bits, which the shot noise then amplifies.
ABTEM_CONFIG = {"diagnostics.progress_bar": False, "dask.lazy": False, "device": "cpu",
                "fftw.planning_effort": "FFTW_ESTIMATE"}
_configured = False

SLICE_THICKNESS = 2e-10  # m; thin 2-D crystals need only a few slices
Z_MARGIN = 0.5e-10  # m above and below the atoms; the infinite projection needs no more
PAD_MIN = 1e-9  # m of sample simulated beyond each edge, so periodic wrap-around stays outside


@dataclass(frozen=True)
class SimulationGrid:
    """Square simulation grid: the camera's ``size`` pixels plus ``pad`` pixels on every side,
    each camera pixel simulated as ``oversampling``² grid points that the pixel averages."""

    size: int
    pad: int
    sampling: float  # m per camera pixel
    oversampling: int = 1

    @property
    def n(self) -> int:
        """Grid points per side."""
        return self.oversampling * (self.size + 2 * self.pad)

    @property
    def step(self) -> float:
        """Distance (m) between grid points."""
        return self.sampling / self.oversampling

    @property
    def padding(self) -> float:
        """Extra sample (m) simulated on each side of the image."""
        return self.pad * self.sampling


def is_smooth(n: int) -> bool:
    """Whether ``n`` is a positive product of 2s, 3s and 5s (1 included)."""
    if n < 1:
        return False
    for factor in (2, 3, 5):
        while n % factor == 0:
            n //= factor
    return n == 1


def simulation_grid(
    field_of_view: float, size: int, padding: float = PAD_MIN, oversampling: int = 1
) -> SimulationGrid:
    """Grid for an image of ``size``² pixels covering ``field_of_view`` (m), with about
    ``padding`` (m) of extra sample on every side.

    The padding is at least 1/32 of the image and at most half of it on each side, and may fall
    10 % short of ``padding`` so that the grid has a 5-smooth number of points (fast FFTs).
    """
    if not is_smooth(oversampling):
        raise ValueError(f"oversampling = {oversampling}: give a positive product of 2s, 3s and 5s (no grid "
                         "of it times any size has fast FFTs)")
    sampling = field_of_view / size
    pad = min(max(int(np.ceil(0.9 * padding / sampling)), int(np.ceil(size / 32)), 1), max(size // 2, 1))
    while not is_smooth(oversampling * (size + 2 * pad)):
        pad += 1
    return SimulationGrid(size=size, pad=pad, sampling=sampling, oversampling=oversampling)


def oversampling_for(pixel: float, information_limit: float) -> int:
    """1, or 2 when the simulation's anti-aliasing band (2/3 of the camera's Nyquist frequency)
    would cut frequencies below ``information_limit`` (1/m) that the camera records."""
    return 1 if 1.0 / (3.0 * pixel) >= information_limit else 2


def padding_for(delocalization: float) -> float:
    """Padding (m) that keeps wrap-around outside the image: 1.2 × the delocalisation, rounded up
    to 1 nm × a power of two so that a focus series shares its exit waves."""
    levels = max(0.0, np.ceil(np.log2(max(1.2 * delocalization / PAD_MIN, 1.0))))
    return PAD_MIN * 2.0**levels


def simulation_cell(atoms: Atoms, grid: SimulationGrid) -> Atoms:
    """A copy of ``atoms`` arranged for abTEM's periodic potential on ``grid``.

    ``atoms`` must have positions in Å relative to the padded simulation area's lower-left corner.
    The copy is shifted by half a pixel (so abTEM's grid point i is the centre of pixel i), lifted
    into a box just thick enough for its heights, and wrapped periodically.
    """
    sampling = grid.step / ANGSTROM
    atoms = atoms.copy()
    positions = atoms.positions
    positions[:, :2] -= sampling / 2
    z_min = positions[:, 2].min() if len(atoms) else 0.0
    z_span = np.ptp(positions[:, 2]) if len(atoms) else 0.0
    positions[:, 2] += Z_MARGIN / ANGSTROM - z_min
    atoms.positions = positions
    side = grid.n * sampling
    atoms.cell = [side, side, z_span + 2 * Z_MARGIN / ANGSTROM]
    atoms.pbc = [True, True, False]
    atoms.wrap()
    return atoms


def slice_count(atoms: Atoms) -> int:
    """How many slices the multislice of ``atoms`` (positions in Å) takes."""
    return slices_for(atoms.positions[:, 2])


def slices_for(z: np.ndarray) -> int:
    """How many slices the multislice of atoms at heights ``z`` (Å) takes: the box from ``Z_MARGIN`` below
    the lowest to ``Z_MARGIN`` above the highest, in slices of at most :data:`SLICE_THICKNESS`."""
    z_span = np.ptp(z) * ANGSTROM if len(z) else 0.0
    return max(1, int(np.ceil((z_span + 2 * Z_MARGIN) / SLICE_THICKNESS)))


def tilted(positions: np.ndarray, alpha: float, beta: float, centre: np.ndarray) -> np.ndarray:
    """``positions`` (N, 3) turned by the stage tilts about ``centre``: beta about the holder's own y axis,
    which the goniometer's alpha then turns about x (``R = R_x(alpha) R_y(beta)``)."""
    ca, sa, cb, sb = np.cos(alpha), np.sin(alpha), np.cos(beta), np.sin(beta)
    about_x = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    about_y = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    return (positions - centre) @ (about_x @ about_y).T + centre


def configure_abtem() -> None:
    """Set abTEM's global configuration to :data:`ABTEM_CONFIG` (once per process; later calls do
    nothing). Every potential the twin builds calls it first; importing this module leaves abTEM's
    configuration as the importer had it."""
    global _configured
    if not _configured:
        import abtem

        abtem.config.set(ABTEM_CONFIG)
        _configured = True


def potential(cell: Atoms, grid: SimulationGrid) -> abtem.Potential:
    """abTEM's projected potential of a :func:`simulation_cell` (Lobato parametrisation); the first one
    sets abTEM's configuration (:func:`configure_abtem`)."""
    import abtem

    configure_abtem()
    return abtem.Potential(
        cell,
        gpts=grid.n,
        slice_thickness=SLICE_THICKNESS / ANGSTROM,
        projection="infinite",
        parametrization="lobato",
    )


def exit_wave(atoms: Atoms, grid: SimulationGrid, energy: float) -> np.ndarray:
    """Exit wave (complex64, ``[y, x]`` on the grid's points, vacuum amplitude 1) of a plane wave
    of ``energy`` (eV).

    ``atoms`` are positioned as for :func:`simulation_cell`.
    """
    import abtem

    projected = potential(simulation_cell(atoms, grid), grid)  # built slice by slice: memory ~ n²
    waves = abtem.PlaneWave(energy=energy).multislice(projected, lazy=False)
    return np.ascontiguousarray(waves.array.T)


def refocus_distance(atoms: Atoms, reference: float) -> float:
    """How far (m) downstream of the specimen's ``reference`` plane (Å, sample frame) the exit wave of
    :func:`exit_wave` describes the specimen, so that the lens can find zero defocus at that plane.

    The beam runs along +z through a box from ``margin`` below the lowest atom to ``margin`` above the
    highest, sliced evenly (as abTEM slices it). Each slice transmits at its entrance, then propagates
    its whole thickness, so an atom acts as if it sat at its slice's entrance, ``delta`` below its true
    height; the wave leaves the box at ``exit``. Undoing ``exit - reference + mean(delta)`` (weights:
    atomic numbers) puts the specimen back at its true heights, seen from the reference plane.
    """
    if len(atoms) == 0:
        return 0.0
    z = atoms.positions[:, 2]
    entrance = z.min() - Z_MARGIN / ANGSTROM
    thickness = np.ptp(z) + 2 * Z_MARGIN / ANGSTROM
    step = thickness / slice_count(atoms)
    delta = z - (entrance + np.floor((z - entrance) / step) * step)
    weights = atoms.numbers.astype(float)
    return float((entrance + thickness - reference + np.average(delta, weights=weights)) * ANGSTROM)


def free_propagation(grid: SimulationGrid, energy: float, distance: float) -> np.ndarray:
    """Multiplier (complex64, ``n``², FFT order) of a wave's spectrum for free flight over ``distance``
    (m) along the beam: ``exp(-i pi lambda distance k²)``, the same as a defocus ``C10 = distance``."""
    k = np.fft.fftfreq(grid.n, grid.step)
    phase = -np.pi * electron_wavelength(energy) * distance * (k[:, None] ** 2 + k[None, :] ** 2)
    return np.exp(1j * phase).astype(np.complex64)


def spectrum(wave: np.ndarray) -> np.ndarray:
    """Fourier transform of a wave (what the lens acts on); cache this, not the wave."""
    return scipy.fft.fft2(wave, workers=-1)


def translation(n: int, step: float, dx: float, dy: float) -> np.ndarray:
    """Multiplier (complex64, ``n``², FFT order) that makes a wave's spectrum describe the wave seen
    from a window moved by ``(dx, dy)`` (m): ``psi(r) -> psi(r + d)``. Exact for periodic waves."""
    k = np.fft.fftfreq(n, step)
    rx = np.exp(2j * np.pi * k * dx).astype(np.complex64)
    ry = np.exp(2j * np.pi * k * dy).astype(np.complex64)
    return ry[:, None] * rx[None, :]


def tilted_illumination(
    wave_spectrum: np.ndarray, grid: SimulationGrid, energy: float, tilt: tuple[float, float]
) -> np.ndarray:
    """The exit-wave spectrum for illumination tilted by ``tilt`` (rad, x and y). For a thin specimen
    the exit wave gains ``exp(2 pi i q.r)`` with ``q = tilt / lambda``; applied in real space, so any
    tilt is exact (the ramp's seam at the periodic boundary lies in the padding)."""
    wavelength = electron_wavelength(energy)
    r = (np.arange(grid.n) + 0.5) * grid.step
    ramp_x = np.exp(2j * np.pi * tilt[0] / wavelength * r).astype(np.complex64)
    ramp_y = np.exp(2j * np.pi * tilt[1] / wavelength * r).astype(np.complex64)
    wave = scipy.fft.ifft2(wave_spectrum, workers=-1) * ramp_y[:, None] * ramp_x[None, :]
    return scipy.fft.fft2(wave, workers=-1, overwrite_x=True)


def hrtem_intensity(wave_spectrum: np.ndarray, transfer: np.ndarray, grid: SimulationGrid) -> np.ndarray:
    """Image intensity (float32, ``size``², vacuum = 1): the exit-wave spectrum through the lens's
    ``transfer`` function (see :func:`twin.physics.ctf.transfer_function`), padding cropped."""
    image_wave = wave_spectrum * transfer
    m = grid.oversampling
    crop = slice(m * grid.pad, m * (grid.pad + grid.size))
    # the inverse FFT along y for every column, along x only for the rows the camera sees (ducc0's FFTs)
    ducc0.fft.c2c(image_wave, axes=(0,), forward=False, inorm=2, out=image_wave, nthreads=FFT_THREADS)
    rows = image_wave[crop]
    ducc0.fft.c2c(rows, axes=(1,), forward=False, inorm=2, out=rows, nthreads=FFT_THREADS)
    cropped = rows[:, crop]
    intensity = cropped.real**2 + cropped.imag**2
    if m > 1:  # each camera pixel collects the electrons landing anywhere on it
        intensity = intensity.reshape(grid.size, m, grid.size, m).mean(axis=(1, 3))
    return intensity.astype(np.float32)
