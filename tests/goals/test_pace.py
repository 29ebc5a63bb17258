"""Pace (expected by a given day) of a rep's signed-revenue target: selectors.rep_pace, with explicit dates."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from tuijin.goals.selectors import rep_pace

from .conftest import deal


def test_rep_without_target_has_no_pace(org):
    assert rep_pace(rep=org.users["rep.east1"], on_date=dt.date(2026, 2, 1)) is None


def test_pace_is_actual_over_target_times_elapsed_share(cascade, org):
    rep = org.users["rep.east1"]
    deal(org, rep, 30000, closed=dt.date(2026, 1, 10))
    deal(org, rep, 5000, closed=dt.date(2026, 2, 20))  # after on_date: not yet actual
    deal(org, org.users["rep.east2"], 99000, closed=dt.date(2026, 1, 12))  # someone else's
    on = dt.date(2026, 2, 14)  # day 45 of 90
    pace = rep_pace(rep=rep, on_date=on)
    assert pace["target"] == Decimal("115000")
    assert pace["actual"] == Decimal("30000")
    assert pace["expected"] == Decimal("57500.00")
    assert abs(pace["ratio"] - 30000 / 57500) < 1e-9
    assert (pace["period_start"], pace["period_end"]) == (dt.date(2026, 1, 1), dt.date(2026, 3, 31))


def test_pace_on_first_and_last_day(cascade, org):
    rep = org.users["rep.east1"]
    deal(org, rep, 115000, closed=dt.date(2026, 3, 31))
    first = rep_pace(rep=rep, on_date=dt.date(2026, 1, 1))
    assert first["expected"] == Decimal("1277.78")  # 115000 / 90
    assert first["actual"] == 0 and first["ratio"] == 0.0
    last = rep_pace(rep=rep, on_date=dt.date(2026, 3, 31))
    assert last["expected"] == Decimal("115000.00") and last["ratio"] == 1.0
    assert rep_pace(rep=rep, on_date=dt.date(2026, 4, 1)) is None


def test_zero_target_gives_ratio_one(cascade, org):
    from tuijin.goals.services import target_set_value

    target_set_value(actor=org.users["director"], target=cascade.rep, value="0")
    pace = rep_pace(rep=org.users["rep.east1"], on_date=dt.date(2026, 2, 1))
    assert pace["expected"] == 0 and pace["ratio"] == 1.0


def test_bulk_pace_matches_single(cascade, org):
    from tuijin.goals.selectors import reps_pace

    rep = org.users["rep.east1"]
    deal(org, rep, 30000, closed=dt.date(2026, 1, 10))
    on = dt.date(2026, 2, 14)
    bulk = reps_pace(reps=[rep, org.users["rep.east2"]], on_date=on)
    assert bulk[rep.pk] == rep_pace(rep=rep, on_date=on)
    assert bulk[org.users["rep.east2"].pk] is None
