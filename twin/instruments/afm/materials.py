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
from twin.sample import Sample, Window

PRISTINE = Contact()
# Dopants and vacancies in the sample's lattice (model values; the pristine one is graphene-like).
SPECIES_CONTACT = {
    "Si": Contact(hamaker=1.6e-19, modulus=30e9, friction=0.06, contact_potential=0.15),
    "N": Contact(hamaker=1.2e-19, modulus=22e9, friction=0.03, contact_potential=-0.2),
}
VACANCY_CONTACT = Contact(hamaker=0.9e-19, modulus=14e9, friction=0.05, contact_potential=0.1)
NEAR = 2.5e-10  # m: a defect this close to a force curve's axis sets its contact
PROPERTIES = ("hamaker", "friction", "contact_potential")
_MOST_CELLS = 1024  # grid cells per side of a property map
_MOST_DEFECTS = 100_000  # beyond this many defects in a frame, the material looks uniform


def defect_contact(kind: str, species: str | None) -> Contact:
    """The contact of a point defect: a vacancy or an atom of ``species`` on a lattice site."""
    if kind == "vacancy":
        return VACANCY_CONTACT
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
        expected = sum(spec.density for spec in sample.defects.specs) * 1e18 * padded.width * padded.height
        placed = expected <= _MOST_DEFECTS
        defects = sample.defects_in_window(padded) if placed else []
        if defects:
            rows = np.array([int((d.y - padded.y_min) / step) for d in defects])
            cols = np.array([int((d.x - padded.x_min) / step) for d in defects])
            weight = 2 * np.pi * sigma**2 / step**2  # a cell-sized delta that blurs to a peak of 1
            for name, grid in maps.items():
                delta = [getattr(defect_contact(d.kind, d.species), name) - getattr(PRISTINE, name)
                         for d in defects]
                np.add.at(grid, (rows, cols), np.array(delta) * weight)
                if sigma / step > 0.3:  # else cells are wider than the contact: each defect is
                    maps[name] = ndimage.gaussian_filter(grid, sigma / step, mode="constant")  # averaged
        for name in maps:
            maps[name] += getattr(PRISTINE, name)
            if not placed:  # too many to place: their average effect, spread evenly
                maps[name] += sum(spec.density * 1e18 * 2 * np.pi * sigma**2 * (
                    getattr(defect_contact(spec.kind, spec.species), name) - getattr(PRISTINE, name))
                    for spec in sample.defects.specs)
        return cls(maps["hamaker"], maps["friction"], maps["contact_potential"],
                   (padded.x_min, padded.y_min), step)

    def sample(self, x: np.ndarray, y: np.ndarray, names: tuple[str, ...] = PROPERTIES
               ) -> dict[str, np.ndarray]:
        """The properties ``names`` at sample-frame points ``x``, ``y`` (m), bilinear between cells."""
        coords = [(np.asarray(y) - self.origin[1]) / self.step - 0.5,
                  (np.asarray(x) - self.origin[0]) / self.step - 0.5]
        return {name: ndimage.map_coordinates(getattr(self, name), coords, order=1, mode="nearest")
                for name in names}
