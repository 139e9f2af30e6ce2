"""A fast plane-wave multislice for thin specimens: abTEM's conventions, exact structure factors.

The projected potential of a slice is built in Fourier space as ``sum over species of F_s(k) S_s(k)``:
``F_s`` is the projected electron scattering factor of the Lobato & Van Dyck (2014) parametrisation
(analytic in ``k``; its constants are read from abTEM's data file) and ``S_s`` the structure factor of
that species' atoms in the slice, evaluated exactly: a direct sum for a few atoms, otherwise as a
non-uniform FFT (each atom spread over :data:`SPREAD_WIDTH`² grid points by an exponential-of-semicircle
kernel, one real FFT, the kernel's transform divided out), within ~1e-5 inside the simulation's band.
(abTEM deposits each atom bilinearly on its four nearest grid points, which damps the potential's power
at the band's edge to about half; see ``tests/test_fast_multislice.py``.)

The multislice is abTEM's: each slice transmits ``exp(i sigma V)`` at its entrance and propagates its
thickness with the Fresnel propagator ``exp(-i pi lambda dz k²)``, inside the anti-aliasing aperture
(2/3 of the grid's Nyquist frequency, abTEM's cosine taper). abTEM also band-limits every slice's
transmission function; that is done here only where the plane wave enters (free there). Beyond the first
slice, the band-limited wave times the unlimited transmission differs inside the band only by products of
the scattered wave with the transmission's components beyond the band: second order in the scattering
(1e-4 of a graphene exit wave's intensity, 2.5e-3 of WS2's, and closer to a 4x finer reference), for two
FFTs a slice fewer.

Grids, positions and slicing follow :mod:`twin.physics.tem`: ``[y, x]`` arrays, grid point ``i`` at
``(i + 1/2) step`` from the padded window's corner, the box from ``Z_MARGIN`` below the lowest atom to
``Z_MARGIN`` above the highest evenly split into :func:`twin.physics.tem.slices_for` slices, an atom in
the slice its height falls in. FFTs are ducc0's (:data:`~twin.common.fft_threads.FFT_THREADS` threads);
what repeats between calls (frequencies, apertures, kernel transforms, form factors) is cached per grid,
species and energy.
"""

from __future__ import annotations

import importlib.util
import json
import math
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path

import ducc0
import numpy as np
from numba import njit
from scipy import constants

from twin.common.cache import ArrayCache
from twin.common.fft_threads import FFT_THREADS, WORKERS
from twin.constants import ANGSTROM
from twin.physics.ctf import electron_wavelength
from twin.physics.tem import Z_MARGIN, SimulationGrid, slices_for

SPREAD_WIDTH = 8  # grid points per axis an atom spreads over for its structure factor
SPREAD_BETA = 2.05 * SPREAD_WIDTH  # the kernel's shape: in-band error ~1e-5 at 8 points
DIRECT_ATOMS = 16  # a species with at most this many atoms in a slice is summed directly
ANTIALIAS_CUTOFF = 0.6666666  # abTEM's: the band ends at this fraction of the grid's Nyquist frequency
ANTIALIAS_TAPER = 0.01  # abTEM's cosine taper, in units of the grid's sampling frequency
# h² / (2 pi m0 e) (V m²): the projected potential's transform (V m³) per scattering factor (m)
POTENTIAL_PER_SCATTERING = constants.h**2 / (2 * np.pi * constants.m_e * constants.e)
# what repeats between calls: frequencies, apertures and kernel transforms per grid, form factors per grid,
# species and energy (a 1152² grid's take 2.7-5.3 MB each)
_CACHE = ArrayCache(128 * 2**20)
_BLOCK_ROWS = 64  # grid rows per block of elementwise work


def band_columns(n: int) -> int:
    """``m`` such that abTEM's anti-aliasing aperture on an ``n``² grid is zero in every column ``kx``
    of the spectrum (FFT order) but the first ``m + 1`` and the last ``m``."""
    return int(np.floor(ANTIALIAS_CUTOFF / 2 * n)) + 1


def _band(a: np.ndarray, m: int) -> tuple[np.ndarray, ...]:
    """The band's columns (last axis) of ``a`` (:func:`band_columns` ``m``) as views; all of ``a`` where
    they meet."""
    n = a.shape[-1]
    return (a,) if 2 * m + 1 >= n else (a[..., : m + 1], a[..., n - m :])


def band_fft(a: np.ndarray, m: int) -> np.ndarray:
    """Forward 2-D FFT over the last two axes in place (complex64, unnormalised as :func:`scipy.fft.fft2`;
    a stack of waves at once) of which only the band's columns (:func:`band_columns` ``m``) are finished:
    the others hold partial sums, for the aperture's zeros to multiply."""
    x, y = a.ndim - 1, a.ndim - 2
    ducc0.fft.c2c(a, axes=(x,), out=a, nthreads=FFT_THREADS)
    for part in _band(a, m):
        ducc0.fft.c2c(part, axes=(y,), out=part, nthreads=FFT_THREADS)
    return a


def band_ifft(a: np.ndarray, m: int) -> np.ndarray:
    """Inverse 2-D FFT over the last two axes in place (complex64, divided by its size as
    :func:`scipy.fft.ifft2`) of spectra that are zero outside the band's columns (:func:`band_columns`
    ``m``), which alone are transformed along ``ky``."""
    x, y = a.ndim - 1, a.ndim - 2
    for part in _band(a, m):
        ducc0.fft.c2c(part, axes=(y,), forward=False, inorm=2, out=part, nthreads=FFT_THREADS)
    return ducc0.fft.c2c(a, axes=(x,), forward=False, inorm=2, out=a, nthreads=FFT_THREADS)


@lru_cache(maxsize=1)
def _lobato_table() -> dict[str, list[list[float]]]:
    spec = importlib.util.find_spec("abtem")  # its data file only: importing abTEM takes seconds
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("abTEM's Lobato parametrisation (parametrizations/data/lobato.json) is missing")
    folder = Path(next(iter(spec.submodule_search_locations)))
    return json.loads((folder / "parametrizations" / "data" / "lobato.json").read_text())


@lru_cache(maxsize=128)
def lobato_parameters(symbol: str) -> tuple[np.ndarray, np.ndarray]:
    """The Lobato & Van Dyck (2014) electron scattering factor's ``a_i`` (m) and ``b_i`` (m²) of
    ``symbol``: ``f(k) = sum_i a_i (2 + b_i k²) / (1 + b_i k²)²``."""
    a, b = (np.asarray(row, dtype=float) for row in _lobato_table()[symbol])
    return a * ANGSTROM, b * ANGSTROM**2


def projected_scattering_factor(k2: np.ndarray, symbol: str) -> np.ndarray:
    """The Fourier transform (V m³) of the projected potential of one ``symbol`` atom at squared spatial
    frequencies ``k2`` (1/m²): ``h² / (2 pi m0 e) f(k)``, ``f`` the Lobato scattering factor (m); in the
    precision of ``k2`` (float32 or float64)."""
    k2 = np.asarray(k2)
    dtype = k2.dtype if k2.dtype in (np.float32, np.float64) else np.float64
    a, b = lobato_parameters(symbol)
    f = np.zeros(k2.shape, dtype=dtype)
    for ai, bi in zip(a, b, strict=True):
        x = np.multiply(k2, dtype.type(bi), dtype=dtype)
        x += 1.0  # 1 + b k²
        term = x + 1.0  # 2 + b k²
        x *= x
        term /= x
        term *= dtype.type(ai * POTENTIAL_PER_SCATTERING)
        f += term
    return f


def interaction_parameter(energy: float) -> float:
    """``sigma`` (rad / (V m)): the phase a projected potential (V m) gives an electron of ``energy``
    (eV), ``2 pi m e lambda / h²`` with its relativistic mass ``m``."""
    mass = constants.m_e + constants.e * energy / constants.c**2
    return float(2 * np.pi * mass * constants.e * electron_wavelength(energy) / constants.h**2)


def spreading_kernel(d: np.ndarray, width: int = SPREAD_WIDTH, beta: float = SPREAD_BETA) -> np.ndarray:
    """The exponential-of-semicircle kernel ``exp(beta (sqrt(1 - (2d / width)²) - 1))`` at distances
    ``d`` (grid points), zero from ``width / 2`` on."""
    z = 1.0 - (2.0 * np.asarray(d) / width) ** 2
    return np.where(z > 0, np.exp(beta * (np.sqrt(np.clip(z, 0.0, None)) - 1.0)), 0.0)


def spreading_kernel_transform(xi: np.ndarray, width: int = SPREAD_WIDTH, beta: float = SPREAD_BETA,
                               nodes: int = 200) -> np.ndarray:
    """The continuous Fourier transform of :func:`spreading_kernel` at ``xi`` (cycles per grid point),
    by Gauss-Legendre quadrature over its support (the kernel is even and smooth there)."""
    t, weights = np.polynomial.legendre.leggauss(nodes)
    d = t * width / 2
    values = weights * (width / 2) * spreading_kernel(d, width, beta)
    return np.cos(2 * np.pi * np.multiply.outer(np.asarray(xi, dtype=float), d)) @ values


def spread(u: np.ndarray, v: np.ndarray, n: int, width: int = SPREAD_WIDTH, beta: float = SPREAD_BETA
           ) -> np.ndarray:
    """Atoms at grid coordinates ``u`` (along x) and ``v`` (along y), each spread by
    :func:`spreading_kernel` over ``width``² points of a periodic ``n``² grid (float32, ``[y, x]``)."""
    out = np.zeros((n, n), dtype=np.float32)
    _spread_atoms(np.asarray(u, dtype=float), np.asarray(v, dtype=float), width, float(beta), out)
    return out


@njit(inline="always")
def _kernel_at(d: float, width: int, beta: float) -> float:
    """:func:`spreading_kernel` at one distance ``d`` (grid points)."""
    z = 1.0 - (2.0 * d / width) ** 2
    return math.exp(beta * (math.sqrt(z) - 1.0)) if z > 0.0 else 0.0


@njit(nogil=True, cache=True)
def _spread_atoms(u: np.ndarray, v: np.ndarray, width: int, beta: float, out: np.ndarray) -> None:
    """Add each atom's ``width``² weights (the separable :func:`spreading_kernel`, float32) to ``out``
    (periodic), atom by atom."""
    n = out.shape[0]
    first = width // 2 - 1
    along_x, along_y = np.empty(width, np.float32), np.empty(width, np.float32)
    for atom in range(len(u)):
        left, bottom = math.floor(u[atom]), math.floor(v[atom])
        for k in range(width):
            along_x[k] = _kernel_at(left - u[atom] + k - first, width, beta)
            along_y[k] = _kernel_at(bottom - v[atom] + k - first, width, beta)
        for r in range(width):
            row = (int(bottom) + r - first) % n
            for c in range(width):
                out[row, (int(left) + c - first) % n] += along_y[r] * along_x[c]


def direct_structure_factor(u: np.ndarray, v: np.ndarray, n: int) -> np.ndarray:
    """``sum over atoms of exp(-2 pi i (kx u + ky v) / n)`` on the half spectrum of an ``n``² grid
    (complex64, ``[ky, kx]`` in :func:`numpy.fft.rfft2`'s order), atoms at grid coordinates ``u``, ``v``.
    At the Nyquist frequency ``n / 2`` (even ``n``) the mean of ``+n / 2`` and ``-n / 2``: a cosine, as
    for the transform of a real array."""
    ky = np.fft.fftfreq(n, 1.0 / n)
    kx = np.fft.rfftfreq(n, 1.0 / n)
    ey = np.exp(-2j * np.pi / n * np.outer(ky, v))
    ex = np.exp(-2j * np.pi / n * np.outer(u, kx))
    if n % 2 == 0:
        ey[n // 2] = np.cos(np.pi * v)
        ex[:, n // 2] = np.cos(np.pi * u)
    return ey.astype(np.complex64) @ ex.astype(np.complex64)


def _half_k2(n: int, step: float) -> np.ndarray:
    """``k²`` (1/m², float32) on the half spectrum of an ``n``² grid of ``step`` (m)."""
    def compute() -> np.ndarray:
        ky, kx = np.fft.fftfreq(n, step), np.fft.rfftfreq(n, step)
        return (ky[:, None] ** 2 + kx[None, :] ** 2).astype(np.float32)

    return _CACHE.get_or_compute(("k2", n, step), compute)


def antialias_aperture(n: int, step: float) -> np.ndarray:
    """abTEM's anti-aliasing aperture on an ``n``² grid of ``step`` (m) (float32, FFT order): 1 inside
    2/3 of the Nyquist frequency, falling to 0 at its edge along a cosine taper 1 % of ``1 / step`` wide."""
    def compute() -> np.ndarray:
        k = np.fft.fftfreq(n, step)
        k = np.hypot(k[:, None], k[None, :])
        cutoff, taper = ANTIALIAS_CUTOFF / step / 2, ANTIALIAS_TAPER / step
        edge = 0.5 * (1 + np.cos(np.pi * (k - cutoff + taper) / taper))
        return np.where(k > cutoff, 0.0, np.where(k > cutoff - taper, edge, 1.0)).astype(np.float32)

    return _CACHE.get_or_compute(("aperture", n, step), compute)


def _deconvolution(n: int) -> np.ndarray:
    """The inverse of the spreading kernel's transform on the half spectrum of an ``n``² grid (float32)."""
    def compute() -> np.ndarray:
        along_y = spreading_kernel_transform(np.fft.fftfreq(n))
        along_x = spreading_kernel_transform(np.fft.rfftfreq(n))
        return (1.0 / np.outer(along_y, along_x)).astype(np.float32)

    return _CACHE.get_or_compute(("deconvolution", n), compute)


def phase_factor(n: int, step: float, symbol: str, energy: float) -> np.ndarray:
    """What turns a structure factor of ``symbol`` atoms on the half spectrum of an ``n``² grid of
    ``step`` (m) into the phase ``sigma V`` (rad) of a slice through an inverse real FFT (float32)."""
    def compute() -> np.ndarray:
        factor = projected_scattering_factor(_half_k2(n, step), symbol)
        factor *= np.float32(interaction_parameter(energy) / step**2)
        return factor

    return _CACHE.get_or_compute(("phase factor", n, step, symbol, energy), compute)


def propagator(n: int, step: float, energy: float, distance: float, aperture: bool = True) -> np.ndarray:
    """Fresnel propagation over ``distance`` (m), ``exp(-i pi lambda distance k²)`` (complex64, ``n``²,
    FFT order), times the anti-aliasing aperture if ``aperture``."""
    k = np.fft.fftfreq(n, step)
    along = np.exp(-1j * np.pi * electron_wavelength(energy) * distance * k**2).astype(np.complex64)
    limit = antialias_aperture(n, step) if aperture else None
    out = np.empty((n, n), dtype=np.complex64)

    def block(start: int) -> None:
        rows = slice(start, start + _BLOCK_ROWS)
        np.multiply(along[rows, None], along[None, :], out=out[rows])  # separable in kx and ky
        if limit is not None:
            out[rows] *= limit[rows]

    _in_blocks(block, n)
    return out


def slices_of(z: np.ndarray) -> tuple[np.ndarray, int, float]:
    """For atoms at heights ``z`` (Å): the slice of each, how many slices there are and their thickness
    (m); an atom on an edge between two slices belongs to the upper one (abTEM's bins)."""
    count = slices_for(z)
    margin = Z_MARGIN / ANGSTROM
    if len(z) == 0:
        return np.zeros(0, dtype=int), count, 2 * Z_MARGIN
    height = np.ptp(z) + 2 * margin
    edges = np.cumsum(np.full(count, height / count)) - 1e-12
    index = np.minimum(np.digitize(z - z.min() + margin, edges), count - 1)
    return index, count, height / count * ANGSTROM


def phases(numbers: np.ndarray, positions: np.ndarray, grid: SimulationGrid, energy: float
           ) -> tuple[Iterator[np.ndarray], int, float]:
    """The phase ``sigma V`` (rad, float32 ``[y, x]`` on the grid's points) of each slice through atoms
    with atomic ``numbers`` at ``positions`` (Å, from the padded window's corner), one slice at a time;
    how many slices there are and their thickness (m)."""
    index, count, thickness = slices_of(positions[:, 2])
    return _slice_phases(numbers, positions, index, count, grid, energy), count, thickness


def _slice_phases(numbers: np.ndarray, positions: np.ndarray, index: np.ndarray, count: int,
                  grid: SimulationGrid, energy: float) -> Iterator[np.ndarray]:
    from ase.data import chemical_symbols

    n, step = grid.n, grid.step
    u = positions[:, 0] * (ANGSTROM / step) - 0.5  # grid point i sits at (i + 1/2) step
    v = positions[:, 1] * (ANGSTROM / step) - 0.5
    species = [(number, numbers == number) for number in sorted(set(numbers.tolist()))]
    for j in range(count):
        spectrum = None
        in_slice = index == j
        for number, of_species in species:
            chosen = in_slice & of_species
            atoms = np.count_nonzero(chosen)
            if atoms == 0:
                continue
            factor = phase_factor(n, step, chemical_symbols[number], energy)
            if atoms <= DIRECT_ATOMS:
                term = _scale(direct_structure_factor(u[chosen], v[chosen], n), factor)
            else:
                term = ducc0.fft.r2c(spread(u[chosen], v[chosen], n), axes=(0, 1), nthreads=FFT_THREADS)
                _scale(term, _deconvolution(n), factor)
            spectrum = term if spectrum is None else np.add(spectrum, term, out=spectrum)
        if spectrum is None:  # an empty slice (no atoms in view)
            yield np.zeros((n, n), dtype=np.float32)
        else:
            yield ducc0.fft.c2r(spectrum, axes=(0, 1), lastsize=n, forward=False, inorm=2,
                                nthreads=FFT_THREADS)


def transmission(phase: np.ndarray) -> np.ndarray:
    """``exp(i phase)`` (complex64) of a float32 ``phase``."""
    return transmit(None, phase)


def transmit(wave: np.ndarray | None, phase: np.ndarray) -> np.ndarray:
    """``wave`` (complex64, 2-D) times ``exp(i phase)`` (float32) in place, or ``exp(i phase)`` itself
    for ``wave`` None, in blocks of rows (their temporaries stay in cache) on the twin's workers (numpy
    releases the GIL)."""
    out = np.empty(phase.shape, dtype=np.complex64) if wave is None else wave

    def block(start: int) -> None:
        rows = slice(start, start + _BLOCK_ROWS)
        factor = out[rows] if wave is None else np.empty(phase[rows].shape, dtype=np.complex64)
        factor.real = np.cos(phase[rows])
        factor.imag = np.sin(phase[rows])
        if wave is not None:
            out[rows] *= factor

    _in_blocks(block, len(phase))
    return out


def _scale(a: np.ndarray, *factors: np.ndarray) -> np.ndarray:
    """``a`` times each of ``factors`` (same shape) in place, by blocks of rows on the twin's workers."""
    def block(start: int) -> None:
        rows = slice(start, start + _BLOCK_ROWS)
        for factor in factors:
            a[rows] *= factor[rows]

    _in_blocks(block, len(a))
    return a


def _in_blocks(block: Callable[[int], None], rows: int) -> None:
    """``block(start)`` for every block of :data:`_BLOCK_ROWS` of ``rows`` rows, on the twin's workers."""
    starts = range(0, rows, _BLOCK_ROWS)
    if len(starts) == 1:
        block(0)
    else:
        list(WORKERS.map(block, starts))


def exit_wave_spectrum(numbers: np.ndarray, positions: np.ndarray, grid: SimulationGrid, energy: float,
                       extra_distance: float = 0.0) -> np.ndarray:
    """The spectrum (complex64, ``[ky, kx]``, FFT order; unnormalised as :func:`scipy.fft.fft2` gives it)
    of the exit wave of a plane wave of amplitude 1 and ``energy`` (eV) through atoms with atomic
    ``numbers`` at ``positions`` (Å, from the padded window's corner), propagated ``extra_distance`` (m)
    beyond the box."""
    n, step = grid.n, grid.step
    m = band_columns(n)
    slices, count, thickness = phases(numbers, positions, grid, energy)
    step_propagator = propagator(n, step, energy, thickness)
    wave = band_fft(transmission(next(slices)), m)
    _scale(wave, antialias_aperture(n, step))  # the first transmission function band-limited, as abTEM does
    for phase in slices:
        band_ifft(_scale(wave, step_propagator), m)
        band_fft(transmit(wave, phase), m)
    # the last slice's thickness and the distance beyond the box in one Fresnel step
    return _scale(wave, propagator(n, step, energy, thickness + extra_distance) if extra_distance
                  else step_propagator)
