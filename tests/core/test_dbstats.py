"""Planner statistics (core.dbstats): SQLite gets sampled ANALYZE statistics, nightly and on demand."""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from tuijin.core.dbstats import refresh_statistics
from tuijin.core.tasks import refresh_statistics_nightly


def _stat_tables() -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT name FROM sqlite_master WHERE name = 'sqlite_stat1'")
        if not cur.fetchone():
            return set()
        cur.execute("SELECT DISTINCT tbl FROM sqlite_stat1")
        return {r[0] for r in cur.fetchall()}


def test_refresh_statistics_analyses_sqlite_and_leaves_postgresql_to_autovacuum(world):
    result = refresh_statistics()
    if connection.vendor == "sqlite":
        assert result == "analyzed"
        assert {"followups_activity", "pipeline_opportunity", "customers_customer"} <= _stat_tables()
    else:
        assert result == "skipped"


def test_nightly_job_runs_only_in_its_local_hour(world, monkeypatch):
    local = timezone.get_current_timezone()
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 11, 27, 10, 40, tzinfo=local))
    assert refresh_statistics_nightly.call_local() is None
    monkeypatch.setattr(timezone, "now", lambda: dt.datetime(2026, 11, 27, 3, 40, tzinfo=local))
    assert refresh_statistics_nightly.call_local() == ("analyzed" if connection.vendor == "sqlite" else "skipped")
