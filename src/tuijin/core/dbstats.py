"""Planner statistics for SQLite: refreshed nightly and after bulk loads.

SQLite keeps no statistics unless told to (PostgreSQL's autovacuum analyses on its own), and
without them its planner guesses. Measured at scale M: a month's activity count per owner took
225 ms through the occurred_at index without statistics and 20 ms with them (a skip-scan of the
covering (owner, occurred_at) index); several list and funnel queries change plan the same way.
A full ANALYZE, not a sampled one: with `analysis_limit=1000` the per-value row estimates were
capped near 1,000 and the planner drove list pages from the users table (a director's activity
list 1 ms → 3.9 s). A full ANALYZE took 1.7 s at scale M (1,000,000 activities).
Benchmarks (bench/) run with statistics, as an installation has them.
"""

from __future__ import annotations

from django.db import connection


def refresh_statistics() -> str:
    """ANALYZE on SQLite; PostgreSQL analyses by itself (autovacuum), so nothing there."""
    if connection.vendor != "sqlite":
        return "skipped"
    with connection.cursor() as cur:
        cur.execute("PRAGMA analysis_limit=0")  # the whole index: see the module docstring
        cur.execute("ANALYZE")
    return "analyzed"
