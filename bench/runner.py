"""Timing one operation: warm-up, repeated timed runs, then one instrumented run (SQL queries, peak memory).

Timed runs are not instrumented: capturing queries and tracing allocations
slow Python down, so they happen in a separate run whose time is not used.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
import tracemalloc

from django.db import connection, reset_queries
from django.test.utils import CaptureQueriesContext


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 15 runs is the 15th fastest = the slowest)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def _elapsed(result, wall: float) -> float:
    # An operation that times only part of its work returns an object with `elapsed` (see scenarios.imports).
    return getattr(result, "elapsed", wall)


def measure(op, *, warmup: int, repeat: int) -> dict:
    for _ in range(warmup):
        op()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = op()
        times.append(_elapsed(result, time.perf_counter() - start))
    gc.collect()
    reset_queries()
    tracemalloc.start()
    try:
        with CaptureQueriesContext(connection) as queries:
            op()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    ms = [t * 1000 for t in times]
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "min_ms": round(min(ms), 2),
        "runs": repeat,
        "warmup": warmup,
        "queries": len(queries.captured_queries),
        "peak_kib": round(peak / 1024),
    }
