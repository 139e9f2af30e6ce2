"""Challenges: scenario files, their hidden state, episodes with budgets and journals, and scores."""
