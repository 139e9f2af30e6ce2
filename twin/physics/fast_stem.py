"""A fast exact STEM scan: multislice of every probe position on a probe-sized window of the sample.

abTEM's own scan (:func:`twin.physics.stem.exact_annular_scan`) runs each probe through the whole
simulation cell. Here the slices' transmission functions are built once per cell (:func:`transmissions`,
from :mod:`twin.physics.fast_multislice`'s potentials, band-limited by the anti-aliasing aperture as abTEM
does) and each probe runs only through a square window of them around its position (:func:`window_points`:
the probe's reach plus how far the detector's angles carry it through the specimen), cut out of the cell's
periodic transmission functions and treated as periodic itself. The probe's amplitude is ~0 at the window's
edges, so the cut costs only its tails (checked against the whole cell in ``tests/test_fast_stem.py``).
Every probe position is the same fractional offset from its window's corner: one probe wave serves all,
and a batch of windows runs through the slices at once with ducc0's FFTs, pruned to the band.

Conventions are abTEM's: a hard probe-forming aperture times ``exp(-i chi)``, each slice transmits then
propagates inside the anti-aliasing aperture, the detector takes the angles ``inner <= theta < outer`` and
signals are fractions of the incident beam. Grid point ``i`` sits at ``(i + 1/2) step`` from the padded
window's corner, as in :mod:`twin.physics.fast_multislice`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import ducc0
import numpy as np
import scipy.fft

from twin.common.fft_threads import FFT_THREADS
from twin.physics import fast_multislice as fast
from twin.physics.ctf import Aberrations, aberration_phase, electron_wavelength, spatial_frequencies
from twin.physics.stem import probe_reach
from twin.physics.tem import SimulationGrid

WINDOW_REACH = 1.0  # the window's half-width in units of the probe's reach (+ the detector's spread)
BATCH_BYTES = 32 * 2**20  # probe waves at a time


def transmissions(numbers: np.ndarray, positions: np.ndarray, grid: SimulationGrid, energy: float
                  ) -> tuple[np.ndarray, float]:
    """The transmission functions of the cell's slices (:func:`band_limited_transmissions` of
    :func:`twin.physics.fast_multislice.phases`) and the slices' thickness (m); atoms with atomic
    ``numbers`` at ``positions`` (Å, from the padded window's corner)."""
    phases, count, thickness = fast.phases(numbers, positions, grid, energy)
    return band_limited_transmissions(phases, count, grid), thickness


def band_limited_transmissions(phases: Iterable[np.ndarray], count: int, grid: SimulationGrid) -> np.ndarray:
    """``exp(i phase)`` (complex64, ``(count, n, n)``, ``[y, x]``) of each of ``count`` slices' ``phases``
    (rad, ``n``² on ``grid``), band-limited by the anti-aliasing aperture as abTEM does."""
    aperture = fast.antialias_aperture(grid.n, grid.step)
    out = np.empty((count, grid.n, grid.n), dtype=np.complex64)
    for j, phase in enumerate(phases):
        t = fast.transmission(np.asarray(phase, dtype=np.float32))
        ducc0.fft.c2c(t, axes=(0, 1), out=t, nthreads=FFT_THREADS)
        t *= aperture
        ducc0.fft.c2c(t, axes=(0, 1), forward=False, inorm=2, out=out[j], nthreads=FFT_THREADS)
    return out


def window_points(grid: SimulationGrid, energy: float, convergence_angle: float, aberrations: Aberrations,
                  depth: float, outer: float) -> int:
    """Grid points per side of a probe's window: ``2 WINDOW_REACH (reach + depth outer)`` with the
    probe's reach (:func:`twin.physics.stem.probe_reach`), ``depth`` (m) the specimen's box and ``outer``
    (rad) the detectors' largest angle, rounded up to a fast FFT length; at most the cell's ``n``."""
    radius = WINDOW_REACH * (probe_reach(energy, convergence_angle, aberrations) + depth * outer)
    return min(grid.n, scipy.fft.next_fast_len(2 * int(np.ceil(radius / grid.step))))


def annular_scan(
    transmission: np.ndarray,
    thickness: float,
    grid: SimulationGrid,
    shape: tuple[int, int],
    energy: float,
    convergence_angle: float,
    aberrations: Aberrations,
    annuli: Sequence[tuple[float, float]],
    window: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Fraction of the beam (float64, ``(len(annuli), rows, cols)``) reaching each annular detector
    ``(inner, outer)`` (rad) for the probe at the centre of each of the first ``shape = (rows, cols)``
    scan pixels of ``grid`` (pixel ``(r, c)`` centred at ``(pad + c + 1/2, pad + r + 1/2)`` pixels from
    the cell's corner), through the slices' ``transmission`` functions (:func:`transmissions`) of
    ``thickness`` (m) each.

    Each probe runs through a ``window``² piece of the cell around it (:func:`window_points` unless
    given; ``grid.n`` is the whole cell, as abTEM). Every detector's outer angle must lie inside the
    anti-aliasing band, ``outer <= lambda / (3 grid.step)``; a ``ValueError`` names the annulus otherwise.
    ``progress(fraction)`` is called after each batch of probes."""
    wavelength, n, step = electron_wavelength(energy), grid.n, grid.step
    band_limit = fast.ANTIALIAS_CUTOFF / (2 * step) * wavelength
    for inner, outer in annuli:
        if not 0 <= inner < outer <= band_limit * (1 + 1e-6):
            raise ValueError(f"annulus ({inner:.3g}, {outer:.3g}) rad: need 0 <= inner < outer <= "
                             f"{band_limit:.3g} rad (the grid's anti-aliasing band)")
    depth = thickness * len(transmission)
    w = window or window_points(grid, energy, convergence_angle, aberrations, depth,
                                max(outer for _, outer in annuli))
    m, o = grid.oversampling, grid.oversampling * grid.pad + (grid.oversampling - 1) / 2
    corner = int(np.floor(o)) - w // 2  # the first probe's window's corner (grid points)
    offset = o - corner  # every probe's position in its window (grid points)

    kx, ky = spatial_frequencies((w, w), step)
    angle = wavelength * np.hypot(kx, ky)
    probe = np.where(angle <= convergence_angle,
                     np.exp(-1j * (aberration_phase(kx, ky, wavelength, aberrations)
                                   + 2 * np.pi * step * offset * (kx + ky))), 0.0)
    total = np.sum(np.abs(probe) ** 2)  # the incident beam in the FFT's units
    entrance = np.fft.ifft2(probe).astype(np.complex64)
    aperture = fast.antialias_aperture(w, step).astype(np.float64) ** 2  # the last propagation's
    where = np.flatnonzero(angle.ravel() < max(outer for _, outer in annuli))
    weights = np.stack([((angle >= inner) & (angle < outer)).ravel()[where] * aperture.ravel()[where]
                        for inner, outer in annuli], axis=1) / total
    propagate = fast.propagator(w, step, energy, thickness)
    band = fast.band_columns(w)

    rows, cols = shape
    starts_y, starts_x = corner + m * np.arange(rows), corner + m * np.arange(cols)
    span = np.arange(w)
    batch = max(1, BATCH_BYTES // (8 * w * w))
    out = np.empty((rows * cols, len(annuli)))
    for first in range(0, rows * cols, batch):
        index = np.arange(first, min(first + batch, rows * cols))
        iy = (starts_y[index // cols, None] + span) % n
        ix = (starts_x[index % cols, None] + span) % n

        def cut(j: int, iy: np.ndarray = iy, ix: np.ndarray = ix) -> np.ndarray:
            return transmission[j][iy[:, :, None], ix[:, None, :]]

        wave = cut(0)
        wave *= entrance
        for j in range(1, len(transmission)):
            fast.band_fft(wave, band)
            wave *= propagate
            fast.band_ifft(wave, band)
            wave *= cut(j)
        fast.band_fft(wave, band)
        seen = wave.reshape(len(index), -1)[:, where]
        out[index] = (seen.real**2 + seen.imag**2) @ weights
        if progress is not None:
            progress((index[-1] + 1) / (rows * cols))
    return np.moveaxis(out.reshape(rows, cols, len(annuli)), -1, 0)
