"""Prices and costs: pure, no I/O beyond reading the packaged catalogue and the user's override file."""
