"""Named built-in samples (``twin serve --sample NAME``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twin.sample.defects import DefectSpec
from twin.sample.lattice import graphene, hexagonal_boron_nitride, molybdenum_disulfide
from twin.sample.ripples import RippleField
from twin.sample.specimen import Sample

DEFAULT_SAMPLE = "graphene-defects"


def _flake_rotation(seed: int, symmetry: float) -> float:
    """In-plane orientation of the flake relative to the stage axes, drawn from the seed (rad)."""
    return float(np.random.default_rng([seed, 0x524F54]).uniform(0.0, symmetry))


def _gentle_ripples(seed: int) -> RippleField:
    """0.5 Å RMS out-of-plane ripples with 5–20 nm wavelengths, as for a supported monolayer."""
    return RippleField(rms=0.5, wavelength_min=50.0, wavelength_max=200.0, seed=seed)


def _graphene(seed: int, defects: bool) -> Sample:
    specs = (
        DefectSpec("vacancy", density=0.008, sublattices=(0, 1)),
        DefectSpec("substitution", density=0.006, sublattices=(0, 1), species="N"),
        DefectSpec("substitution", density=0.003, sublattices=(0, 1), species="Si", z_offset=1.8),
    ) if defects else ()
    return Sample(
        name="graphene-defects" if defects else "graphene",
        description=(
            "Monolayer graphene on a flat support with gentle ripples"
            + (", monovacancies and substitutional N and Si dopants (Si buckled 1.8 Å out of plane)"
               if defects else ", pristine")
        ),
        crystal=graphene(),
        defect_specs=specs,
        ripples=_gentle_ripples(seed),
        seed=seed,
        rotation=_flake_rotation(seed, np.pi / 3),
    )


def _hbn(seed: int) -> Sample:
    specs = (
        DefectSpec("vacancy", density=0.008, sublattices=(0,)),
        DefectSpec("vacancy", density=0.004, sublattices=(1,)),
        DefectSpec("substitution", density=0.004, sublattices=(1,), species="C"),
    )
    return Sample(
        name="hbn-defects",
        description="Monolayer hBN with boron and nitrogen vacancies and carbon on nitrogen sites",
        crystal=hexagonal_boron_nitride(),
        defect_specs=specs,
        ripples=_gentle_ripples(seed),
        seed=seed,
        rotation=_flake_rotation(seed, 2 * np.pi / 3),
    )


def _mos2(seed: int) -> Sample:
    specs = (
        DefectSpec("vacancy", density=0.03, sublattices=(1, 2)),
        DefectSpec("vacancy", density=0.002, sublattices=(0,)),
        DefectSpec("substitution", density=0.004, sublattices=(0,), species="W"),
    )
    return Sample(
        name="mos2-defects",
        description="Monolayer MoS2 with sulfur and molybdenum vacancies and W substitutions",
        crystal=molybdenum_disulfide(),
        defect_specs=specs,
        ripples=_gentle_ripples(seed),
        seed=seed,
        rotation=_flake_rotation(seed, 2 * np.pi / 3),
        support_height=-4.9e-10,
    )


SAMPLES: dict[str, Callable[[int], Sample]] = {
    "graphene-defects": lambda seed: _graphene(seed, defects=True),
    "graphene": lambda seed: _graphene(seed, defects=False),
    "hbn-defects": _hbn,
    "mos2-defects": _mos2,
}


def build_sample(name: str, seed: int) -> Sample:
    """The built-in sample called ``name``, generated from ``seed``."""
    if name not in SAMPLES:
        raise ValueError(f"sample = {name!r} is not a built-in sample; allowed: {', '.join(SAMPLES)}")
    return SAMPLES[name](seed)
