"""What an exposure's electrons do to the shared sample: knock-on damage over the area they land on
(:mod:`twin.physics.damage`); later images of either instrument lack the atoms knocked out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from twin.physics.damage import displaced_in_area, largest_cross_section, sampled_knock_ons
from twin.sample import Window

if TYPE_CHECKING:
    from twin.instruments.tem.instrument import TemInstrument

_STREAM_DAMAGE = 0x444D47  # random stream tag for knock-on damage
_NEGLIGIBLE_DISPLACEMENTS = 1e-9  # per atom: below this an exposure damages nothing
_MOST_SAMPLED_HITS = 100_000  # knock-ons one low-magnification exposure may record


def irradiate(tem: TemInstrument, area: Window, inside: Callable[[Any, Any], Any], dose: float, energy: float,
              frame_index: int) -> int:
    """Knock atoms out of ``tem``'s sample: ``dose`` electrons per m² of ``energy`` (eV) wherever
    ``inside(x, y)`` holds within ``area`` (every atom drawn, or over an area too large to list its
    atoms the collisions sampled), drawn from frame ``frame_index``'s random stream. Returns how many
    atoms left."""
    sample = tem.sample
    material = sample.crystal.name
    sigma = largest_cross_section(sample.species, material, energy)
    if sigma * dose < _NEGLIGIBLE_DISPLACEMENTS:
        return 0
    rng = np.random.default_rng([tem.seed, _STREAM_DAMAGE, frame_index])
    if sample.atom_density() * area.width * area.height > tem.hardware.damage_atom_limit:
        reach = sample.lattice_spacing

        def atoms_around(x: float, y: float) -> Any:
            return sample.atoms_in_window(Window.around(x, y, 2 * reach, 2 * reach))

        bounds = (area.x_min, area.y_min, area.x_max, area.y_max)
        hit = sampled_knock_ons(bounds, inside, dose, energy, material, sigma, sample.atom_density(),
                                reach, atoms_around, rng, _MOST_SAMPLED_HITS)
        if hit is None:
            return 0
        hit.info["window"] = area.as_dict()
        return sample.remove_atoms(hit)
    atoms = sample.atoms_in_window(area)
    hit = displaced_in_area(atoms, (area.x_min, area.y_min), inside, dose, energy, material, rng)
    return sample.remove_atoms(atoms[hit])


def irradiate_disk(tem: TemInstrument, centre: np.ndarray, diameter: float, dose: float, energy: float,
                   frame_index: int) -> int:
    """:func:`irradiate` over the disk of ``diameter`` (m) around ``centre`` (m): a TEM beam's."""
    cx, cy = float(centre[0]), float(centre[1])
    return irradiate(tem, Window.around(cx, cy, diameter, diameter),
                     lambda x, y: (x - cx) ** 2 + (y - cy) ** 2 <= diameter**2 / 4, dose, energy, frame_index)
