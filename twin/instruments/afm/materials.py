"""What the tip feels besides height: adhesion, friction and contact potential of each spot.

The pristine lattice has one :class:`~twin.physics.afm.Contact`; each point defect its own. The tip
averages over its contact area, so a defect's properties spread over a Gaussian of the contact
radius ``sqrt(R a0)``: a blunter tip blurs material contrast as it blurs height.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from twin.physics.afm import Contact
from twin.sample import Defect, Sample, Window

PRISTINE = Contact()
# Dopants and vacancies in the sample's lattice (model values; the pristine one is graphene-like).
SPECIES_CONTACT = {
    "Si": Contact(hamaker=1.6e-19, modulus=30e9, friction=0.06, contact_potential=0.15),
    "N": Contact(hamaker=1.2e-19, modulus=22e9, friction=0.03, contact_potential=-0.2),
}
VACANCY_CONTACT = Contact(hamaker=0.9e-19, modulus=14e9, friction=0.05, contact_potential=0.1)
ADSORBATE_CONTACT = Contact(hamaker=1.8e-19, modulus=40e9, friction=0.08, contact_potential=0.3)
# amorphous hydrocarbon: soft and lossy (viscoelastic), sticky, rough to slide over
CONTAMINATION_CONTACT = Contact(hamaker=0.7e-19, modulus=5e9, friction=0.2, contact_potential=-0.1,
                                loss=4e-19)
NEAR = 2.5e-10  # m: a defect this close to a force curve's axis sets its contact
PROPERTIES = ("hamaker", "friction", "contact_potential", "loss")
_MOST_CELLS = 1024  # grid cells per side of a property map
_MOST_DEFECTS = 100_000  # beyond this many defects in a frame, the material looks uniform


def defect_contact(kind: str, species: str | None) -> Contact:
    """The contact of a defect or feature of ``kind`` (with ``species`` for substitutions)."""
    if kind in ("vacancy", "multivacancy", "pore"):
        return VACANCY_CONTACT
    if kind == "adsorbate":
        return ADSORBATE_CONTACT
    if kind == "contamination":
        return CONTAMINATION_CONTACT
    return SPECIES_CONTACT.get(species or "", PRISTINE)


def contact_at(sample: Sample, x: float, y: float) -> Contact:
    """The contact a sharp force-curve tip meets at ``(x, y)`` (m): a defect within ``NEAR``, or the
    lattice."""
    near = sample.defects_in_window(Window.around(x, y, 2 * NEAR, 2 * NEAR))
    for defect in sorted(near, key=lambda d: math.hypot(d.x - x, d.y - y)):
        if math.hypot(defect.x - x, defect.y - y) <= NEAR:
            return defect_contact(defect.kind, defect.species)
    return PRISTINE


@dataclass(frozen=True)
class MaterialMap:
    """Hamaker constant (J), friction coefficient and contact potential (V) seen by a tip over a
    window, on a square grid: cell ``(r, c)`` centred at ``origin + ((c, r) + 1/2) step``."""

    hamaker: np.ndarray
    friction: np.ndarray
    contact_potential: np.ndarray
    loss: np.ndarray
    origin: tuple[float, float]
    step: float

    @classmethod
    def over(cls, sample: Sample, window: Window, tip_radius: float) -> MaterialMap:
        """The map of ``sample`` over ``window`` (m) as a tip of ``tip_radius`` (m) feels it."""
        sigma = math.sqrt(tip_radius * PRISTINE.a0)  # contact radius
        padded = window.grown(3 * sigma)
        step = max(sigma / 3, max(padded.width, padded.height) / _MOST_CELLS)
        shape = (int(math.ceil(padded.height / step)) + 1, int(math.ceil(padded.width / step)) + 1)
        maps = {name: np.zeros(shape) for name in PROPERTIES}
        expected = sum(spec.density for spec in sample.defect_specs) * 1e18 * padded.width * padded.height
        placed = expected <= _MOST_DEFECTS
        defects = sample.defects_in_window(padded) if placed else []
        if defects:
            rows = np.array([int((d.y - padded.y_min) / step) for d in defects])
            cols = np.array([int((d.x - padded.x_min) / step) for d in defects])
            weight = 2 * np.pi * sigma**2 / step**2  # a cell-sized delta that blurs to a peak of 1
            areas = [_disc(d, padded, step, shape) for d in defects]  # patches and pores: their area
            for name, grid in maps.items():
                delta = [getattr(defect_contact(d.kind, d.species), name) - getattr(PRISTINE, name)
                         for d in defects]
                points = np.array([area is None for area in areas])
                np.add.at(grid, (rows[points], cols[points]), np.array(delta)[points] * weight)
                for area, change in zip(areas, delta, strict=True):
                    if area is not None:
                        grid[area] += change
                if sigma / step > 0.3:  # else cells are wider than the contact: each defect is
                    maps[name] = ndimage.gaussian_filter(grid, sigma / step, mode="constant")  # averaged
        for name in maps:
            maps[name] += getattr(PRISTINE, name)
            if not placed:  # too many to place: their average effect, spread evenly
                maps[name] += sum(spec.density * 1e18 * 2 * np.pi * sigma**2 * (
                    getattr(defect_contact(spec.kind, spec.species), name) - getattr(PRISTINE, name))
                    for spec in sample.defect_specs)
        return cls(maps["hamaker"], maps["friction"], maps["contact_potential"], maps["loss"],
                   (padded.x_min, padded.y_min), step)

    def sample(self, x: np.ndarray, y: np.ndarray, names: tuple[str, ...] = PROPERTIES
               ) -> dict[str, np.ndarray]:
        """The properties ``names`` at sample-frame points ``x``, ``y`` (m), bilinear between cells."""
        coords = [(np.asarray(y) - self.origin[1]) / self.step - 0.5,
                  (np.asarray(x) - self.origin[0]) / self.step - 0.5]
        return {name: ndimage.map_coordinates(getattr(self, name), coords, order=1, mode="nearest")
                for name in names}


def _disc(defect: Defect, window: Window, step: float, shape: tuple[int, int]
          ) -> tuple[np.ndarray, ...] | None:
    """Cells (an index into a grid of ``shape`` over ``window``) covered by an extended feature of
    radius ``defect.size`` (m), or None for a point defect."""
    if defect.kind not in ("pore", "contamination") or defect.size <= 0:
        return None
    x = window.x_min + (np.arange(shape[1]) + 0.5) * step
    y = window.y_min + (np.arange(shape[0]) + 0.5) * step
    inside = (x[None, :] - defect.x) ** 2 + (y[:, None] - defect.y) ** 2 < defect.size**2
    return np.nonzero(inside)
