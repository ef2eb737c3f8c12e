"""Benchmarks: figures for docs/benchmarks.md. Not tests: run with `make bench`."""
