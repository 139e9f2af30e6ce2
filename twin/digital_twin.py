"""The composition root: one sample, one clock, and the instruments that share them."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from twin import validation
from twin.instruments.afm import AfmInstrument
from twin.instruments.clock import Clock
from twin.instruments.tem import TemHardware, TemInstrument
from twin.instruments.tem.imaging import TEM_ENGINES
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
    resettable: bool = True  # False in a challenge: a reset would undo what the episode did
    starting: tuple[str, tuple[str, ...]] = ("tem", ())  # the start-up preset and settings (twin serve)
    _resetting: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def reset(self) -> None:
        """Back to how the twin started: both instruments as built (settings, stage, tip, scans,
        detectors), the clock at zero, and the sample as generated (a sample the beam damaged is
        generated again from its recipe and seed; an untouched one is kept, with the images cached from
        it). The server's limits and files folder stay. The start-up preset (:attr:`starting`) is the
        caller's to apply again. Raises PermissionError on a twin that refuses resets (a challenge's)."""
        if not self.resettable:
            raise PermissionError("reset is refused in a challenge: an episode keeps what its calls did")
        with self._resetting:
            self.afm.stop()
            self.tem.stage.stop_jogging()
            if self.sample.version != 0:
                self.sample = build(self.sample.recipe, self.seed)
            self.clock = Clock(self.clock.time_scale)
            self.tem = self.tem.restarted(self.sample, self.clock)
            self.afm = self.afm.restarted(self.sample, self.clock)

    @classmethod
    def build(cls, sample: str | SampleRecipe = DEFAULT_SAMPLE, seed: int = 0, time_scale: float = 0.0,
              stem_mode: str = "interactive", holder: str = "DoubleTilt", ground_truth: bool = True,
              tem_engine: str = "fast", tem_frame: InstrumentFrame | None = None,
              afm_frame: InstrumentFrame | None = None, usage: Usage | None = None) -> DigitalTwin:
        """A twin of ``sample`` (a built-in name, a sample file or a recipe) generated from ``seed``;
        ``time_scale`` 0 = instant; ``stem_mode`` the STEM physics requests use unless they choose
        their own; ``tem_engine`` what computes the TEM's exit waves ("fast", or "abtem" itself);
        ``holder`` the TEM's specimen holder ("DoubleTilt" or "SingleTilt", whose beta reads
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
                tem_engine=validation.one_of("tem_engine", tem_engine, TEM_ENGINES),
                holder=validation.one_of("holder", holder, ("DoubleTilt", "SingleTilt")),
            ), frame=tem_frame, reveal_frame=ground_truth, usage=usage),
            afm=AfmInstrument(specimen, clock, seed, frame=afm_frame, reveal_frame=ground_truth, usage=usage),
            seed=seed,
            ground_truth=validation.flag("ground_truth", ground_truth),
            usage=usage,
        )
