"""compute_report classifies the period's deals in one pass (goals.report._period_deals): its per-row
figures must equal the documented rules computed the slow, obvious way — one ORM query per cause, as the
report did before — over random deals around every boundary (period start/end in local time, as-of day,
stall cutoff, quote-stage median, churned customers, loss reasons)."""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db.models import Q

from tuijin.customers.models import Customer
from tuijin.goals.metrics import bounds, q2
from tuijin.goals.report import LOSS_CAUSE, QUOTE_STAGE_CODES, STALL_DAYS, compute_report
from tuijin.pipeline.models import Opportunity, Stage

from .conftest import at, customer, deal

pytestmark = pytest.mark.django_db
FEB = (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
AS_OF = dt.date(2026, 2, 20)
REASONS = ["customer_churn", "quote_delay", "solution_mismatch", "competitor", "budget", "no_decision", ""]


def _random_deals(org, rng: random.Random) -> None:
    reps = [org.users[n] for n in ("rep.east1", "rep.east2", "rep.south1", "manager.east")]
    customers = {r.pk: [customer(r), customer(r, status="churned")] for r in reps}
    moments = [dt.datetime.combine(FEB[0], dt.time()) - dt.timedelta(minutes=1), dt.datetime.combine(FEB[0], dt.time()),
               dt.datetime.combine(AS_OF, dt.time(23, 59)), dt.datetime.combine(AS_OF + dt.timedelta(days=1), dt.time()),
               dt.datetime.combine(FEB[1], dt.time(23, 59))]
    for _i in range(90):
        rep = rng.choice(reps)
        stage = rng.choice(["won", "lost", "qualify", "demo", "tender", "contract"])
        if rng.random() < 0.3:
            when = rng.choice(moments)
        else:
            when = dt.datetime(2026, 1, 20) + dt.timedelta(minutes=rng.randrange(0, 50 * 1440))
        from django.utils import timezone

        when = timezone.make_aware(when)
        expected = FEB[0] + dt.timedelta(days=rng.randint(-5, 33))
        progress = at(AS_OF) - dt.timedelta(days=rng.choice([STALL_DAYS - 1, STALL_DAYS, STALL_DAYS + 1, 30, 2]))
        entered = at(dt.date(2026, 1, 1)) + dt.timedelta(days=rng.randint(0, 60))
        deal(org, rep, rng.randrange(1, 500) * 100 + rng.choice([0, 0.5, 0.01]), stage=stage,
             closed=when if stage in ("won", "lost") else None, cust=rng.choice(customers[rep.pk]),
             expected=expected, loss_reason=rng.choice(REASONS) if stage == "lost" else "",
             progress=progress, entered=entered)


def _slow(start, end, as_of) -> dict:
    """Per owner: actual, the six raw causes and the weighted pipeline, one query per cause."""
    s, e = bounds(start, end)
    _s, as_of_end = bounds(start, as_of)
    close_end = min(e, as_of_end)
    period_open = Opportunity.objects.filter(stage__kind="open", expected_close_date__gte=start,
                                             expected_close_date__lte=end)
    lost = Opportunity.objects.filter(stage__kind="lost", closed_at__gte=s, closed_at__lt=close_end)
    quote = Opportunity.objects.filter(stage__kind="open", stage__code__in=QUOTE_STAGE_CODES,
                                       stage_entered_at__lt=as_of_end).order_by("stage_entered_at", "id")
    entries = list(quote.values_list("stage_entered_at", flat=True))
    median = entries[len(entries) // 2] if entries else None
    churned = Q(customer__status=Customer.Status.CHURNED)
    quote_q = Q(stage__code__in=QUOTE_STAGE_CODES) & (Q(stage_entered_at__lt=median) if median else Q(pk__in=[]))
    stall = as_of_end - dt.timedelta(days=STALL_DAYS)
    groups = {
        "actual": [Opportunity.objects.filter(stage__kind="won", closed_at__gte=s, closed_at__lt=close_end)],
        "customer_churn": [lost.filter(loss_reason="customer_churn"), period_open.filter(churned)],
        "quote_delay": [lost.filter(loss_reason="quote_delay"), period_open.exclude(churned).filter(quote_q)],
        "solution_mismatch": [lost.filter(loss_reason="solution_mismatch")],
        "competitor": [lost.filter(loss_reason="competitor")],
        "other_loss": [lost.exclude(loss_reason__in=list(LOSS_CAUSE))],
        "stalled": [period_open.exclude(churned).exclude(quote_q).filter(last_progress_at__lt=stall)],
    }
    out: dict = defaultdict(lambda: defaultdict(Decimal))
    for key, qss in groups.items():
        for qs in qss:
            for owner, amount in qs.values_list("owner_id", "amount"):
                out[owner][key] += amount
    rest = period_open.exclude(churned).exclude(quote_q).exclude(last_progress_at__lt=stall)
    for owner, amount, prob in rest.values_list("owner_id", "amount", "probability"):
        out[owner]["pipeline_weighted"] += amount * prob / 100
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_pass_equals_the_per_cause_queries(cascade, org, seed):
    _random_deals(org, random.Random(seed))
    data = compute_report(start=FEB[0], end=FEB[1], as_of=AS_OF)
    slow = _slow(FEB[0], FEB[1], AS_OF)
    assert Stage.objects.filter(code__in=QUOTE_STAGE_CODES).exists()
    checked = 0
    for row in data["rows"]:
        owners = row["owner_ids"]
        want = {k: q2(sum((slow[o][k] for o in owners), Decimal(0))) for k in
                ("actual", "customer_churn", "quote_delay", "solution_mismatch", "competitor", "other_loss",
                 "stalled", "pipeline_weighted")}
        got = {"actual": Decimal(row["actual"]), "pipeline_weighted": Decimal(row["pipeline_weighted"]),
               **{c: Decimal(row["causes"][c]["raw"]) for c in want if c not in ("actual", "pipeline_weighted")}}
        assert got == want, row["name"]
        checked += 1
    assert checked >= 5
    company = data["rows"][0]
    assert Decimal(company["actual"]) > 0 and any(Decimal(company["causes"][c]["raw"]) > 0 for c in
                                                  ("customer_churn", "quote_delay", "stalled"))
