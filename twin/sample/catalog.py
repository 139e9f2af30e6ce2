"""Named built-in samples (``twin serve --sample NAME``), written as the recipes a sample file holds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the command line reads the names alone, without ASE and SciPy
    from twin.sample.recipe import SampleRecipe
    from twin.sample.specimen import Sample

DEFAULT_SAMPLE = "graphene-defects"
_RIPPLES = {"rms": "0.5 A", "wavelength": ["5 nm", "20 nm"]}  # a supported monolayer's gentle ripples
_GRAPHENE_DEFECTS = [
    {"kind": "vacancy", "density": "0.008 nm^-2", "sublattices": [0, 1]},
    {"kind": "substitution", "species": "N", "density": "0.006 nm^-2", "sublattices": [0, 1]},
    {"kind": "substitution", "species": "Si", "density": "0.003 nm^-2", "sublattices": [0, 1],
     "z_offset": "1.8 A"},
]

BUILT_IN: dict[str, dict[str, Any]] = {
    "graphene-defects": {
        "description": "Monolayer graphene on a flat support with gentle ripples, monovacancies and "
                       "substitutional N and Si dopants (Si buckled 1.8 Å out of plane)",
        "ripples": _RIPPLES,
        "layers": [{"material": "graphene", "defects": _GRAPHENE_DEFECTS}],
    },
    "graphene": {
        "description": "Monolayer graphene on a flat support with gentle ripples, pristine",
        "ripples": _RIPPLES,
        "layers": [{"material": "graphene"}],
    },
    "hbn-defects": {
        "description": "Monolayer hBN with boron and nitrogen vacancies and carbon on nitrogen sites",
        "ripples": _RIPPLES,
        "layers": [{"material": "hBN", "defects": [
            {"kind": "vacancy", "density": "0.008 nm^-2", "sublattices": [0]},
            {"kind": "vacancy", "density": "0.004 nm^-2", "sublattices": [1]},
            {"kind": "substitution", "species": "C", "density": "0.004 nm^-2", "sublattices": [1]},
        ]}],
    },
    "mos2-defects": {
        "description": "Monolayer MoS2 with sulfur and molybdenum vacancies and W substitutions",
        "ripples": _RIPPLES,
        "support": {"height": "-4.9 A"},
        "layers": [{"material": "MoS2", "defects": [
            {"kind": "vacancy", "density": "0.03 nm^-2", "sublattices": [1, 2]},
            {"kind": "vacancy", "density": "0.002 nm^-2", "sublattices": [0]},
            {"kind": "substitution", "species": "W", "density": "0.004 nm^-2", "sublattices": [0]},
        ]}],
    },
    "ws2-defects": {
        "description": "Monolayer WS2 with sulfur vacancies and Mo substitutions",
        "ripples": _RIPPLES,
        "support": {"height": "-4.9 A"},
        "layers": [{"material": "WS2", "defects": [
            {"kind": "vacancy", "density": "0.02 nm^-2", "sublattices": [1, 2]},
            {"kind": "substitution", "species": "Mo", "density": "0.004 nm^-2", "sublattices": [0]},
        ]}],
    },
    "twisted-bilayer-graphene": {
        "description": "Two graphene layers, the upper one twisted by 3° (moiré period 4.7 nm), with "
                       "vacancies in both",
        "ripples": _RIPPLES,
        "layers": [
            {"material": "graphene", "defects": [{"kind": "vacancy", "density": "0.004 nm^-2"}]},
            {"material": "graphene", "twist": "3 deg", "z": "3.35 A",
             "defects": [{"kind": "vacancy", "density": "0.004 nm^-2"}]},
        ],
    },
    "graphene-features": {
        "description": "Graphene flakes (hexagons 4 µm and 1 µm corner to corner, the larger on the stage "
                       "centre, the smaller 3.2 µm away) with vacancies, "
                       "multivacancies, Stone-Wales defects, pores, Si dopants, Pt adatoms, hydrocarbon "
                       "contamination and wrinkles",
        "ripples": _RIPPLES,
        "layers": [{"material": "graphene", "flakes": [
            {"shape": "hexagon", "centre": ["0 um", "0 um"], "size": "2 um"},
            {"shape": "hexagon", "centre": ["3 um", "1 um"], "size": "0.5 um", "rotation": "10 deg"},
        ], "defects": [
            {"kind": "vacancy", "density": "0.005 nm^-2"},
            {"kind": "multivacancy", "density": "0.002 nm^-2", "size": [2, 6]},
            {"kind": "pore", "density": "0.0005 nm^-2", "size": ["0.4 nm", "1.5 nm"]},
            {"kind": "substitution", "species": "Si", "density": "0.002 nm^-2", "z_offset": "1.8 A"},
            {"kind": "adsorbate", "species": "Pt", "density": "0.002 nm^-2", "height": "2.2 A"},
            {"kind": "contamination", "density": "0.0003 nm^-2", "size": ["1 nm", "3 nm"],
             "height": "1 nm"},
            {"kind": "stone-wales", "density": "0.002 nm^-2"},
            {"kind": "wrinkle", "density": "0.00002 nm^-2", "size": ["20 nm", "80 nm"], "height": "1 nm",
             "width": "1.5 nm"},
        ]}],
    },
    "polycrystalline-graphene": {
        "description": "CVD-like graphene over 800 nm x 800 nm around the origin: grains of ~20 nm, each "
                       "turned its own way, meeting at grain boundaries; vacancies in every grain",
        "ripples": _RIPPLES,
        "layers": [{"material": "graphene",
                    "grains": {"size": "20 nm", "region": [["-400 nm", "400 nm"], ["-400 nm", "400 nm"]]},
                    "defects": [{"kind": "vacancy", "density": "0.005 nm^-2"}]}],
    },
    "graphene-on-holey-carbon": {
        "description": "Graphene with vacancies and Si dopants on a holey amorphous-carbon film (3 nm thick, "
                       "1.2 µm holes every 2 µm, one centred on the origin): suspended over the holes, on "
                       "carbon between them",
        "ripples": _RIPPLES,
        "support": {"kind": "holey-carbon", "height": "-3.35 A", "thickness": "3 nm",
                    "hole_diameter": "1.2 um", "pitch": "2 um"},
        "layers": [{"material": "graphene", "defects": _GRAPHENE_DEFECTS}],
    },
}
SAMPLES = tuple(BUILT_IN)


def recipe_for(name: str) -> SampleRecipe:
    """The recipe of the built-in sample ``name``, or of the sample file at path ``name``."""
    from twin.sample.recipe import from_dict, load

    if name in BUILT_IN:
        return from_dict({"name": name, **BUILT_IN[name]})
    if name.endswith((".yaml", ".yml")) or Path(name).is_file():
        return load(name)
    raise ValueError(f"sample = {name!r} is not a built-in sample or a sample file (.yaml); built-in: "
                     f"{', '.join(SAMPLES)}")


def build_sample(name: str, seed: int) -> Sample:
    """The built-in sample called ``name`` (or the one in the sample file ``name``), from ``seed``."""
    from twin.sample.recipe import build

    return build(recipe_for(name), seed)
