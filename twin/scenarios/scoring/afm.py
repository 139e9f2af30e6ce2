"""Scores of the AFM challenges."""

from __future__ import annotations
