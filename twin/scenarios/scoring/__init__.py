"""Score functions: each turns an episode's end state and a team's answer into a score in [0, 1].

A scorer is ``scorer(context, answer) -> Score``; it checks the answer first and raises ``ValueError``
naming the field when it is malformed (the episode then goes on). ``context.params`` holds the
scenario's ``score`` parameters (SI numbers).
"""

from twin.scenarios.scoring import afm, correlative, tem  # noqa: F401  (they register themselves)
from twin.scenarios.scoring.core import READS_IMAGES, SCORERS, Context, Score, Scorer, mapping, scorer

__all__ = ["READS_IMAGES", "SCORERS", "Context", "Score", "Scorer", "mapping", "scorer"]
