"""Scenario files the tests write, shared by the test modules that serve them."""

# a real-time camera (time scale 1): its exposures take wall-clock time, so a test can act while one runs
SLOW_SCENARIO = """\
title: a slow camera
goal: take pictures
sample: graphene
time_scale: 1
settings: {tem: {twin.drift: false}}
budgets: {electrons: 1e11}
score: {function: tem_focus, focus_tolerance: 5 nm, astigmatism_tolerance: 2 nm}
"""
