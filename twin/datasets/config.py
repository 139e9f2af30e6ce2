"""What a dataset holds and the ranges its imaging conditions are drawn from (a YAML file).

    sample: graphene-defects           # built-in name, sample file, or an inline recipe
    items: 200
    seed: 0
    region: [[-1 um, 1 um], [-1 um, 1 um]]  # where item centres fall (sample frame)
    new_specimen_per_item: true        # each item a new seed of the sample (else all share `seed`)
    tem:
      size: 512
      magnification: [1050000, 2050000]    # one of these (nominal)
      high_tension: [80 kV, 200 kV]        # one of these
      focus: [-20 nm, 5 nm]                # uniform in this range (C10)
      exposure: [0.1 s, 1 s]               # uniform
    stem:                                  # optional: a STEM image of the same field of view
      size: 256
      dwell_time: [2 us, 10 us]
      detector: HAADF
    afm:
      size: 256
      tip_radius: [1 nm, 8 nm]
      double_tip: 0.2                      # probability of a second apex
      z_noise: [10 pm, 40 pm]
      ideal_feedback: false

A range is ``[lo, hi]`` (uniform); ``tem.magnification`` and ``tem.high_tension`` are lists of
choices. Every draw comes from ``(seed, item)``, so any item can be made again alone.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from twin import validation, yaml_files
from twin.instruments.tem.hardware import NOMINAL_MAGNIFICATIONS
from twin.sample.catalog import recipe_for
from twin.sample.recipe import SampleRecipe, from_dict
from twin.sample.units import check_keys, pair, quantity


@dataclass(frozen=True)
class TemConditions:
    size: int = 512
    magnification: tuple[float, ...] = (2_050_000.0,)
    high_tension: tuple[float, ...] = (80e3,)
    focus: tuple[float, float] = (-15e-9, -5e-9)
    exposure: tuple[float, float] = (0.2, 1.0)


@dataclass(frozen=True)
class StemConditions:
    size: int = 0  # 0: no STEM image in the items
    dwell_time: tuple[float, float] = (2e-6, 10e-6)
    detector: str = "HAADF"


@dataclass(frozen=True)
class AfmConditions:
    size: int = 256
    tip_radius: tuple[float, float] = (1e-9, 5e-9)
    double_tip: float = 0.0
    z_noise: tuple[float, float] = (10e-12, 30e-12)
    ideal_feedback: bool = False


@dataclass(frozen=True)
class DatasetConfig:
    """A dataset: the sample, how many items, and the ranges of every imaging condition."""

    sample: SampleRecipe
    items: int = 16
    seed: int = 0
    region: tuple[tuple[float, float], tuple[float, float]] = ((-1e-6, 1e-6), (-1e-6, 1e-6))
    new_specimen_per_item: bool = True
    tem: TemConditions = TemConditions()
    afm: AfmConditions = AfmConditions()
    stem: StemConditions = StemConditions()

    def fingerprint(self) -> str:
        """A hash of everything that decides the data: a store made from another config is not resumed."""
        text = json.dumps({**asdict(self), "sample": self.sample.to_dict()}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def draw(self, item: int) -> dict[str, Any]:
        """The imaging conditions of ``item``, drawn from ``(seed, item)``."""
        rng = np.random.default_rng([self.seed, item])
        tem, afm = self.tem, self.afm
        conditions = {
            "sample_seed": int(rng.integers(0, 2**31)) if self.new_specimen_per_item else self.seed,
            "centre_x": float(rng.uniform(*self.region[0])),
            "centre_y": float(rng.uniform(*self.region[1])),
            "magnification": float(rng.choice(tem.magnification)),
            "high_tension": float(rng.choice(tem.high_tension)),
            "focus": float(rng.uniform(*tem.focus)),
            "exposure": float(rng.uniform(*tem.exposure)),
            "tip_radius": float(rng.uniform(*afm.tip_radius)),
            "z_noise": float(rng.uniform(*afm.z_noise)),
        }
        double = rng.random() < afm.double_tip
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(1e-9, 4e-9)
        conditions["second_apex_x"] = float(distance * np.cos(angle)) if double else 0.0
        conditions["second_apex_y"] = float(distance * np.sin(angle)) if double else 0.0
        conditions["second_apex_height"] = float(rng.uniform(0.0, 0.3e-9)) if double else 0.0
        conditions["dwell_time"] = float(rng.uniform(*self.stem.dwell_time))
        return conditions


def load_config(path: str | Path, items: int | None = None) -> DatasetConfig:
    """The dataset config in the YAML file at ``path`` (``items`` overrides its count)."""
    path = Path(path)
    data = yaml_files.read(path, "dataset config")[0] or {}
    config = config_from_dict(data, base=path.parent)
    if items is not None:
        config = DatasetConfig(**{**config.__dict__, "items": _count("items", items)})
    return config


def config_from_dict(data: dict[str, Any], base: Path = Path(".")) -> DatasetConfig:
    """A config from plain data, every field checked by name."""
    check_keys("dataset config", data,
               ("sample", "items", "seed", "region", "new_specimen_per_item", "tem", "afm", "stem"))
    sample = data.get("sample", "graphene-defects")
    if isinstance(sample, dict):
        recipe = from_dict({"name": "inline", **sample})
    elif isinstance(sample, str):
        recipe = recipe_for(str(base / sample) if sample.endswith((".yaml", ".yml")) else sample)
    else:
        raise ValueError(f"sample = {sample!r}: give a built-in name, a sample file or a recipe mapping")
    region = data.get("region", [[-1e-6, 1e-6], [-1e-6, 1e-6]])
    if not isinstance(region, list) or len(region) != 2:
        raise ValueError(f"region = {region!r}: give [[x_lo, x_hi], [y_lo, y_hi]]")
    tem, afm, stem = data.get("tem") or {}, data.get("afm") or {}, data.get("stem") or {}
    check_keys("stem", stem, ("size", "dwell_time", "detector"))
    check_keys("tem", tem, ("size", "magnification", "high_tension", "focus", "exposure"))
    check_keys("afm", afm, ("size", "tip_radius", "double_tip", "z_noise", "ideal_feedback"))
    magnifications = tuple(float(m) for m in tem.get("magnification", TemConditions.magnification))
    for m in magnifications:
        if m not in NOMINAL_MAGNIFICATIONS:
            raise ValueError(f"tem.magnification = {m:g} is not a nominal magnification; allowed: "
                             f"{', '.join(f'{v:g}' for v in NOMINAL_MAGNIFICATIONS)}")
    return DatasetConfig(
        sample=recipe,
        items=_count("items", data.get("items", 16)),
        seed=validation.integer("seed", data.get("seed", 0), 0, 2**63 - 1),
        region=(_range("region[0]", region[0], "length"), _range("region[1]", region[1], "length")),
        new_specimen_per_item=validation.flag("new_specimen_per_item",
                                              data.get("new_specimen_per_item", True)),
        tem=TemConditions(
            size=_size("tem.size", tem.get("size", 512)),
            magnification=magnifications,
            high_tension=tuple(_within("tem.high_tension", v, "voltage", 60e3, 300e3)
                               for v in tem.get("high_tension", [80e3])),
            focus=_range("tem.focus", tem.get("focus", list(TemConditions.focus)), "length"),
            exposure=tuple(_within("tem.exposure", v, "time", 1e-3, 100.0)
                           for v in tem.get("exposure", list(TemConditions.exposure))),
        ),
        afm=AfmConditions(
            size=_size("afm.size", afm.get("size", 256)),
            tip_radius=_range("afm.tip_radius", afm.get("tip_radius", list(AfmConditions.tip_radius)),
                              "length"),
            double_tip=validation.real("afm.double_tip", afm.get("double_tip", 0.0), 0.0, 1.0),
            z_noise=_range("afm.z_noise", afm.get("z_noise", list(AfmConditions.z_noise)), "length"),
            ideal_feedback=validation.flag("afm.ideal_feedback", afm.get("ideal_feedback", False)),
        ),
        stem=StemConditions(
            size=_size("stem.size", stem["size"]) if "size" in stem else 0,
            dwell_time=_range("stem.dwell_time", stem.get("dwell_time", list(StemConditions.dwell_time)),
                              "time"),
            detector=_detector(stem.get("detector", "HAADF")),
        ),
    )


def _detector(name: Any) -> str:
    if name not in ("HAADF", "ADF", "ABF", "BF"):
        raise ValueError(f"stem.detector = {name!r} is not known; allowed: HAADF, ADF, ABF, BF")
    return name


def _range(name: str, value: Any, kind: str) -> tuple[float, float]:
    lo, hi = pair(name, value, kind)
    if lo > hi:
        raise ValueError(f"{name} = {value!r}: the first value must not exceed the second")
    return lo, hi


def _within(name: str, value: Any, kind: str, lo: float, hi: float) -> float:
    value = quantity(name, value, kind)
    if not lo <= value <= hi:
        raise ValueError(f"{name} = {value:g} is out of range; allowed {lo:g} to {hi:g}")
    return value


def _size(name: str, value: Any) -> int:
    if not isinstance(value, int) or not 16 <= value <= 4096:
        raise ValueError(f"{name} = {value!r} must be an integer from 16 to 4096 pixels")
    return value


def _count(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 10_000_000:
        raise ValueError(f"{name} = {value!r} must be an integer from 1 to 10000000")
    return value
