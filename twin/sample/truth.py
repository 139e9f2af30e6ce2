"""Ground truth on any pixel grid: per-pixel class and instance labels, and the height map.

A grid is a window (m, sample frame) cut into ``rows x columns`` pixels, pixel ``(r, c)`` centred at
``(x_min + (c + 1/2) px, y_min + (r + 1/2) py)`` - the convention every image of the twin uses, so an
image and its labels line up pixel for pixel (:func:`twin.common.geometry.pixel_centres`, which the
clients use too).
"""

from __future__ import annotations

import numpy as np
from ase.data.vdw_alvarez import vdw_radii

from twin.common.geometry import pixel_centres
from twin.constants import ANGSTROM
from twin.sample.defects import multivacancy_sites, wrinkle_direction
from twin.sample.frames import FramedSample, InstrumentFrame
from twin.sample.regions import covered
from twin.sample.specimen import Defect, Sample, Window
from twin.sample.surface import vdw_height_map

# Class ids of the label masks; instance ids number the defects of ``defects_in_window`` from 1.
CLASSES = {"support": 0, "crystal": 1, "vacancy": 2, "substitution": 3, "multivacancy": 4, "pore": 5,
           "adsorbate": 6, "contamination": 7, "stone-wales": 8, "wrinkle": 9, "grain-boundary": 10}
_PAINT_ORDER = ("wrinkle", "grain-boundary", "pore", "contamination", "multivacancy", "stone-wales",
                "vacancy", "substitution", "adsorbate")
_MOST_PIXELS = 4096 * 4096


def label_masks(sample: Sample, window: Window, shape: tuple[int, int], frame: InstrumentFrame | None = None
                ) -> tuple[np.ndarray, np.ndarray, list[Defect]]:
    """Per-pixel class (``CLASSES``) and instance ids (0: none; k: ``defects[k - 1]``) over ``window``
    cut into ``shape = (rows, columns)`` pixels, with the defects they number; ``window`` and the
    defects' positions are in an instrument's ``frame`` (the sample's own by default).

    A point defect labels the disc of half a bond length around its site (at least the pixel that holds
    it); a multivacancy the discs of all its sites; pores and contamination patches their radius.
    """
    rows, columns = _checked(shape)
    x, y = pixel_centres(window, shape)
    xx, yy = np.meshgrid(x, y)
    frame = frame or InstrumentFrame()
    classes = np.zeros(shape, dtype=np.uint8)
    instances = np.zeros(shape, dtype=np.int32)
    sx, sy = frame.to_sample(xx, yy)
    for layer in sample.layers:
        classes[covered(layer.flakes, sx, sy)] = CLASSES["crystal"]
    margin = max((spec.reach for spec in sample.defect_specs), default=0.0) * ANGSTROM
    defects = FramedSample(sample, frame).defects_in_window(window.grown(margin))
    order = sorted(range(len(defects)), key=lambda n: _PAINT_ORDER.index(defects[n].kind))
    px, py = window.width / columns, window.height / rows
    for n in order:
        defect = defects[n]
        for cx, cy, radius in _footprint(sample, defect, frame):
            c0, c1 = np.searchsorted(x, [cx - radius, cx + radius])
            r0, r1 = np.searchsorted(y, [cy - radius, cy + radius])
            inside = (xx[r0:r1, c0:c1] - cx) ** 2 + (yy[r0:r1, c0:c1] - cy) ** 2 <= radius**2
            col, row = int((cx - window.x_min) // px), int((cy - window.y_min) // py)
            if 0 <= row < rows and 0 <= col < columns and not inside.any():
                r0, r1, c0, c1, inside = row, row + 1, col, col + 1, np.ones((1, 1), bool)  # under a pixel
            classes[r0:r1, c0:c1][inside] = CLASSES[defect.kind]
            instances[r0:r1, c0:c1][inside] = n + 1
    return classes, instances, defects


def _footprint(sample: Sample, defect: Defect, frame: InstrumentFrame) -> list[tuple[float, float, float]]:
    """Discs ``(x, y, radius)`` (m, in ``frame`` like ``defect``) a defect covers."""
    layer = sample.layers[max(defect.layer, 0)]
    bond = layer.crystal.a / np.sqrt(3) * ANGSTROM  # nearest-neighbour distance of a honeycomb
    if defect.kind == "grain-boundary":  # discs a bond wide along the segment
        a, b = sample.grain_boundary_at(*frame.to_sample(defect.x, defect.y))
        a, b = (np.array(frame.from_sample(*p)) for p in (a, b))
        steps = np.linspace(0.0, 1.0, max(2, int(np.hypot(*(b - a)) / bond) + 1))
        return [(float(a[0] + t * (b - a)[0]), float(a[1] + t * (b - a)[1]), bond) for t in steps]
    if defect.kind in ("pore", "contamination"):
        return [(defect.x, defect.y, defect.size)]
    if defect.kind == "stone-wales":
        return [(defect.x, defect.y, 1.5 * bond)]
    if defect.kind == "wrinkle":  # discs along the ridge, as wide as its half-height width
        anchor = sample.site_defect(defect.layer, "wrinkle", *frame.to_sample(defect.x, defect.y))
        width = 1.18 * anchor.spec.width * ANGSTROM  # half width at half height
        along = wrinkle_direction(anchor)
        c, s = np.cos(frame.rotation), np.sin(frame.rotation)
        along = np.array([c * along[0] + s * along[1], -s * along[0] + c * along[1]])  # into the frame
        steps = np.arange(-defect.size / 2, defect.size / 2 + width / 2, width / 2)
        return [(defect.x + t * along[0], defect.y + t * along[1], width) for t in steps]
    if defect.kind == "multivacancy":
        anchor = sample.site_defect(defect.layer, "multivacancy", *frame.to_sample(defect.x, defect.y))
        sites = sorted(multivacancy_sites(layer.crystal, anchor, layer.rotation, np.array(layer.shift)))
        i, j, b = np.array(sites).T
        xy = layer.crystal.site_positions(i, j, b, layer.rotation)[:, :2] + layer.shift
        sx, sy = layer.displaced(xy[:, 0], xy[:, 1])
        px, py = frame.from_sample(sx * ANGSTROM, sy * ANGSTROM)
        return [(float(u), float(v), bond / 2) for u, v in zip(px, py, strict=True)]
    return [(defect.x, defect.y, bond / 2)]


def height_map(sample: Sample, window: Window, shape: tuple[int, int], frame: InstrumentFrame | None = None
               ) -> np.ndarray:
    """The van der Waals top surface (m) at each pixel: the highest point of any atom's sphere within
    the pixel, or the support where no atom reaches (what an ideal, infinitely sharp tip would see);
    ``window`` in an instrument's ``frame`` (the sample's own by default)."""
    rows, columns = _checked(shape)
    step = min(window.width / columns, window.height / rows)  # square cells, as fine as the pixels
    grid = (int(np.ceil(window.height / step)), int(np.ceil(window.width / step)))
    atoms = FramedSample(sample, frame or InstrumentFrame()).atoms_in_window(window)
    positions = atoms.positions * ANGSTROM + np.array([window.x_min, window.y_min, 0.0])
    radii = vdw_radii[atoms.numbers] * ANGSTROM
    origin = (window.x_min, window.y_min)
    surface = vdw_height_map(positions, radii, origin, step, grid, sample.floor_height)
    if grid == (rows, columns):
        return surface
    x, y = pixel_centres(window, shape)
    cols = np.minimum(((x - window.x_min) // step).astype(int), grid[1] - 1)
    rows_at = np.minimum(((y - window.y_min) // step).astype(int), grid[0] - 1)
    return surface[np.ix_(rows_at, cols)]


def _checked(shape: tuple[int, int]) -> tuple[int, int]:
    rows, columns = (int(v) for v in shape)
    if min(rows, columns) < 1 or rows * columns > _MOST_PIXELS:
        raise ValueError(f"shape = {tuple(shape)!r}: rows and columns >= 1, at most {_MOST_PIXELS} pixels")
    return rows, columns
