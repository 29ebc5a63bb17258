"""Tuijin benchmark harness: deterministic datasets at scales XS/S/M/L, timed scenarios, references.

Run with `make bench` or `.venv/bin/python -m bench --scale S`. See docs/benchmarks.md.
"""
