"""Scenario files: a challenge's sample, hidden state (drawn from a seed), budgets, goal and score.

A scenario is YAML (numbers SI, strings may carry units)::

    title: one line for `twin scenario list`
    goal: what to do and what to submit
    sample: graphene-defects          # a built-in, a sample file (relative to this one) or a recipe
    ground_truth: off                 # whether clients may read the sample (off in a challenge)
    settings: {tem: {...}, afm: {...}}        # the instruments' open starting state
    hidden: {tem: {twin.focus_offset: {uniform: [-300 nm, 300 nm]}}, afm: {...},
             frames: {afm: {rotation: {uniform: [-30 deg, 30 deg]}, offset: {uniform: [-1 um, 1 um]}}}}
    events: [{after: {afm_frames: {integers: [4, 9]}}, set: {afm: {twin.tip_radius: 20 nm}}}]
    forbid: [tem.run_auto_function]   # calls this challenge refuses
    budgets: {wall_time: 20 min, calls: 500, electrons: 1e12, lines: 4096, scanned_area: 1 um^2}
    score: {function: tem_focus, ...parameters}

Every random choice is drawn in file order from ``seed``: the same seed gives the same episode.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from twin import validation, yaml_files
from twin.digital_twin import DigitalTwin
from twin.instruments.usage import METERED, Usage
from twin.sample.catalog import recipe_for
from twin.sample.frames import InstrumentFrame
from twin.sample.recipe import SampleRecipe, from_dict
from twin.sample.units import check_keys, quantity
from twin.scenarios.catalog import available, directory  # noqa: F401 (spec.available(), as before)
from twin.scenarios.hidden import Hidden

INSTRUMENTS = ("tem", "afm")
_STREAM_HIDDEN = 0x5CE7A810
_KIND_OF_UNIT = {"m": "length", "rad": "angle", "V": "voltage", "s": "time"}
_KEYS = ("title", "goal", "sample", "time_scale", "ground_truth", "settings", "hidden", "events", "forbid",
         "budgets", "score", "answer")
BUDGETS = ("wall_time", "calls", *METERED)


def _value(name: str, value: Any, kind: str) -> Any:
    """A number (SI) or a string with a unit of ``kind``; other strings (a setting's choices) as they are."""
    if kind == "number" and isinstance(value, str):
        try:
            return float(value)  # YAML reads 1e13 (no dot) as a string
        except ValueError:
            return value
    return quantity(name, value, kind)


@dataclass(frozen=True)
class Draw:
    """A seeded choice: ``uniform: [lo, hi]``, ``loguniform: [lo, hi]`` (uniform in log, both > 0),
    ``integers: [lo, hi]`` (inclusive), ``choice: [...]``, ``polar: [lo, hi]`` (a vector of uniform length
    in [lo, hi], uniform direction) or a fixed value."""

    name: str
    kind: str  # the unit kind of the values
    spec: Any

    def __post_init__(self) -> None:
        self.sample(np.random.default_rng(0))  # a bad spec fails when the file is read

    def sample(self, rng: np.random.Generator | None) -> Any:
        """The value this draw gives (``rng`` may be None for a fixed value)."""
        spec = self.spec
        if not isinstance(spec, dict):
            if isinstance(spec, (list, tuple)):
                return tuple(_value(f"{self.name}[{i}]", v, self.kind) for i, v in enumerate(spec))
            return _value(self.name, spec, self.kind) if not isinstance(spec, bool) else spec
        if len(spec) != 1 or next(iter(spec)) not in ("uniform", "loguniform", "integers", "choice", "polar"):
            raise ValueError(f"{self.name} = {spec!r}: give a value or one of uniform: [lo, hi], loguniform: "
                             "[lo, hi], integers: [lo, hi], choice: [...], polar: [lo, hi]")
        (how, args), = spec.items()
        if how == "choice":
            if not isinstance(args, list) or not args:
                raise ValueError(f"{self.name}.choice = {args!r}: give a non-empty list")
            return Draw(self.name, self.kind, args[int(rng.integers(len(args)))]).sample(rng)
        if not isinstance(args, list) or len(args) != 2:
            raise ValueError(f"{self.name}.{how} = {args!r}: give [lo, hi]")
        lo, hi = (_value(f"{self.name}.{how}", v, self.kind) for v in args)
        if lo > hi:
            raise ValueError(f"{self.name}.{how} = {args!r}: lo must not exceed hi")
        if how == "integers":
            return int(rng.integers(int(lo), int(hi) + 1))
        if how == "loguniform":
            if lo <= 0:
                raise ValueError(f"{self.name}.loguniform = {args!r}: both ends must be positive")
            return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        if how == "polar":
            length, angle = rng.uniform(lo, hi), rng.uniform(0.0, 2 * np.pi)
            return (float(length * np.cos(angle)), float(length * np.sin(angle)))
        return float(rng.uniform(lo, hi))

    def largest(self) -> float:
        """The largest magnitude (a vector's length) this draw of numbers can give."""
        spec = self.spec
        if not isinstance(spec, dict):
            return _magnitude(self.sample(None))
        (how, args), = spec.items()
        if how == "choice":
            return max(Draw(self.name, self.kind, option).largest() for option in args)
        return max(abs(_value(f"{self.name}.{how}", v, self.kind)) for v in args)


@dataclass(frozen=True)
class Event:
    """A hidden change during the episode: ``set`` (instrument -> setting -> draw) once the counter
    ``after`` names (``afm_frames``, ``tem_frames`` or ``calls``) reaches its drawn value."""

    counter: str
    at: Draw
    changes: dict[str, dict[str, Draw]]


@dataclass(frozen=True)
class Scenario:
    """One challenge, as read from its file."""

    name: str
    title: str
    goal: str
    sample: str | SampleRecipe
    time_scale: float
    ground_truth: bool
    settings: dict[str, dict[str, Any]]
    hidden: dict[str, dict[str, Draw]]
    frames: dict[str, tuple[Draw, Draw]]
    events: tuple[Event, ...]
    forbid: tuple[str, ...]
    budgets: dict[str, float]
    score: dict[str, Any]
    answer: str = ""
    source: str = ""  # the file's text (replay checks it is the same scenario)
    path: Path | None = field(default=None, compare=False)

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.source.encode()).hexdigest()[:16]

    def draw(self, seed: int) -> Hidden:
        """The hidden state ``seed`` gives (same seed, same state)."""
        rng = np.random.default_rng([_STREAM_HIDDEN, validation.integer("seed", seed, 0, 2**63 - 1)])
        settings = {inst: {name: draw.sample(rng) for name, draw in values.items()}
                    for inst, values in self.hidden.items()}
        frames = {inst: InstrumentFrame(float(rot.sample(rng)), _offset(off, rng))
                  for inst, (rot, off) in self.frames.items()}
        events = [{"counter": e.counter, "at": int(e.at.sample(rng)),
                   "set": {inst: {n: d.sample(rng) for n, d in values.items()}
                           for inst, values in e.changes.items()}} for e in self.events]
        return Hidden(settings, frames, events)

    def build(self, seed: int, hidden: Hidden | None = None) -> DigitalTwin:
        """A twin in this scenario's starting state for ``seed``: open settings first, then hidden ones."""
        hidden = hidden or self.draw(seed)
        limits = {k: v for k, v in self.budgets.items() if k in METERED}
        twin = DigitalTwin.build(self.sample, seed, self.time_scale, ground_truth=self.ground_truth,
                                 tem_frame=hidden.frames.get("tem"), afm_frame=hidden.frames.get("afm"),
                                 usage=Usage(limits))
        for values in (self.settings, hidden.settings):
            for inst, changes in values.items():
                apply(twin, inst, changes)
        twin.tem.hidden_column = (self.largest("twin.focus_offset"),
                                  self.largest("twin.objective_astigmatism"))
        return twin

    def largest(self, setting: str) -> float:
        """The largest magnitude this scenario may give a TEM ``setting``: set, drawn or changed by an
        event (0 if it never does)."""
        fixed = self.settings.get("tem", {})
        draws = [d for values in (self.hidden, *(e.changes for e in self.events))
                 for name, d in values.get("tem", {}).items() if name == setting]
        return max([d.largest() for d in draws] + ([_magnitude(fixed[setting])] if setting in fixed else []),
                   default=0.0)

    def describe(self) -> dict[str, Any]:
        """What a player may know: title, goal, answer format, budgets, refused calls, ground truth."""
        return {"name": self.name, "title": self.title, "goal": self.goal, "answer": self.answer,
                "budgets": dict(self.budgets), "forbid": list(self.forbid), "ground_truth": self.ground_truth,
                "time_scale": self.time_scale, "score": self.score.get("function")}


def _magnitude(value: Any) -> float:
    """The magnitude of a number or the length of a vector."""
    return float(np.linalg.norm(np.atleast_1d(np.asarray(value, dtype=float))))


def apply(twin: DigitalTwin, instrument: str, changes: dict[str, Any]) -> None:
    """Set ``changes`` (setting -> value) on ``instrument`` ('tem' or 'afm') of ``twin``."""
    target = twin.tem if instrument == "tem" else twin.afm
    for name, value in changes.items():
        target.set(name, list(value) if isinstance(value, tuple) else value)


def _offset(draw: Draw, rng: np.random.Generator) -> tuple[float, float]:
    """A frame offset: a drawn pair, or one draw for x and another for y."""
    value = draw.sample(rng)
    if isinstance(value, tuple):
        return value
    return (float(value), float(draw.sample(rng)))


def load(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or the scenario file at a path."""
    builtin = available()
    path = builtin.get(str(name_or_path)) or Path(name_or_path)
    if not path.is_file():
        raise ValueError(f"scenario = {str(name_or_path)!r} is not a built-in scenario or a file; built-in: "
                         f"{', '.join(builtin)}")
    data, text = yaml_files.read(path, "scenario file")
    name = path.name.removesuffix(".yaml").removesuffix(".scenario")
    return parse(name, data, text, path)


def parse(name: str, data: Any, source: str = "", path: Path | None = None) -> Scenario:
    """A scenario from plain data, every field checked by name."""
    check_keys(f"scenario {name}", data, _KEYS)
    for required in ("title", "goal", "score"):
        if required not in data:
            raise ValueError(f"scenario {name}: {required} is missing")
    sample = data.get("sample", "graphene-defects")
    if isinstance(sample, dict):
        sample = from_dict({"name": name, **sample})
    elif isinstance(sample, str):
        local = path.parent / sample if path is not None else None
        sample = str(local) if local is not None and local.is_file() else sample
        recipe_for(sample)  # fails now if unknown
    else:
        raise ValueError(f"scenario {name}: sample = {sample!r}: give a built-in name, a file or a recipe")
    hidden = dict(data.get("hidden") or {})
    frames_spec = hidden.pop("frames", {}) or {}
    check_keys(f"scenario {name}: hidden", hidden, INSTRUMENTS)
    check_keys(f"scenario {name}: hidden.frames", frames_spec, INSTRUMENTS)
    frames = {}
    for inst, spec in frames_spec.items():
        check_keys(f"hidden.frames.{inst}", spec, ("rotation", "offset"))
        frames[inst] = (Draw(f"hidden.frames.{inst}.rotation", "angle", spec.get("rotation", 0.0)),
                        Draw(f"hidden.frames.{inst}.offset", "length", spec.get("offset", [0.0, 0.0])))
    probe = DigitalTwin.build("graphene", 0)  # checks setting names and values against real instruments
    settings = {inst: dict(values or {}) for inst, values in (data.get("settings") or {}).items()}
    check_keys(f"scenario {name}: settings", settings, INSTRUMENTS)
    settings = {inst: {n: Draw(f"settings.{inst}.{n}", kind_of(probe, inst, n), v).sample(None)
                       for n, v in values.items()} for inst, values in settings.items()}
    for inst, values in settings.items():
        try:
            apply(probe, inst, values)
        except (ValueError, TypeError, RuntimeError) as error:
            raise ValueError(f"scenario {name}: settings.{inst}: {error}") from None
    draws = {inst: {n: Draw(f"hidden.{inst}.{n}", kind_of(probe, inst, n), v)
                    for n, v in (values or {}).items()} for inst, values in hidden.items()}
    events = tuple(_event(name, i, e, probe) for i, e in enumerate(data.get("events") or []))
    budgets = {}
    check_keys(f"scenario {name}: budgets", data.get("budgets") or {}, BUDGETS)
    for key, value in (data.get("budgets") or {}).items():
        kind = {"wall_time": "time", "scanned_area": "area"}.get(key, "number")
        budgets[key] = validation.positive(f"budgets.{key}", _value(f"budgets.{key}", value, kind), 0.0, 1e30)
    forbid = tuple(data.get("forbid") or ())
    for call in forbid:
        if not isinstance(call, str) or call.split(".")[0] not in ("tem", "afm", "sample"):
            raise ValueError(f"scenario {name}: forbid entry {call!r}: give 'tem.METHOD', 'afm.METHOD' or "
                             "'sample.METHOD'")
    score = data["score"]
    if not isinstance(score, dict) or "function" not in score:
        raise ValueError(f"scenario {name}: score = {score!r}: give {{function: NAME, ...parameters}}")
    from twin.scenarios.scoring import SCORERS

    validation.one_of(f"scenario {name}: score.function", score["function"], list(SCORERS))
    score = {key: _parameter(f"score.{key}", value) for key, value in score.items()}
    ground_truth = data.get("ground_truth", False)
    return Scenario(
        name=name, title=str(data["title"]).strip(), goal=str(data["goal"]).strip(), sample=sample,
        time_scale=validation.real("time_scale", data.get("time_scale", 0.0), 0.0, 100.0),
        ground_truth=validation.flag("ground_truth", ground_truth), settings=settings, hidden=draws,
        frames=frames, events=events, forbid=forbid, budgets=budgets, score=dict(score),
        answer=str(data.get("answer", "")).strip(), source=source, path=path,
    )


def _parameter(name: str, value: Any) -> Any:
    """A score parameter: strings with a unit become SI numbers; anything else stays as it is."""
    if isinstance(value, str):
        for kind in ("length", "angle", "time", "voltage", "area", "density"):
            try:
                return quantity(name, value, kind)
            except ValueError:
                continue
    return value


def kind_of(twin: DigitalTwin, instrument: str, name: str) -> str:
    """The unit kind of a setting's values (for strings with units in the file)."""
    target = twin.tem if instrument == "tem" else twin.afm
    unit = target.settings.parameter(name).unit
    return _KIND_OF_UNIT.get(unit, "number")


def _event(name: str, index: int, data: Any, probe: DigitalTwin) -> Event:
    where = f"scenario {name}: events[{index}]"
    check_keys(where, data, ("after", "set"))
    after = data.get("after")
    check_keys(f"{where}.after", after, ("afm_frames", "tem_frames", "calls"))
    if not after or len(after) != 1:
        raise ValueError(f"{where}.after = {after!r}: give one of afm_frames, tem_frames, calls")
    (counter, at), = after.items()
    changes = data.get("set") or {}
    check_keys(f"{where}.set", changes, INSTRUMENTS)
    draws = {inst: {n: Draw(f"{where}.set.{inst}.{n}", kind_of(probe, inst, n), v) for n, v in values.items()}
             for inst, values in changes.items()}
    return Event(counter, Draw(f"{where}.after.{counter}", "number", at), draws)
