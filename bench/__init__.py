"""Benchmarks: each prints JSON figures; run them all with `python -m bench`."""
