"""Monthly deviation report (G7): gap attribution sums exactly to the gap; one report per period; notification."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tuijin.goals.models import GoalReport
from tuijin.goals.report import CAUSE_KEYS, attribute
from tuijin.goals.services import report_generate
from tuijin.notify.models import Notification

from .conftest import at, customer, deal

pytestmark = pytest.mark.django_db
FEB = (dt.date(2026, 2, 1), dt.date(2026, 2, 28))


def _total(row) -> Decimal:
    return sum((Decimal(c["amount"]) for c in row["causes"].values()), Decimal("0")) + Decimal(row["unexplained"])


@pytest.fixture
def february(cascade, org):
    """rep.east1 in February 2026: one win, losses of every reason, stalled and live pipeline."""
    rep = org.users["rep.east1"]
    deal(org, rep, 10000, closed=dt.date(2026, 2, 3))
    for amount, reason in [(5000, "customer_churn"), (4000, "quote_delay"), (3000, "solution_mismatch"),
                           (2000, "competitor"), (1000, "budget")]:
        deal(org, rep, amount, stage="lost", closed=dt.date(2026, 2, 10), loss_reason=reason)
    deal(org, rep, 777, stage="lost", closed=dt.date(2026, 1, 10), loss_reason="competitor")  # January: not counted
    deal(org, rep, 6000, stage="demo", expected=dt.date(2026, 2, 20), progress=at(dt.date(2026, 1, 5)),
         entered=at(dt.date(2026, 1, 5)))  # stalled
    churned = customer(rep, status="churned")
    deal(org, rep, 1500, stage="survey", cust=churned, expected=dt.date(2026, 2, 25), progress=at(dt.date(2026, 2, 20)))
    deal(org, rep, 2500, stage="tender", expected=dt.date(2026, 2, 26), progress=at(dt.date(2026, 2, 24)),
         entered=at(dt.date(2025, 12, 1)))  # long in the quote stage
    deal(org, rep, 100, stage="tender", expected=dt.date(2026, 2, 26), progress=at(dt.date(2026, 2, 24)),
         entered=at(dt.date(2026, 2, 24)))  # recent quote: live pipeline
    deal(org, rep, 8000, stage="contract", expected=dt.date(2026, 2, 27), progress=at(dt.date(2026, 2, 25)))
    deal(org, org.users["rep.south1"], 20000, closed=dt.date(2026, 2, 14))
    return rep


def test_attribution_sums_to_the_gap_for_every_row(february, org):
    report, created = report_generate(actor=org.users["director"], start=FEB[0], as_of=FEB[1])
    assert created
    rows = {(r["kind"], r["name"]): r for r in report.data["rows"]}
    rep = rows[("rep", "李明")]
    assert rep["target"] == "35777.78"  # 115000 × 28 / 90
    assert rep["actual"] == "10000.00"
    assert rep["gap"] == "25777.78"
    c = {k: Decimal(v["amount"]) for k, v in rep["causes"].items()}
    assert c["customer_churn"] == Decimal("6500.00")  # lost 5000 + open deal of a churned customer 1500
    assert c["quote_delay"] == Decimal("6500.00")  # lost 4000 + 2500 sitting in tender longer than the median
    assert c["solution_mismatch"] == Decimal("3000.00")
    assert c["competitor"] == Decimal("2000.00")
    assert c["other_loss"] == Decimal("1000.00")
    assert c["stalled"] == Decimal("6000.00")
    # Remainder 777.78 vs weighted live pipeline 8000×80% + 100×60% = 6460: the pipeline could cover it.
    assert c["not_enough_pipeline"] == 0 and rep["unexplained"] == "777.78"
    for row in report.data["rows"]:
        assert _total(row) == Decimal(row["gap"]), row["name"]
    assert rep["causes"]["stalled"]["count"] == 1 and rep["causes"]["customer_churn"]["count"] == 2
    company = report.data["rows"][0]
    assert company["kind"] == "unit" and company["depth"] == 0
    assert company["actual"] == "30000.00"  # rep.east1 10000 + rep.south1 20000
    assert report.data["total"]["gap"] == company["gap"]


def test_losses_above_the_gap_are_scaled_down_and_still_sum_exactly(cascade, org):
    rep = org.users["rep.east1"]
    deal(org, rep, 100000, stage="lost", closed=dt.date(2026, 2, 10), loss_reason="competitor")
    deal(org, rep, 33333.33, stage="lost", closed=dt.date(2026, 2, 11), loss_reason="quote_delay")
    report, _ = report_generate(actor=None, start=FEB[0], as_of=FEB[1])
    row = next(r for r in report.data["rows"] if r["kind"] == "rep")
    assert row["gap"] == "35777.78"
    assert _total(row) == Decimal("35777.78") and row["unexplained"] == "0"
    comp, quote = Decimal(row["causes"]["competitor"]["amount"]), Decimal(row["causes"]["quote_delay"]["amount"])
    assert abs(comp / quote - 3) < Decimal("0.001")


def test_no_pipeline_means_not_enough_pipeline(cascade, org):
    report, _ = report_generate(actor=None, start=FEB[0], as_of=FEB[1])
    row = next(r for r in report.data["rows"] if r["kind"] == "rep")
    assert row["causes"]["not_enough_pipeline"]["amount"] == row["gap"] == "35777.78"
    assert row["unexplained"] == "0.00"


@given(gap=st.decimals(min_value=-1000, max_value=10**9, places=2),
       raw=st.lists(st.decimals(min_value=0, max_value=10**9, places=2), min_size=6, max_size=6),
       pipe=st.decimals(min_value=0, max_value=10**9, places=2))
def test_attribute_always_sums_to_the_gap(gap, raw, pipe):
    keys = [k for k in CAUSE_KEYS if k != "not_enough_pipeline"]
    amounts, unexplained = attribute(gap, dict(zip(keys, raw, strict=True)), pipe)
    assert sum(amounts.values(), Decimal("0")) + unexplained == gap
    assert all(v >= 0 for v in amounts.values())


def test_one_report_per_period_and_notifications_once(february, org):
    r1, created1 = report_generate(actor=None, start=FEB[0], as_of=FEB[1], scheduled=True)
    r2, created2 = report_generate(actor=None, start=dt.date(2026, 2, 14), as_of=FEB[1], scheduled=True)
    assert created1 and not created2 and r1.pk == r2.pk
    assert GoalReport.objects.count() == 1
    recipients = set(Notification.objects.filter(kind="goal_report").values_list("recipient__username", flat=True))
    assert recipients == {"director", "manager.east", "manager.south"}
    n = Notification.objects.filter(kind="goal_report", recipient=org.users["director"]).get()
    assert n.link == f"/goals/reports/{r1.pk}/"


def test_report_snapshot_stays_what_it_was(february, org):
    report, _ = report_generate(actor=None, start=FEB[0], as_of=FEB[1])
    deal(org, february, 99999, closed=dt.date(2026, 2, 5))
    report.refresh_from_db()
    assert next(r for r in report.data["rows"] if r["kind"] == "rep")["actual"] == "10000.00"


def test_on_demand_reports_are_not_broadcast(cascade, org, api_client):
    """A manager's or director's report on demand notifies nobody; only the scheduled monthly one does."""
    resp = api_client(org.users["manager.east"]).post(
        "/api/goals/reports", {"start": "2026-01-01", "end": "2026-03-31"}, content_type="application/json")
    assert resp.status_code == 201
    report_generate(actor=org.users["director"], start=FEB[0], as_of=FEB[1])
    assert GoalReport.objects.count() == 2
    assert not Notification.objects.filter(kind="goal_report").exists()


@pytest.mark.parametrize("body, field", [
    ({"start": "2000-01-01", "end": "2100-12-31"}, "end"),  # a century
    ({"start": "2026-01-01", "end": "2027-01-01"}, "end"),  # a year and a day
    ({"start": "1999-12-01"}, "start"),
    ({"start": "2026-01-01", "end": "9999-12-31"}, "end"),
    ({"start": "0001-01-01"}, "start"),
])
def test_report_periods_are_bounded(org, api_client, body, field):
    resp = api_client(org.users["manager.east"]).post("/api/goals/reports", body, content_type="application/json")
    assert resp.status_code == 422
    assert [e["loc"] for e in resp.json()["detail"]] == [["body", field]]
    assert not GoalReport.objects.exists() and not Notification.objects.exists()


def test_a_year_is_the_longest_report(org):
    leap, _ = report_generate(actor=org.users["director"], start="2028-01-01", end="2028-12-31")
    assert (leap.period_end - leap.period_start).days + 1 == 366
    year, _ = report_generate(actor=org.users["director"], start="2026-07-01", end="2027-06-30")
    assert year.period_end == dt.date(2027, 6, 30)
