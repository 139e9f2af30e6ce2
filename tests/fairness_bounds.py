"""The most any blind answer (empty, constant, random, fixed settings chosen beforehand, the raw image)
may score on average over seeds, per challenge: the fairness tests hold every blind answer under its
bound, and each baseline must beat it by a margin."""

BLIND_BOUNDS = {
    "tem-autofocus": 0.1,
    "stem-atom-finding": 0.1,
    "tem-dopant-census": 0.1,
    "tem-beam-sensitive": 0.1,
    "afm-pid-tuning": 0.1,
    "afm-tip-reconstruction": 0.1,
    "afm-sparse-scan": 0.1,
    "afm-tip-change": 0.1,
    "correlative-registration": 0.1,
}
