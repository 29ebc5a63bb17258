"""Forecast accuracy (R4) on a known dataset: arithmetic per rep, team, region, week and month; records."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.forecasting.accuracy import Accuracy, period_of, periods_between, rate

from .dataset import FRI, WEEK, build
from .helpers import D


def _rows(acc, group):
    return {(r["label"], r["period"].label): r for r in acc.table(group)}


def test_article_case_arithmetic():
    # 280万 forecast against 143万 signed is the article's 49%.
    assert rate(D("2800000"), D("1430000")) == D("0.4893")
    assert rate(D("0"), D("5")) is None


def test_periods():
    assert period_of("week", dt.date(2026, 3, 5)).start == WEEK
    assert period_of("week", WEEK).label == "2026-W10"
    m = period_of("month", dt.date(2024, 2, 10))
    assert (m.start, m.end) == (dt.date(2024, 2, 1), dt.date(2024, 3, 1))
    assert [p.label for p in periods_between("month", dt.date(2025, 11, 15), dt.date(2026, 1, 2))] == [
        "2025-11", "2025-12", "2026-01"]


def test_weekly_per_rep(world):
    data = build(world)
    acc = Accuracy(user=world.users["director"], kind="week", start=WEEK, end=WEEK)
    rows = _rows(acc, "rep")
    east1 = rows[("李明", "2026-W10")]
    assert (east1["forecast"], east1["actual"], east1["won_all"]) == (D("150000"), D("90000"), D("200000"))
    assert east1["deviation"] == D("0.4000")
    assert (east1["line_count"], east1["hit_count"], east1["missed_count"], east1["won_count"]) == (2, 1, 1, 3)
    east2 = rows[("张婷", "2026-W10")]
    assert (east2["forecast"], east2["actual"], east2["deviation"]) == (D("200000"), D("200000"), D("0.0000"))
    records = acc.records(start=WEEK, group="rep", key=world.users["rep.east1"].pk, which="missed")
    assert [ln.opportunity_id for ln in records] == [data["b"].pk]
    hits = acc.records(start=WEEK, group="rep", key=world.users["rep.east1"].pk, which="hit")
    assert [o.pk for o in hits] == [data["a"].pk]
    won = acc.records(start=WEEK, group="rep", key=world.users["rep.east1"].pk, which="won")
    assert sum(o.amount for o in won) == D("200000")


def test_team_region_and_company_roll_up(world):
    build(world)
    acc = Accuracy(user=world.users["director"], kind="week", start=WEEK, end=WEEK)
    teams = _rows(acc, "team")
    assert teams[("上海", "2026-W10")]["forecast"] == D("150000")
    assert teams[("杭州", "2026-W10")]["forecast"] == D("200000")
    region = _rows(acc, "region")[("华东大区", "2026-W10")]
    assert (region["forecast"], region["actual"]) == (D("350000"), D("290000"))
    assert region["deviation"] == D("0.1714")
    company = _rows(acc, "company")[("全部", "2026-W10")]
    assert company["forecast"] == D("350000")
    series = acc.series()
    assert [s["label"] for s in series] == ["2026-W10"] and series[0]["deviation"] == D("0.1714")


def test_monthly(world):
    build(world)
    acc = Accuracy(user=world.users["director"], kind="month", start=dt.date(2026, 3, 1), end=dt.date(2026, 3, 31))
    east1 = _rows(acc, "rep")[("李明", "2026-03")]
    # Last submitted report before March (Feb 27th): A 100k + B 50k + D 30k; A signed for 90k.
    assert (east1["forecast"], east1["actual"], east1["deviation"]) == (D("180000"), D("90000"), D("0.5000"))


def test_no_snapshot_within_a_week_before_means_no_forecast(world):
    build(world)
    acc = Accuracy(user=world.users["director"], kind="week", start=WEEK + dt.timedelta(days=14),
                   end=WEEK + dt.timedelta(days=14))
    assert all(r["forecast"] == 0 for r in acc.table("rep"))


@pytest.mark.parametrize("username, labels", [
    ("rep.east1", {"李明"}), ("manager.east", {"李明", "张婷"}), ("manager.south", set()),
    ("finance", {"李明", "张婷"}),
])
def test_accuracy_respects_visibility(world, username, labels):
    build(world)
    acc = Accuracy(user=world.users[username], kind="week", start=WEEK, end=WEEK)
    assert {r["label"] for r in acc.table("rep")} == labels


def test_snapshot_is_the_last_report_before_the_period(world):
    build(world)
    acc = Accuracy(user=world.users["director"], kind="week", start=WEEK, end=WEEK)
    lines = acc.records(start=WEEK, group="company", key=0, which="forecast")
    assert {ln.report.date for ln in lines} == {FRI}


def test_empty_or_extreme_ranges_do_not_fail(world, api_client):
    build(world)
    director = world.users["director"]
    assert Accuracy(user=director, start=WEEK, end=WEEK - dt.timedelta(days=30)).table("rep") == []
    acc = Accuracy(user=director, start=dt.date(1, 1, 1), end=dt.date(9999, 12, 31))
    assert len(acc.periods) == 60
    client = api_client(director)
    assert client.get("/api/forecasts/accuracy", {"start": "9999-12-31", "end": "0001-01-01"}).status_code == 200
    resp = client.get("/api/forecasts/accuracy/records", {"start": "9999-12-31", "which": "won"})
    assert resp.status_code == 200 and resp.json()["count"] == 0


def test_light_rows_and_limits_keep_the_figures_and_records(world):
    """The light-row computation: won totals come from the database per period, missed lines are
    materialised up to a limit (in period order), and the hand-built record links equal urlencode's."""
    from django.urls import reverse
    from django.utils.http import urlencode

    from tuijin.forecasting.accuracy import records_url

    data = build(world)
    acc = Accuracy(user=world.users["director"], kind="week", start=WEEK, end=WEEK)
    missed_all = acc.missed_lines()
    assert missed_all and all(m["line"].opportunity.name for m in missed_all)  # full objects, related loaded
    assert [m["line"].pk for m in acc.missed_lines(limit=1)] == [missed_all[0]["line"].pk]
    assert acc.missed_lines(limit=0) == []
    company = {r["period"].label: r for r in acc.table("company")}["2026-W10"]
    won = acc.records(start=WEEK, group="company", key=0, which="won")
    assert company["won_count"] == len(won) and company["won_all"] == sum(o.amount for o in won)
    assert data["a"].pk in {o.pk for o in won}
    for key, which in [(None, "forecast"), (7, "won"), (0, "missed")]:
        q = {"period": "week", "start": WEEK.isoformat(), "group": "rep", "which": which}
        if key is not None:
            q["key"] = key
        assert records_url(kind="week", start=WEEK, group="rep", key=key, which=which) == (
            reverse("forecasting:accuracy_records") + "?" + urlencode(q))
