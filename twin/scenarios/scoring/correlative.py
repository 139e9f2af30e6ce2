"""Scores of the correlative (TEM + AFM) challenges."""

from __future__ import annotations
