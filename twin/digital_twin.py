"""The composition root: one sample, one clock, and the instruments that share them."""

from __future__ import annotations

from dataclasses import dataclass, field

from twin import validation
from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.instruments.tem import TemHardware, TemInstrument
from twin.instruments.tem.scanning import MODES
from twin.instruments.usage import Usage
from twin.sample import DEFAULT_SAMPLE, Sample, build_sample
from twin.sample.frames import InstrumentFrame
from twin.sample.recipe import SampleRecipe, build


@dataclass
class DigitalTwin:
    """Everything one twin instance owns. Instruments never see each other, only the sample."""

    sample: Sample
    clock: Clock
    tem: TemInstrument
    afm: AfmInstrument
    seed: int
    ground_truth: bool = True  # whether clients may read the sample itself (off for challenges)
    usage: Usage = field(default_factory=Usage)  # what the instruments spent, against a budget

    @classmethod
    def build(cls, sample: str | SampleRecipe = DEFAULT_SAMPLE, seed: int = 0, time_scale: float = 0.0,
              stem_mode: str = "interactive", holder: str = "DoubleTilt", ground_truth: bool = True,
              tem_frame: InstrumentFrame | None = None, afm_frame: InstrumentFrame | None = None,
              usage: Usage | None = None) -> DigitalTwin:
        """A twin of ``sample`` (a built-in name, a sample file or a recipe) generated from ``seed``;
        ``time_scale`` 0 = instant; ``stem_mode`` the STEM physics requests use unless they choose
        their own; ``holder`` the TEM's specimen holder ("DoubleTilt" or "SingleTilt", whose beta reads
        None); ``ground_truth`` whether clients may read the sample itself (and image metadata shows
        the instruments' frames); ``tem_frame``/``afm_frame`` how each instrument's axes sit on the
        sample (the sample's own by default); ``usage`` the budget acquisitions charge (unlimited)."""
        seed = validation.integer("seed", seed, 0, 2**63 - 1)
        specimen = build(sample, seed) if isinstance(sample, SampleRecipe) else build_sample(sample, seed)
        clock = Clock(time_scale)
        usage = usage or Usage()
        return cls(
            sample=specimen,
            clock=clock,
            tem=TemInstrument(specimen, clock, seed, TemHardware(
                stem_mode=validation.one_of("stem_mode", stem_mode, MODES),
                holder=validation.one_of("holder", holder, ("DoubleTilt", "SingleTilt")),
            ), frame=tem_frame, reveal_frame=ground_truth, usage=usage),
            afm=AfmInstrument(specimen, clock, seed, frame=afm_frame, reveal_frame=ground_truth, usage=usage),
            seed=seed,
            ground_truth=validation.flag("ground_truth", ground_truth),
            usage=usage,
        )
