"""Plane-wave HRTEM: abTEM multislice of the atoms in view, then the objective lens.

Images are ``[row, column] = [y, x]`` with pixel ``(r, c)`` centred at
``(x0 + (c + 1/2) p, y0 + (r + 1/2) p)`` for a window whose lower-left corner is ``(x0, y0)`` and
pixel size ``p``. abTEM samples at ``i * p`` and indexes ``[x, y]``; the half-pixel shift and the
transpose are applied here so that callers never see abTEM's conventions.
"""

from __future__ import annotations

from dataclasses import dataclass

import abtem
import numpy as np
import scipy.fft
from ase import Atoms

from twin.physics.ctf import Aberrations, Coherence, transfer_function

abtem.config.set({"diagnostics.progress_bar": False, "dask.lazy": False, "device": "cpu"})

ANGSTROM = 1e-10
SLICE_THICKNESS = 2e-10  # m; thin 2-D crystals need only a few slices
_Z_MARGIN = 0.5e-10  # m above and below the atoms; the infinite projection needs no more
_PAD_MIN = 1e-9  # m of sample simulated beyond each edge, so periodic wrap-around stays outside


@dataclass(frozen=True)
class SimulationGrid:
    """Square simulation grid: the camera's ``size`` pixels plus ``pad`` pixels on every side."""

    size: int
    pad: int
    sampling: float  # m per pixel

    @property
    def n(self) -> int:
        return self.size + 2 * self.pad

    @property
    def padded_extent(self) -> float:
        """Side of the simulated area (m)."""
        return self.n * self.sampling


def _is_smooth(n: int) -> bool:
    for factor in (2, 3, 5):
        while n % factor == 0:
            n //= factor
    return n == 1


def simulation_grid(field_of_view: float, size: int) -> SimulationGrid:
    """Grid for an image of ``size``² pixels covering ``field_of_view`` (m).

    The padding aims at about 1 nm, kept between 1/32 and 1/8 of the image; the total is the
    even 5-smooth number nearest to that aim (never less than 1/32 padding), so FFTs stay fast.
    """
    sampling = field_of_view / size
    lo = size + 2 * max(int(np.ceil(size / 32)), 1)
    hi = size + 2 * max(size // 8, 1)
    aim = min(max(size + 2 * int(np.ceil(_PAD_MIN / sampling)), lo), hi)
    candidates = [n for n in range(lo, 2 * hi + 1, 2) if _is_smooth(n)]
    n = min(candidates, key=lambda c: (abs(c - aim), c))
    return SimulationGrid(size=size, pad=(n - size) // 2, sampling=sampling)


def simulation_cell(atoms: Atoms, grid: SimulationGrid) -> Atoms:
    """A copy of ``atoms`` arranged for abTEM's periodic potential on ``grid``.

    ``atoms`` must have positions in Å relative to the padded simulation area's lower-left corner.
    The copy is shifted by half a pixel (so abTEM's grid point i is the centre of pixel i), lifted
    into a box just thick enough for its heights, and wrapped periodically.
    """
    sampling = grid.sampling / ANGSTROM
    atoms = atoms.copy()
    positions = atoms.positions
    positions[:, :2] -= sampling / 2
    z_min = positions[:, 2].min() if len(atoms) else 0.0
    z_span = np.ptp(positions[:, 2]) if len(atoms) else 0.0
    positions[:, 2] += _Z_MARGIN / ANGSTROM - z_min
    atoms.positions = positions
    side = grid.n * sampling
    atoms.cell = [side, side, z_span + 2 * _Z_MARGIN / ANGSTROM]
    atoms.pbc = [True, True, False]
    atoms.wrap()
    return atoms


def potential(cell: Atoms, grid: SimulationGrid) -> abtem.Potential:
    """abTEM's projected potential of a :func:`simulation_cell` (Lobato parametrisation)."""
    return abtem.Potential(
        cell,
        gpts=grid.n,
        slice_thickness=SLICE_THICKNESS / ANGSTROM,
        projection="infinite",
        parametrization="lobato",
    )


def exit_wave(atoms: Atoms, grid: SimulationGrid, energy: float) -> np.ndarray:
    """Exit wave (complex64, ``[y, x]``, vacuum amplitude 1) of a plane wave of ``energy`` (eV).

    ``atoms`` are positioned as for :func:`simulation_cell`.
    """
    projected = potential(simulation_cell(atoms, grid), grid).build(lazy=False)
    waves = abtem.PlaneWave(energy=energy).multislice(projected, lazy=False)
    return np.ascontiguousarray(waves.array.T)


def spectrum(wave: np.ndarray) -> np.ndarray:
    """Fourier transform of a wave (what the lens acts on); cache this, not the wave."""
    return scipy.fft.fft2(wave, workers=-1)


def hrtem_intensity(
    wave_spectrum: np.ndarray,
    grid: SimulationGrid,
    energy: float,
    aberrations: Aberrations,
    coherence: Coherence,
) -> np.ndarray:
    """Image intensity (float32, ``size``², vacuum = 1) after the objective lens, padding cropped."""
    kernel = transfer_function(wave_spectrum.shape, grid.sampling, energy, aberrations, coherence)
    image_wave = scipy.fft.ifft2(wave_spectrum * kernel, workers=-1, overwrite_x=True)
    crop = slice(grid.pad, grid.pad + grid.size)
    cropped = image_wave[crop, crop]
    return (cropped.real**2 + cropped.imag**2).astype(np.float32)
