"""Hackathon scenarios (challenges, goals, scores) will live here."""
