"""Baseline agents: one per challenge, each a plain client script with ``run(host, port, instance)``.

They are deliberately simple (they score above zero and below the best possible); run one with
``python -m scenarios.baselines.NAME --host H --port P --instance I``.
"""
