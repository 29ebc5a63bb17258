"""Planner statistics for SQLite: refreshed nightly and after bulk loads.

SQLite keeps no statistics unless told to (PostgreSQL's autovacuum analyses on its own), and
without them its planner guesses. Measured at scale M: a month's activity count per owner took
225 ms through the occurred_at index without statistics and 20 ms with them (a skip-scan of the
covering (owner, occurred_at) index); several list and funnel queries change plan the same way.
`analysis_limit` keeps ANALYZE to a sample per index, so a refresh takes a moment even at
millions of rows. Benchmarks (bench/) run with statistics, as an installation has them.
"""

from __future__ import annotations

from django.db import connection

# Rows sampled per index (SQLite's documented recommendation for periodic runs is 100-1000).
ANALYSIS_LIMIT = 1000


def refresh_statistics() -> str:
    """ANALYZE with a sample on SQLite; PostgreSQL analyses by itself (autovacuum), so nothing there."""
    if connection.vendor != "sqlite":
        return "skipped"
    with connection.cursor() as cur:
        cur.execute(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}")
        cur.execute("ANALYZE")
        cur.execute("PRAGMA optimize")
    return "analyzed"
