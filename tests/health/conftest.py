"""Fixtures for the health tests: a fixed week and deadline (frozen clock passed as now=), fake pace."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
MONDAY = dt.date(2026, 11, 23)  # ISO week 2026-W48


def at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=SHANGHAI)


@pytest.fixture(autouse=True)
def no_pace(monkeypatch):
    """Without fake_pace, nobody has a target (independent of the goals app's data)."""
    from tuijin.health import rules

    monkeypatch.setattr(rules, "_goals_selectors", lambda: None)


@pytest.fixture
def fake_pace(monkeypatch):
    """fake_pace({username: ratio}) → rep_pace from the goals app answers with these ratios (None = no target)."""
    from tuijin.health import rules

    def install(ratios: dict[str, float | None]):
        class Selectors:
            @staticmethod
            def rep_pace(*, rep, on_date):
                ratio = ratios.get(rep.username)
                if ratio is None:
                    return None
                return {"target": 100000, "actual": 100000 * ratio * 0.5, "expected": 50000, "ratio": ratio,
                        "period_start": on_date.replace(day=1), "period_end": on_date}

        monkeypatch.setattr(rules, "_goals_selectors", lambda: Selectors)

    return install
