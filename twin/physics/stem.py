"""STEM: the focused probe, annular dark-field and bright-field signals, interactive and exact.

The probe is an aperture-limited wave with the objective's aberration phase (see
:mod:`twin.physics.ctf`: the wave is multiplied by ``exp(-i chi)``). Signals are fractions of the
beam reaching the detector, which covers scattering angles ``inner..outer`` (rad).

Images are ``[row, column] = [y, x]``; pixel ``(r, c)`` is the probe position
``(x0 + (c + 1/2) p, y0 + (r + 1/2) p)`` for a scan window whose lower-left corner is ``(x0, y0)``
and scan step ``p``. Lengths are metres, angles radians, energies eV (Å only inside abTEM calls).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
from ase import Atoms
from scipy import constants

from twin.constants import ANGSTROM
from twin.physics import tem
from twin.physics.ctf import Aberrations, aberration_phase, electron_wavelength, spatial_frequencies

PROBE_TAIL = 10.0  # probe reach in units of lambda / alpha: an Airy disc holds ~99 % within it
_SPREAD_WIDTH = 0.95  # Gaussian spreading kernel's standard deviation (internal grid points) ...
_SPREAD_HALF = 4  # ... truncated 4 points either side: aliasing and truncation both ~1e-4
_EXACT_BATCH_BYTES = 64 * 2**20  # probe waves per eager abTEM call in exact mode


def _probe_spectrum(
    shape: tuple[int, int], sampling: float, wavelength: float, convergence_angle: float, ab: Aberrations
) -> np.ndarray:
    """``A(k) exp(-i chi(k))`` (complex128, FFT order) on the grid of ``shape`` and ``sampling`` (m)."""
    kx, ky = spatial_frequencies(shape, sampling)
    aperture = wavelength * np.hypot(kx, ky) <= convergence_angle
    return np.where(aperture, np.exp(-1j * aberration_phase(kx, ky, wavelength, ab)), 0.0)


def probe_intensity(
    shape: tuple[int, int], sampling: float, energy: float, convergence_angle: float, aberrations: Aberrations
) -> np.ndarray:
    """``|probe|²`` (float64, 1/m², normalised so that ``sum * sampling² == 1``) on a periodic grid of
    ``shape = (ny, nx)`` points ``sampling`` (m) apart, centred on index ``(0, 0)`` and wrapped
    around (FFT order), ready for FFT convolution.

    The probe of ``energy`` (eV) is limited by a hard aperture of semi-angle ``convergence_angle``
    (rad); the grid's Nyquist frequency should exceed ``2 alpha / lambda`` so that ``|probe|²``
    is not aliased.
    """
    wavelength = electron_wavelength(energy)
    wave = scipy.fft.ifft2(
        _probe_spectrum(shape, sampling, wavelength, convergence_angle, aberrations), workers=-1
    )
    intensity = wave.real**2 + wave.imag**2
    return intensity / (intensity.sum() * sampling**2)


def probe_reach(energy: float, convergence_angle: float, aberrations: Aberrations) -> float:
    """Radius (m) beyond which the probe carries about 1 % of its intensity: ``10 lambda / alpha``
    plus the geometric blur ``(|C10| + |C12|) alpha + |C30| alpha³``. Pad scan windows by this."""
    alpha = convergence_angle
    geometric = (abs(aberrations.C10) + abs(aberrations.C12)) * alpha + abs(aberrations.C30) * alpha**3
    return float(PROBE_TAIL * electron_wavelength(energy) / alpha + geometric)


def annular_cross_section(numbers: np.ndarray, energy: float, inner: float, outer: float) -> np.ndarray:
    """Cross-section (m², float64) for elastic scattering of an electron of ``energy`` (eV) by atoms of
    atomic ``numbers`` into the angles ``inner..outer`` (rad).

    Screened Rutherford (Wentzel) scattering with the relativistic mass, in the small-angle limit:
    ``dsigma/dOmega = (2 gamma Z / (a0 k²))² / (theta² + theta0²)²`` with ``k = 2 pi / lambda``,
    ``theta0 = 1 / (k a)`` and the Thomas-Fermi radius ``a = 0.885 a0 Z^(-1/3)``.
    """
    z = np.asarray(numbers, dtype=np.float64)
    a0 = constants.physical_constants["Bohr radius"][0]
    gamma = 1.0 + constants.e * energy / (constants.m_e * constants.c**2)
    k = 2.0 * np.pi / electron_wavelength(energy)
    theta0_2 = (z ** (1.0 / 3.0) / (0.885 * a0 * k)) ** 2
    amplitude = 2.0 * gamma * z / (a0 * k**2)
    return np.pi * amplitude**2 * (1.0 / (inner**2 + theta0_2) - 1.0 / (outer**2 + theta0_2))


def _spread(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Grid indices and weights, both (N, 2 * _SPREAD_HALF + 1), of the Gaussian spreading kernel
    along one axis for positions ``u`` (in grid points)."""
    index = np.rint(u).astype(np.int64)[:, None] + np.arange(-_SPREAD_HALF, _SPREAD_HALF + 1)
    return index, np.exp(-0.5 * ((index - u[:, None]) / _SPREAD_WIDTH) ** 2)


def incoherent_annular_image(
    positions: np.ndarray,
    numbers: np.ndarray,
    origin: tuple[float, float],
    step: float,
    shape: tuple[int, int],
    energy: float,
    convergence_angle: float,
    aberrations: Aberrations,
    inner: float,
    outer: float,
) -> np.ndarray:
    """Fraction of the beam (float64, ``shape = (ny, nx)``) scattered into the annular detector
    ``inner..outer`` (rad) at each probe position of the scan window: incoherent imaging of a thin
    sample, ``sum_i sigma_i P(r - r_i)`` with :func:`annular_cross_section` and the normalised
    :func:`probe_intensity` (see :func:`probe_weighted_sum`)."""
    sigma = annular_cross_section(np.asarray(numbers), energy, inner, outer)
    return probe_weighted_sum(positions, sigma, origin, step, shape, energy, convergence_angle, aberrations)


def probe_weighted_sum(
    positions: np.ndarray,
    weights: np.ndarray,
    origin: tuple[float, float],
    step: float,
    shape: tuple[int, int],
    energy: float,
    convergence_angle: float,
    aberrations: Aberrations,
) -> np.ndarray:
    """``sum_i w_i P(r - r_i)`` (float64, ``shape = (ny, nx)``; ``w`` times 1/m²) at each probe position
    ``r`` of the scan window: how much of the probe's intensity falls on the atoms, each counted with
    its weight ``w_i`` (a cross-section gives the fraction of electrons it scatters).

    ``positions`` (N, 2) or (N, 3) in m, in the frame of ``origin``; heights are ignored (thin
    sample, no depth of focus). Atoms within :func:`probe_reach` of the window contribute; the
    internal grid is padded by that much, so atoms farther out are dropped and none wraps around
    into the window (beyond the probe's ~1 % tail). The weights are spread onto that grid,
    of spacing ``h = step / m`` no coarser than ``lambda / (8 alpha)`` (the probe's band
    ``2 alpha / lambda`` reaches half its Nyquist frequency), with a Gaussian kernel whose transform
    is divided out again: like a non-uniform FFT, sub-pixel positions are exact to ~1e-5 of the
    peak. The convolution with the probe is one FFT, pruned to the probe's band (beyond it the
    probe's spectrum is zero) and inverted only where the probe positions are: every ``m``-th point.
    """
    ny, nx = shape
    wavelength = electron_wavelength(energy)
    m = int(np.ceil(step * 8.0 * convergence_angle / wavelength))
    h = step / m
    pad = int(np.ceil(probe_reach(energy, convergence_angle, aberrations) / h)) + _SPREAD_HALF + 1
    size_y = scipy.fft.next_fast_len(m * ny + 2 * pad, real=True)
    size_x = scipy.fft.next_fast_len(m * nx + 2 * pad, real=True)
    # internal grid point (j, i) sits at (x0 + step / 2 + (i - pad) h, y0 + step / 2 + (j - pad) h)
    xy = np.asarray(positions, dtype=np.float64)[:, :2]
    u = (xy[:, 0] - origin[0] - step / 2) / h + pad
    v = (xy[:, 1] - origin[1] - step / 2) / h + pad
    keep = (u > _SPREAD_HALF) & (u < size_x - _SPREAD_HALF - 1)
    keep &= (v > _SPREAD_HALF) & (v < size_y - _SPREAD_HALF - 1)
    w = np.asarray(weights, dtype=np.float64)[keep]
    ix, wx = _spread(u[keep])
    iy, wy = _spread(v[keep])
    flat = (iy[:, :, None] * size_x + ix[:, None, :]).ravel()
    spread = (w[:, None, None] * wy[:, :, None] * wx[:, None, :]).ravel()
    density = np.bincount(flat, spread, minlength=size_y * size_x).reshape(size_y, size_x)

    # Only the probe's band |k| <= 2 alpha / lambda carries signal: its spectrum (the autocorrelation of
    # the aperture's) is zero beyond, so the transforms are pruned to it and the inverse runs only for
    # the rows and columns that are probe positions. The same sums as full FFTs, without the zeros.
    rows, cols, probe = _probe_intensity_band((size_y, size_x), h, wavelength, convergence_angle, aberrations)
    fy = np.fft.fftfreq(size_y)[rows][:, None]
    fx = np.fft.rfftfreq(size_x)[: len(cols)][None, :]
    response = (2 * np.pi * _SPREAD_WIDTH**2) * np.exp(-2 * (np.pi * _SPREAD_WIDTH) ** 2 * (fx**2 + fy**2))
    along_x = scipy.fft.rfft(density, axis=1, workers=-1)[:, : len(cols)]
    spectrum = np.zeros((size_y, len(cols)), dtype=np.complex128)
    spectrum[rows] = scipy.fft.fft(along_x, axis=0, workers=-1)[rows] * probe / response
    lines = scipy.fft.ifft(spectrum, axis=0, workers=-1)[pad : pad + m * ny : m]
    image = scipy.fft.irfft(lines, n=size_x, axis=1, workers=-1)
    return image[:, pad : pad + m * nx : m]


def _probe_intensity_band(
    shape: tuple[int, int], sampling: float, wavelength: float, convergence_angle: float, ab: Aberrations
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spectrum of :func:`probe_intensity` on the grid of ``shape`` and ``sampling`` (m), as
    ``rfft2`` gives it, where it is not zero: ``(rows, cols, values)``, the FFT-order row indices
    ``|q_y| <= 2 r_y``, the columns ``0..2 r_x`` and the values there (complex128), ``r`` the
    aperture's half-width in grid frequencies.

    The spectrum of ``|IFFT(P)|²`` is the circular autocorrelation of ``P = A exp(-i chi)``, whose
    support (the aperture) spans ``|k| <= r``: it is the same on any periodic grid of more than ``4 r``
    frequencies, so it is computed on the smallest such grid (the aperture's frequencies are those
    of the full grid) and normalised, as the probe is, to ``1 / sampling²`` at ``q = 0``."""
    ny, nx = shape
    limit = convergence_angle / wavelength * sampling  # the aperture's radius in grid frequencies / n
    ry, rx = (int(np.floor(limit * n)) + 1 for n in (ny, nx))  # at most n / 8 + 1 (see the caller)
    iy, ix = np.arange(-ry, ry + 1), np.arange(-rx, rx + 1)
    kx, ky = np.fft.fftfreq(nx, sampling)[ix][None, :], np.fft.fftfreq(ny, sampling)[iy][:, None]
    aperture = wavelength * np.hypot(kx, ky) <= convergence_angle
    small = (scipy.fft.next_fast_len(4 * ry + 1), scipy.fft.next_fast_len(4 * rx + 1))
    spectrum = np.zeros(small, dtype=np.complex128)
    spectrum[np.ix_(iy % small[0], ix % small[1])] = np.where(
        aperture, np.exp(-1j * aberration_phase(kx, ky, wavelength, ab)), 0.0
    )
    wave = scipy.fft.ifft2(spectrum, workers=-1)
    autocorrelation = scipy.fft.rfft2(wave.real**2 + wave.imag**2, workers=-1)
    qy = np.arange(-2 * ry, 2 * ry + 1)
    values = autocorrelation[qy % small[0], : 2 * rx + 1]
    return qy % ny, np.arange(2 * rx + 1), values / (autocorrelation[0, 0].real * sampling**2)


def _quadrature(
    rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], samples: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About ``samples`` of the reciprocal-grid points ``(rows, cols)``, with weights summing to their
    number: the points are binned into squares of ``stride``² grid points, and each bin is
    represented by its point nearest the bin's centroid, weighted by how many points it holds."""
    ny, nx = shape
    iy = np.where(rows > ny // 2, rows - ny, rows)  # signed frequency indices, so bins do not wrap
    ix = np.where(cols > nx // 2, cols - nx, cols)
    stride = max(1, int(round(np.sqrt(len(rows) / samples))))
    _, group, counts = np.unique(
        np.column_stack([iy // stride, ix // stride]), axis=0, return_inverse=True, return_counts=True
    )
    group = group.ravel()
    cy = np.bincount(group, iy) / counts
    cx = np.bincount(group, ix) / counts
    order = np.lexsort(((iy - cy[group]) ** 2 + (ix - cx[group]) ** 2, group))
    first = order[np.r_[0, np.flatnonzero(np.diff(group[order])) + 1]]
    return rows[first], cols[first], counts.astype(np.float64)


def bright_field_image(
    wave_spectrum: np.ndarray,
    grid_sampling: float,
    energy: float,
    convergence_angle: float,
    aberrations: Aberrations,
    inner: float,
    outer: float,
    samples: int = 64,
    batch: int = 8,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Fraction of the beam (float64, on the exit wave's grid) reaching a detector that covers the
    scattering angles ``inner..outer`` (rad), for the probe centred on each grid point: BF / ABF
    STEM of a thin sample by reciprocity.

    ``wave_spectrum`` is the FFT (``[y, x]``, FFT order) of the plane-wave exit wave ``t`` on a
    periodic grid ``grid_sampling`` (m) apart, as from :func:`twin.physics.tem.spectrum`. The signal
    is ``S(r) = sum_q D(q) |IFFT[T(k + q) P(k)](r)|² / sum_q A(q)``: the probe's far-field
    intensity summed over the detector ``D``, with ``P = A exp(-i chi)`` (``A``: the aperture;
    ``P`` is even in ``k``). Writing ``t = 1 + s``, it splits into the vacuum fraction
    ``sum D A / sum A`` and a term linear in ``s`` (both exact, by FFT), and a term quadratic in
    ``s``, summed over about ``samples`` representatives of the detector's grid points (computed
    ``batch`` at a time; see :func:`_quadrature`; ``progress(fraction)`` is called after each batch).
    For graphene at 80 kV and 64 samples that sum's
    error is 0.1-2 % (rms) of the image contrast; the cost is about ``samples + 4`` FFTs of the grid.
    The signal uses the spectrum up to ``(alpha + outer) / lambda``, which must stay below
    ``2 / (3 grid_sampling)`` so that nothing wraps around; scattering beyond the exit wave's band
    (abTEM's: ``1 / (3 grid_sampling)``) is absent from it.
    """
    ny, nx = wave_spectrum.shape
    wavelength = electron_wavelength(energy)
    needed = (convergence_angle + outer) / wavelength
    if needed > 2.0 / (3.0 * grid_sampling):
        raise ValueError(
            f"grid_sampling={grid_sampling:.3g} m: the signal needs spatial frequencies up to "
            f"{needed:.3g} 1/m, which would wrap around onto the exit wave's band; use at most "
            f"{2.0 / (3.0 * needed):.3g} m"
        )
    kx, ky = spatial_frequencies((ny, nx), grid_sampling)
    angle = wavelength * np.hypot(kx, ky)
    aperture = angle <= convergence_angle
    detector = (angle >= inner) & (angle <= outer)
    probe = _probe_spectrum((ny, nx), grid_sampling, wavelength, convergence_angle, aberrations)
    probe = probe.astype(np.complex64)
    scattered = wave_spectrum.copy()
    scattered[0, 0] -= ny * nx  # the spectrum of s = t - 1
    # linear term: 2 Re IFFT[S W] with W(g) = sum_q D(q) P*(-q) P(g - q), a convolution
    ifft2, fft2 = scipy.fft.ifft2, scipy.fft.fft2
    transfer = fft2(
        ifft2(np.where(detector, probe.conj(), 0), workers=-1) * ifft2(probe, workers=-1), workers=-1
    )
    linear = 2.0 * (ny * nx) * ifft2(scattered * transfer, workers=-1).real
    signal = np.count_nonzero(detector & aperture) + linear
    rows, cols = np.nonzero(detector)
    rows, cols, weights = _quadrature(rows, cols, (ny, nx), samples)
    for start in range(0, len(rows), batch):
        shifts = zip(rows[start : start + batch], cols[start : start + batch], strict=True)
        stack = np.stack([np.roll(scattered, (-r, -c), axis=(0, 1)) for r, c in shifts]) * probe
        waves = ifft2(stack, axes=(-2, -1), workers=-1, overwrite_x=True)
        signal += np.tensordot(weights[start : start + batch], waves.real**2 + waves.imag**2, axes=1)
        if progress is not None:
            progress((start + batch) / len(rows))
    return signal / np.count_nonzero(aperture)


def exact_oversampling(step: float, energy: float, outer: float) -> int:
    """Grid points per scan step for :func:`exact_annular_scan`: the fewest that put the detector's
    outer angle (rad) inside abTEM's anti-aliasing band, ``2/3 Nyquist >= outer / lambda``."""
    return max(1, int(np.ceil(3.0 * step * outer / electron_wavelength(energy) - 1e-9)))


def exact_annular_scan(
    atoms: Atoms,
    grid: tem.SimulationGrid,
    energy: float,
    convergence_angle: float,
    aberrations: Aberrations,
    inner: float,
    outer: float,
    interpolation: int = 1,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Fraction of the beam (float64, ``[y, x]``, ``grid.size``²) scattered into the annular detector
    ``inner..outer`` (rad), by abTEM multislice of the probe at the centre of each of the grid's
    pixels (the scan step is ``grid.sampling``).

    ``atoms`` are positioned as for :func:`twin.physics.tem.simulation_cell`. The potential is sampled
    at ``grid.step``, which must keep ``outer`` within abTEM's anti-aliasing band (see
    :func:`exact_oversampling`). The aperture is hard, as in :func:`probe_intensity`. Probes run
    eagerly in batches of at most ~64 MB of waves. ``interpolation > 1`` uses PRISM (abTEM's
    ``SMatrix.reduce``) with that interpolation factor instead; ``grid.n`` must be divisible by it.
    ``progress(fraction)`` is called after each batch of probes (once, at the end, with PRISM).
    """
    wavelength = electron_wavelength(energy)
    if 3.0 * grid.step * outer > wavelength * (1 + 1e-9):
        raise ValueError(
            f"grid.step={grid.step:.3g} m: outer={outer:.3g} rad lies beyond abTEM's anti-aliasing band; "
            f"use oversampling >= {exact_oversampling(grid.sampling, energy, outer)}"
        )
    if interpolation < 1 or grid.n % interpolation:
        raise ValueError(f"interpolation={interpolation}: must be a positive divisor of grid.n={grid.n}")
    import abtem  # here: importing it takes seconds

    projected = tem.potential(tem.simulation_cell(atoms, grid), grid).build(lazy=False)
    centres = (grid.pad + np.arange(grid.size) + 0.5) * grid.sampling - grid.step / 2  # abTEM's frame
    x, y = np.meshgrid(centres, centres)  # [y, x] order once flattened
    positions = np.column_stack([x.ravel(), y.ravel()]) / ANGSTROM
    detector = abtem.AnnularDetector(inner * 1e3, outer * 1e3)
    lens = {
        "semiangle_cutoff": convergence_angle * 1e3,
        "energy": energy,
        "soft": False,
        "C10": aberrations.C10 / ANGSTROM,
        "C12": aberrations.C12 / ANGSTROM,
        "phi12": aberrations.phi12,
        "C30": aberrations.C30 / ANGSTROM,
    }
    if interpolation > 1:
        s_matrix = abtem.SMatrix(
            semiangle_cutoff=lens["semiangle_cutoff"],
            energy=energy,
            potential=projected,
            interpolation=interpolation,
            downsample=False,
        )
        scan = abtem.CustomScan(positions)
        signal = s_matrix.reduce(scan=scan, detectors=detector, ctf=abtem.CTF(**lens), lazy=False).array
    else:
        probe = abtem.Probe(**lens)
        count = -(-len(positions) // max(1, _EXACT_BATCH_BYTES // (8 * grid.n**2)))  # batches needed
        batch = -(-len(positions) // count)  # equal batches: one shape, so FFTW plans once
        padded = np.concatenate(
            [positions, np.repeat(positions[-1:], count * batch - len(positions), axis=0)]
        )
        parts = []
        for i in range(0, len(padded), batch):
            scan = abtem.CustomScan(padded[i : i + batch])
            parts.append(probe.scan(projected, scan=scan, detectors=detector, lazy=False).array)
            if progress is not None:
                progress((i + batch) / len(padded))
        signal = np.concatenate(parts)[: len(positions)]
    if progress is not None:
        progress(1.0)
    return np.asarray(signal, dtype=np.float64).reshape(grid.size, grid.size)


def convergent_beam_exit_wave(
    atoms: Atoms, grid: tem.SimulationGrid, energy: float, convergence_angle: float, aberrations: Aberrations,
    position: tuple[float, float],
) -> np.ndarray:
    """Exit wave (complex64, ``[y, x]`` on the grid's points) of the probe parked at ``position`` (m,
    from the cell's corner) after abTEM multislice through ``atoms`` (positioned as for
    :func:`twin.physics.tem.simulation_cell`); normalised so that ``sum |psi|² = grid.n²`` (the
    plane-wave convention of :func:`twin.physics.tem.exit_wave`, one electron per grid cell)."""
    import abtem  # here: importing it takes seconds

    projected = tem.potential(tem.simulation_cell(atoms, grid), grid)
    probe = abtem.Probe(semiangle_cutoff=convergence_angle * 1e3, energy=energy, soft=False,
                        C10=aberrations.C10 / ANGSTROM, C12=aberrations.C12 / ANGSTROM,
                        phi12=aberrations.phi12, C30=aberrations.C30 / ANGSTROM)
    # abTEM's grid point i sits half a pixel into the cell (see simulation_cell)
    where = np.array([[position[0] - grid.step / 2, position[1] - grid.step / 2]]) / ANGSTROM
    waves = probe.multislice(projected, scan=abtem.CustomScan(where), lazy=False)
    wave = np.ascontiguousarray(np.asarray(waves.array).reshape(grid.n, grid.n).T)
    return (wave * (grid.n / np.sqrt(np.sum(np.abs(wave) ** 2)))).astype(np.complex64)
