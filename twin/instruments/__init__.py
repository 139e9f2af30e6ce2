"""Stateful emulations of the hardware; they hold state, call physics and never touch the network."""
