"""Benchmarks: each prints our figure beside a floor measured in the same run."""
