"""The specimen seen through pixels far coarser than its lattice: how many atoms of each element lie
over each pixel, in projection. This is what low-magnification imaging needs: mass and thickness,
where the film, its holes, the flakes, pores and contamination are, and the amorphous film's
low-frequency density fluctuations (the source of its Thon rings), but not a crystal's lattice.

Densities are atoms per Å² on a grid of square pixels of ``step`` Å whose pixel ``(r, c)`` is centred at
``((ix0 + c + 1/2) step, (iy0 + r + 1/2) step)`` (Å, sample frame): a grid on the global lattice of
pixels of that size, so that the same place gives the same film in any window.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import scipy.fft

from twin.constants import ANGSTROM
from twin.sample.frames import FramedSample
from twin.sample.regions import covered
from twin.sample.specimen import Layer, Sample, Window

# The film's projected structure factor at low spatial frequency k (1/Å): measured from its atoms
# (HoleyCarbon: a lattice gas with a fixed count per 40 Å cell, so long waves are suppressed),
# S(k) = S0 + (1 - S0) (1 - exp(-(k / K_S)^2)); tests/test_low_magnification.py checks it.
S0, K_S = 0.04, 0.2
_FILM_STREAM = 0x46494C  # tag of the film's coarse random field
BYTES_PER_POINT = 128  # peak memory of a projected-mass view per grid point (measured ~100 B, with margin)
FEATURE_CELL_LIMIT = 5000  # defect cells beyond which a view's features are too small to matter (≥ 1.4 µm)


@dataclass(frozen=True)
class CoarseGrid:
    """A grid of ``shape`` pixels of ``step`` Å, its first pixel at global index ``(ix0, iy0)``."""

    ix0: int
    iy0: int
    step: float
    shape: tuple[int, int]

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixel centres (Å): x along columns, y along rows."""
        x = (self.ix0 + np.arange(self.shape[1]) + 0.5) * self.step
        y = (self.iy0 + np.arange(self.shape[0]) + 0.5) * self.step
        return x, y

    @property
    def window(self) -> Window:
        side = self.step * ANGSTROM
        x0, y0 = self.ix0 * side, self.iy0 * side
        return Window(x0, y0, x0 + self.shape[1] * side, y0 + self.shape[0] * side)


def areal_densities(seen: FramedSample, grid: CoarseGrid) -> dict[str, np.ndarray]:
    """Atoms per Å² of each element over each pixel (projected along z) of a ``grid`` in the frame of
    the instrument that ``seen`` shows the sample to: the layers where they lie (flakes, less their
    pores), the film where it is not a hole, with its density fluctuations, and the point-like features
    (dopants, vacancies, adatoms, contamination) when the view is small enough for them to matter
    (see ``FEATURE_CELL_LIMIT``)."""
    sample = seen.sample
    x, y = grid.centres()
    xm, ym = seen.frame.to_sample(*np.meshgrid(x * ANGSTROM, y * ANGSTROM))
    densities: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(grid.shape))
    sheets_done: set[int] = set()
    for layer in sample.layers:
        if layer.sheet >= 0:  # a polycrystalline sheet's grains tile its region: cover it once
            if layer.sheet in sheets_done:
                continue
            sheets_done.add(layer.sheet)
            bounds = np.array([flake.bounds() for grain in sample.layers if grain.sheet == layer.sheet
                               for flake in grain.flakes])
            cover = ((xm >= bounds[:, 0].min()) & (xm < bounds[:, 2].max())
                     & (ym >= bounds[:, 1].min()) & (ym < bounds[:, 3].max())).astype(float)
        else:
            cover = covered(layer.flakes, xm, ym).astype(float)
        for symbol, count in _basis_counts(layer).items():
            densities[symbol] += cover * count / layer.crystal.area_per_cell
    if sample.film is not None:
        film = sample.film
        solid = ~film.in_hole(xm / ANGSTROM, ym / ANGSTROM)
        mean = film.density * film.thickness
        fluctuation = film_fluctuation(film.seed, mean, grid)
        densities["C"] += solid * (mean + fluctuation)
    if _feature_cells(sample, grid) <= FEATURE_CELL_LIMIT:
        for symbol, change in _features(seen, grid).items():
            densities[symbol] += change
    return dict(densities)


def film_fluctuation(seed: int, mean: float, grid: CoarseGrid) -> np.ndarray:
    """The amorphous film's projected density fluctuation (atoms per Å²) over the grid: white noise of
    the pixels' counting statistics (variance ``mean / pixel area``), drawn per global pixel from the
    seed, shaped by the film's structure factor ``S(k)``. The same pixels give the same values in
    any window; another pixel size gives another (equally likely) film."""
    rows, cols = grid.shape
    iy = grid.iy0 + np.arange(rows)[:, None]
    ix = grid.ix0 + np.arange(cols)[None, :]
    scale = np.uint64(int(round(grid.step * 1000)))  # the pixel size tags the random field
    white = hashed_normal(np.uint64(seed), np.uint64(_FILM_STREAM) ^ scale, ix, iy)
    white *= np.sqrt(mean / grid.step**2)
    ky, kx = scipy.fft.fftfreq(rows, grid.step)[:, None], scipy.fft.rfftfreq(cols, grid.step)[None, :]
    k2 = kx**2 + ky**2
    shape = np.sqrt(S0 + (1 - S0) * (1 - np.exp(-k2 / K_S**2)))
    return scipy.fft.irfft2(scipy.fft.rfft2(white, workers=-1) * shape, s=(rows, cols), workers=-1)


def hashed_normal(seed: np.uint64, stream: np.uint64, ix: np.ndarray, iy: np.ndarray) -> np.ndarray:
    """Standard normal values, one per integer pair ``(ix, iy)``, from a counter-based hash (SplitMix64
    finaliser) of ``(seed, stream, ix, iy)``: any subset of pixels can be drawn in any order."""
    with np.errstate(over="ignore"):
        key = (np.asarray(ix, dtype=np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
               ^ np.asarray(iy, dtype=np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
               ^ seed * np.uint64(0x165667B19E3779F9) ^ stream)
        first, second = _mix(key), _mix(key ^ np.uint64(0xD6E8FEB86659FD93))
    u1 = (first >> np.uint64(11)).astype(np.float64) * 2.0**-53 + 2.0**-54  # in (0, 1)
    u2 = (second >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return np.sqrt(-2 * np.log(u1)) * np.cos(2 * np.pi * u2)


def _mix(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _feature_cells(sample: Sample, grid: CoarseGrid) -> int:
    window = grid.window
    cells = [field.cell_size for field in sample.fields]
    if not cells:
        return 0
    side = min(cells) * ANGSTROM
    return int(np.ceil(window.width / side) * np.ceil(window.height / side)) * len(sample.fields)


def _features(seen: FramedSample, grid: CoarseGrid) -> dict[str, np.ndarray]:
    """Atoms per Å² that the point-like features add (or remove, negative) over each pixel."""
    change: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(grid.shape))
    point = 1.0 / grid.step**2  # one atom over a pixel
    for defect in seen.defects_in_window(grid.window):
        x, y = defect.x / ANGSTROM, defect.y / ANGSTROM
        layer = seen.sample.layers[max(defect.layer, 0)]
        if defect.kind in ("vacancy", "multivacancy", "substitution"):
            removed = defect.size if defect.kind == "multivacancy" else 1.0
            _deposit(change[defect.host], grid, x, y, -removed * point)
        if defect.kind in ("substitution", "adsorbate"):
            _deposit(change[defect.species], grid, x, y, point)
        elif defect.kind == "pore":
            for symbol, count in _basis_counts(layer).items():
                removed = -count / layer.crystal.area_per_cell  # atoms per Å² the pore takes away
                _disc(change[symbol], grid, x, y, defect.size / ANGSTROM,
                      lambda r2, d=removed: np.full_like(r2, d))
        elif defect.kind == "contamination":  # a paraboloid dome of a-C:H, one C and one H per 36 Å³
            radius = defect.size / ANGSTROM
            height = max(spec.height for spec in layer.defect_specs if spec.kind == "contamination")
            def dome(r2: np.ndarray, r: float = radius, h: float = height) -> np.ndarray:
                return h * (1 - r2 / r**2) / 36

            for symbol in ("C", "H"):
                _disc(change[symbol], grid, x, y, radius, dome)
    return change


def _basis_counts(layer: Layer) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for atom in layer.crystal.basis:
        counts[atom.symbol] += 1
    return dict(counts)


def _deposit(target: np.ndarray, grid: CoarseGrid, x: float, y: float, value: float) -> None:
    """Add ``value`` (per Å²) at ``(x, y)`` (Å), shared bilinearly among the four nearest pixels."""
    u, v = x / grid.step - grid.ix0 - 0.5, y / grid.step - grid.iy0 - 0.5
    c0, r0 = int(np.floor(u)), int(np.floor(v))
    fu, fv = u - c0, v - r0
    rows, cols = grid.shape
    for dr, wr in ((0, 1 - fv), (1, fv)):
        for dc, wc in ((0, 1 - fu), (1, fu)):
            r, c = r0 + dr, c0 + dc
            if 0 <= r < rows and 0 <= c < cols:
                target[r, c] += value * wr * wc


def _disc(target: np.ndarray, grid: CoarseGrid, x: float, y: float, radius: float, profile) -> None:
    """Add ``profile(r²)`` (per Å²) over the pixels whose centres lie within ``radius`` (Å) of ``(x, y)``;
    a disc smaller than a pixel is deposited whole at its centre."""
    reach = int(np.ceil(radius / grid.step)) + 1
    c, r = int(np.floor(x / grid.step)) - grid.ix0, int(np.floor(y / grid.step)) - grid.iy0
    rows, cols = grid.shape
    rr, cc = np.mgrid[max(r - reach, 0):min(r + reach + 1, rows), max(c - reach, 0):min(c + reach + 1, cols)]
    if rr.size == 0:
        return
    px, py = (grid.ix0 + cc + 0.5) * grid.step, (grid.iy0 + rr + 0.5) * grid.step
    r2 = (px - x) ** 2 + (py - y) ** 2
    values = np.where(r2 < radius**2, profile(r2), 0.0)
    sampled, total = values.sum() * grid.step**2, _disc_atoms(radius, profile)
    if sampled == 0:  # all of it falls between pixel centres: keep its atoms
        _deposit(target, grid, x, y, total / grid.step**2)
        return
    target[rr, cc] += values * (total / sampled)  # the disc's exact atom count, whatever its sign


def _disc_atoms(radius: float, profile) -> float:
    """Atoms in a disc of ``radius`` (Å) with areal density ``profile(r²)``."""
    r = np.linspace(0.0, radius, 65)
    mid = (r[1:] + r[:-1]) / 2
    return float(np.sum(profile(mid**2) * 2 * np.pi * mid * np.diff(r)))
