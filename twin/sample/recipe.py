"""Declarative samples: a small YAML file (or dict) says what the specimen is made of; :func:`build`
turns it and a seed into a :class:`~twin.sample.specimen.Sample`.

Numbers are SI (m, rad, per m²); strings may carry units (``"1.1 deg"``, ``"3.35 A"``,
``"0.008 nm^-2"``). Example::

    name: twisted-bilayer
    description: Two graphene layers, the upper one twisted by 1.1 degrees
    ripples: {rms: 0.5 A, wavelength: [5 nm, 20 nm]}
    layers:
      - material: graphene
        defects:
          - {kind: vacancy, density: 0.008 nm^-2}
          - {kind: substitution, species: Si, density: 0.003 nm^-2, z_offset: 1.8 A}
      - material: graphene
        twist: 1.1 deg
        z: 3.35 A
        flakes: [{shape: hexagon, centre: [0, 0], size: 2 um}]

A layer's ``material`` is a built-in crystal (graphene, hBN, MoS2, WS2) or ``{cif: PATH, cells: N}``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from twin import yaml_files
from twin.constants import ANGSTROM
from twin.sample.defects import KINDS, DefectSpec
from twin.sample.lattice import MATERIALS, Crystal2D, from_cif, strained
from twin.sample.regions import SHAPES, Flake
from twin.sample.ripples import DisplacementField, RippleField
from twin.sample.units import check_keys, pair, quantity

if TYPE_CHECKING:
    from twin.sample.specimen import Sample

_MOST_GRAINS = 2000
_ROTATION_STREAM = 0x524F54  # random stream tag for the first layer's orientation
# Rotational period (rad) of each built-in crystal: a random orientation is drawn within it.
PERIODS = {"graphene": np.pi / 3, "hBN": 2 * np.pi / 3, "MoS2": 2 * np.pi / 3, "WS2": 2 * np.pi / 3}


@dataclass(frozen=True)
class DefectRecipe:
    """Defects or features of one kind, in SI: ``density`` per m², ``at`` explicit positions (m),
    ``size`` a range of atoms (multivacancy) or radii (m; pore, contamination), ``z_offset`` and
    ``height`` in m. See :class:`~twin.sample.defects.DefectSpec`."""

    kind: str
    density: float = 0.0
    species: str | None = None
    sublattices: tuple[int, ...] = ()
    z_offset: float = 0.0
    size: tuple[float, float] = (0.0, 0.0)
    height: float = 0.0
    at: tuple[tuple[float, float], ...] = ()
    width: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "density": self.density}
        if self.species is not None:
            data["species"] = self.species
        data.update(sublattices=list(self.sublattices), z_offset=self.z_offset, size=list(self.size),
                    height=self.height, at=[list(p) for p in self.at], width=self.width)
        return data

    def spec(self) -> DefectSpec:
        """The same in the layer's internal units (Å, per nm²)."""
        scale = 1.0 if self.kind == "multivacancy" else 1 / ANGSTROM
        return DefectSpec(self.kind, self.density / 1e18, self.sublattices, self.species,
                          self.z_offset / ANGSTROM, (self.size[0] * scale, self.size[1] * scale),
                          self.height / ANGSTROM, tuple((x / ANGSTROM, y / ANGSTROM) for x, y in self.at),
                          self.width / ANGSTROM)


@dataclass(frozen=True)
class LayerRecipe:
    """One layer: its crystal, its twist (rad) against the first layer, its height ``z`` (m), its
    lattice origin ``shift`` (m; stacking), where it lies (``flakes``; everywhere if none)."""

    material: str = "graphene"
    cif: str | None = None
    cells: int = 1
    twist: float = 0.0
    z: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)
    defects: tuple[DefectRecipe, ...] = ()
    flakes: tuple[Flake, ...] = ()
    strain: tuple[float, float, float] = (0.0, 0.0, 0.0)  # uniform (exx, eyy, exy) of the sample frame
    displacement_rms: float = 0.0  # m: a smooth random in-plane displacement field (local strain) ...
    displacement_wavelength: tuple[float, float] = (5e-9, 20e-9)  # m: ... over these wavelengths
    grain_size: float = 0.0  # m: > 0 makes the layer polycrystalline over grain_region (m, [[x], [y]])
    grain_region: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))

    def crystal(self) -> Crystal2D:
        return from_cif(self.cif, self.cells) if self.cif else MATERIALS[self.material]()

    def to_dict(self) -> dict[str, Any]:
        return {
            "material": {"cif": self.cif, "cells": self.cells} if self.cif else self.material,
            "twist": self.twist, "z": self.z, "shift": list(self.shift), "strain": list(self.strain),
            "displacement": {"rms": self.displacement_rms, "wavelength": list(self.displacement_wavelength)},
            **({"grains": {"size": self.grain_size, "region": [list(r) for r in self.grain_region]}}
               if self.grain_size > 0 else {}),
            "defects": [d.to_dict() for d in self.defects],
            "flakes": [{"shape": f.shape, "centre": list(f.centre), "size": f.size, "rotation": f.rotation,
                        "aspect": f.aspect, "vertices": [list(v) for v in f.vertices]} for f in self.flakes],
        }


@dataclass(frozen=True)
class SampleRecipe:
    """A whole specimen: layers on a support whose top atomic plane is at ``support_height`` (m; flat, or a
    holey carbon film ``film_thickness`` thick with holes of ``hole_diameter`` every ``hole_pitch``), rippled
    with ``ripple_rms`` (m) over ``ripple_wavelength`` (m, a range), the first layer turned by
    ``rotation`` (rad; None: drawn from the seed)."""

    name: str
    layers: tuple[LayerRecipe, ...]
    description: str = ""
    rotation: float | None = None
    support_height: float = -3.35e-10
    ripple_rms: float = 0.0
    ripple_wavelength: tuple[float, float] = (5e-9, 20e-9)
    support_kind: str = "flat"  # or "holey-carbon": a film whose top is at support_height
    film_thickness: float = 3e-9
    hole_diameter: float = 1.2e-6
    hole_pitch: float = 2e-6

    def to_dict(self) -> dict[str, Any]:
        """Plain data (SI numbers), as :func:`from_dict` reads it back."""
        return {
            "name": self.name, "description": self.description,
            "rotation": "random" if self.rotation is None else self.rotation,
            "support": {"kind": self.support_kind, "height": self.support_height} | (
                {"thickness": self.film_thickness, "hole_diameter": self.hole_diameter,
                 "pitch": self.hole_pitch} if self.support_kind == "holey-carbon" else {}),
            "ripples": {"rms": self.ripple_rms, "wavelength": list(self.ripple_wavelength)},
            "layers": [layer.to_dict() for layer in self.layers],
        }


    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def build(recipe: SampleRecipe, seed: int) -> Sample:
    """The sample ``recipe`` describes, its random parts drawn from ``seed``."""
    # here, not at the top: reading and checking a sample file (a typo reported at once) needs neither
    # the atoms (ASE) nor the grains' Voronoi cells (SciPy)
    from twin.sample.grains import boundaries as grain_boundaries
    from twin.sample.grains import grain_cells, grain_flake
    from twin.sample.specimen import Layer, Sample
    from twin.sample.support import HoleyCarbon

    crystals = [layer.crystal() for layer in recipe.layers]
    for n, (crystal, layer) in enumerate(zip(crystals, recipe.layers, strict=True)):
        if len(crystal.basis) != 2 and any(d.kind == "stone-wales" for d in layer.defects):
            raise ValueError(f"layers[{n}]: Stone-Wales defects need a two-atom (honeycomb) basis; "
                             f"{crystal.name} has {len(crystal.basis)}")
    rotation = recipe.rotation
    if rotation is None:
        period = PERIODS.get(crystals[0].name, 2 * np.pi)
        rotation = float(np.random.default_rng([seed, _ROTATION_STREAM]).uniform(0.0, period))
    layers, boundaries = [], []
    for n, (crystal, layer) in enumerate(zip(crystals, recipe.layers, strict=True)):
        displacement = None
        if layer.displacement_rms > 0:
            shortest, longest = (w / ANGSTROM for w in layer.displacement_wavelength)
            displacement = DisplacementField(layer.displacement_rms / ANGSTROM, shortest, longest,
                                             seed=seed * 64 + n)
        specs = tuple(d.spec() for d in layer.defects)
        if layer.grain_size > 0:  # each grain a layer of its own on its cell
            grains = grain_cells(layer.grain_region, layer.grain_size, seed, n)
            for cell, angle, origin in grains:
                grain, turned = strained(crystal, angle, layer.strain)
                origin_a = (origin[0] / ANGSTROM, origin[1] / ANGSTROM)
                layers.append(Layer(grain, turned, layer.z / ANGSTROM, origin_a, specs, (grain_flake(cell),),
                                    displacement, sheet=n))
            boundaries.extend(grain_boundaries([cell for cell, _, _ in grains]))
            continue
        crystal, turned = strained(crystal, rotation + layer.twist, layer.strain)
        layers.append(Layer(crystal, turned, layer.z / ANGSTROM,
                            (layer.shift[0] / ANGSTROM, layer.shift[1] / ANGSTROM),
                            specs, layer.flakes, displacement))
    layers = tuple(layers)
    shortest, longest = (w / ANGSTROM for w in recipe.ripple_wavelength)
    ripples = RippleField(rms=recipe.ripple_rms / ANGSTROM, wavelength_min=shortest, wavelength_max=longest,
                          seed=seed)
    film = None
    if recipe.support_kind == "holey-carbon":
        film = HoleyCarbon(recipe.support_height / ANGSTROM, recipe.film_thickness / ANGSTROM,
                           recipe.hole_diameter / ANGSTROM, recipe.hole_pitch / ANGSTROM, seed)
    return Sample(recipe.name, layers, ripples, seed, recipe.support_height, recipe.description, recipe, film,
                  tuple(boundaries))


def load(path: str | Path) -> SampleRecipe:
    """The recipe in the YAML file at ``path``."""
    path = Path(path)
    data, _ = yaml_files.read(path, "sample file")
    if not isinstance(data, dict):
        raise ValueError(f"sample file {str(path)!r} must hold a mapping (name, layers, ...)")
    data.setdefault("name", path.stem)
    try:
        recipe = from_dict(data)
    except (ValueError, TypeError) as error:  # say which file: a server may be given several
        raise type(error)(f"sample file {str(path)!r}: {error}") from None
    base = path.parent  # CIF paths are relative to the sample file
    layers = tuple(
        replace(layer, cif=str((base / layer.cif).resolve()))
        if layer.cif and not Path(layer.cif).is_absolute() else layer
        for layer in recipe.layers
    )
    return replace(recipe, layers=layers)


def from_dict(data: dict[str, Any]) -> SampleRecipe:
    """A recipe from plain data (as YAML gives it), every field checked by name."""
    check_keys("sample", data, ("name", "description", "rotation", "support", "ripples", "layers"))
    if "name" not in data or not isinstance(data["name"], str) or not data["name"].strip():
        raise ValueError(f"sample name = {data.get('name')!r}: give a non-empty string")
    layers = data.get("layers")
    if not isinstance(layers, list) or not layers:
        raise ValueError(f"sample layers = {layers!r}: give a list of at least one layer")
    rotation = data.get("rotation")
    support = data.get("support") or {}
    check_keys("support", support, ("kind", "height", "thickness", "hole_diameter", "pitch"))
    kind = support.get("kind", "flat")
    if kind not in ("flat", "holey-carbon"):
        raise ValueError(f"support.kind = {kind!r} is not known; allowed: flat, holey-carbon")
    ripples = data.get("ripples") or {}
    check_keys("ripples", ripples, ("rms", "wavelength"))
    return SampleRecipe(
        name=data["name"].strip(),
        layers=tuple(_layer(n, layer) for n, layer in enumerate(layers)),
        description=str(data.get("description", "")),
        rotation=None if rotation in (None, "random") else quantity("rotation", rotation, "angle"),
        support_height=quantity("support.height", support.get("height", -3.35e-10), "length"),
        support_kind=kind,
        film_thickness=quantity("support.thickness", support.get("thickness", 3e-9), "length"),
        hole_diameter=quantity("support.hole_diameter", support.get("hole_diameter", 1.2e-6), "length"),
        hole_pitch=quantity("support.pitch", support.get("pitch", 2e-6), "length"),
        ripple_rms=quantity("ripples.rms", ripples.get("rms", 0.0), "length"),
        ripple_wavelength=pair("ripples.wavelength", ripples.get("wavelength", [5e-9, 20e-9]), "length"),
    )


def _layer(n: int, data: Any) -> LayerRecipe:
    where = f"layers[{n}]"
    if not isinstance(data, dict):
        raise ValueError(f"{where} = {data!r} must be a mapping (material, twist, z, ...)")
    check_keys(where, data,
               ("material", "twist", "z", "shift", "defects", "flakes", "strain", "displacement", "grains"))
    grains = data.get("grains") or {}
    check_keys(f"{where}.grains", grains, ("size", "region"))
    grain_size = quantity(f"{where}.grains.size", grains.get("size", 0.0), "length")
    region = grains.get("region", [[0.0, 0.0], [0.0, 0.0]])
    if not isinstance(region, list) or len(region) != 2:
        raise ValueError(f"{where}.grains.region = {region!r}: give [[x_lo, x_hi], [y_lo, y_hi]]")
    grain_region = (pair(f"{where}.grains.region[0]", region[0], "length"),
                    pair(f"{where}.grains.region[1]", region[1], "length"))
    if grain_size > 0:
        (gx0, gx1), (gy0, gy1) = grain_region
        count = (gx1 - gx0) * (gy1 - gy0) / grain_size**2
        if gx1 <= gx0 or gy1 <= gy0 or count > _MOST_GRAINS:
            raise ValueError(f"{where}.grains: region {region!r} must be a non-empty rectangle holding "
                             f"at most {_MOST_GRAINS} grains of size {grain_size:g} m (it would hold "
                             f"{count:.0f})")
    strain = data.get("strain", [0.0, 0.0, 0.0])
    if not isinstance(strain, list) or len(strain) != 3:
        raise ValueError(f"{where}.strain = {strain!r}: give [exx, eyy, exy] (fractions)")
    strain = tuple(quantity(f"{where}.strain[{k}]", v, "number") for k, v in enumerate(strain))
    if max(abs(v) for v in strain) > 0.2:
        raise ValueError(f"{where}.strain = {list(strain)!r}: each component at most 0.2 in size")
    displacement = data.get("displacement") or {}
    check_keys(f"{where}.displacement", displacement, ("rms", "wavelength"))
    material, cif, cells = data.get("material", "graphene"), None, 1
    if isinstance(material, dict):
        check_keys(f"{where}.material", material, ("cif", "cells"))
        cif, cells = str(material.get("cif", "")), material.get("cells", 1)
        if not cif or not isinstance(cells, int) or not 1 <= cells <= 20:
            raise ValueError(f"{where}.material = {material!r}: give {{cif: PATH, cells: 1 to 20}}")
        material = Path(cif).stem
    elif material not in MATERIALS:
        raise ValueError(f"{where}.material = {material!r} is not known; allowed: {', '.join(MATERIALS)} "
                         "or {cif: PATH}")
    return LayerRecipe(
        material=material, cif=cif, cells=cells,
        twist=quantity(f"{where}.twist", data.get("twist", 0.0), "angle"),
        z=quantity(f"{where}.z", data.get("z", 0.0), "length"),
        shift=pair(f"{where}.shift", data.get("shift", [0.0, 0.0]), "length"),
        defects=tuple(_defect(f"{where}.defects[{k}]", d) for k, d in enumerate(data.get("defects") or [])),
        flakes=tuple(_flake(f"{where}.flakes[{k}]", f) for k, f in enumerate(data.get("flakes") or [])),
        strain=strain,
        displacement_rms=quantity(f"{where}.displacement.rms", displacement.get("rms", 0.0), "length"),
        displacement_wavelength=pair(f"{where}.displacement.wavelength",
                                     displacement.get("wavelength", [5e-9, 20e-9]), "length"),
        grain_size=grain_size,
        grain_region=grain_region,
    )


def _defect(where: str, data: Any) -> DefectRecipe:
    if not isinstance(data, dict):
        raise ValueError(f"{where} = {data!r} must be a mapping (kind, density, ...)")
    check_keys(where, data, ("kind", "density", "species", "sublattices", "z_offset", "size", "height", "at",
                             "width"))
    kind = data.get("kind")
    if kind not in KINDS:
        raise ValueError(f"{where}.kind = {kind!r} is not known; allowed: {', '.join(KINDS)}")
    size = data.get("size", [0.0, 0.0])
    if not isinstance(size, list):
        size = [size, size]
    recipe = DefectRecipe(
        kind=kind,
        density=quantity(f"{where}.density", data.get("density", 0.0), "density"),
        species=data.get("species"),
        sublattices=tuple(int(b) for b in data.get("sublattices", ())),
        z_offset=quantity(f"{where}.z_offset", data.get("z_offset", 0.0), "length"),
        size=pair(f"{where}.size", size, "number" if kind == "multivacancy" else "length"),
        height=quantity(f"{where}.height", data.get("height", 0.0), "length"),
        at=tuple(pair(f"{where}.at[{k}]", p, "length") for k, p in enumerate(data.get("at") or [])),
        width=quantity(f"{where}.width", data.get("width", 0.0), "length"),
    )
    recipe.spec()  # checks the combination (a substitution's species, a pore's size, ...)
    return recipe


def _flake(where: str, data: Any) -> Flake:
    if not isinstance(data, dict):
        raise ValueError(f"{where} = {data!r} must be a mapping (shape, centre, size, ...)")
    check_keys(where, data, ("shape", "centre", "size", "rotation", "aspect", "vertices"))
    if data.get("shape") not in SHAPES:
        raise ValueError(f"{where}.shape = {data.get('shape')!r} is not known; allowed: {', '.join(SHAPES)}")
    return Flake(
        shape=data["shape"],
        centre=pair(f"{where}.centre", data.get("centre", [0.0, 0.0]), "length"),
        size=quantity(f"{where}.size", data.get("size", 0.0), "length"),
        rotation=quantity(f"{where}.rotation", data.get("rotation", 0.0), "angle"),
        aspect=float(data.get("aspect", 1.0)),
        vertices=tuple(pair(f"{where}.vertices[{k}]", v, "length")
                       for k, v in enumerate(data.get("vertices") or [])),
    )
