"""Goal fixtures: deals with chosen close dates, and a 2026 Q1 revenue cascade with the article's 30/25/20/15 shape."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal

import pytest
from django.utils import timezone

from tuijin.customers.models import Customer
from tuijin.goals.models import MetricKind, Target
from tuijin.goals.services import key_result_create, objective_create, period_create, target_allocate
from tuijin.pipeline.models import Opportunity

_seq = itertools.count(1)


def at(day: dt.date, hour: int = 12) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def customer(owner, **kw) -> Customer:
    n = next(_seq)
    kw.setdefault("name", f"目标测试客户{n}")
    created = kw.pop("created_at", None)
    c = Customer.objects.create(owner=owner, name_normalized=kw["name"], **kw)
    if created:
        Customer.objects.filter(pk=c.pk).update(created_at=created)
        c.refresh_from_db()
    return c


def deal(org, owner, amount, *, stage="won", closed=None, cust=None, expected=None, loss_reason="",
         progress=None, entered=None, name=None) -> Opportunity:
    """An opportunity straight into the stage, with the timestamps a test needs."""
    st = org.stages[stage]
    now = timezone.now()
    closed_at = at(closed) if isinstance(closed, dt.date) and not isinstance(closed, dt.datetime) else closed
    o = Opportunity.objects.create(
        name=name or f"目标测试商机{next(_seq)}", customer=cust or customer(owner), owner=owner,
        pipeline=org.pipeline, stage=st, amount=Decimal(str(amount)), probability=st.probability,
        expected_close_date=expected, loss_reason=loss_reason,
        last_progress_at=progress or closed_at or now, stage_entered_at=entered or closed_at or now,
        closed_at=closed_at if st.kind != "open" else None,
    )
    return o


Q4_2025 = dt.date(2025, 11, 15)
Q1 = (dt.date(2026, 1, 1), dt.date(2026, 3, 31))


@dataclass
class Cascade:
    period: object
    objective: object
    kr: object
    company: Target
    east: Target
    south: Target
    shanghai: Target
    hangzhou: Target
    rep: Target
    warnings: dict


@pytest.fixture
def cascade(org):
    """Baselines from Q4 2025: rep.east1 100k, rep.east2 100k, rep.south1 100k (company 300k).

    Q1 2026 targets: company 390k (+30%) → 华东 250k (+25%) → 上海 120k (+20%) → rep.east1 115k (+15%);
    华南 140k, 杭州 130k.
    """
    u = org.users
    for name in ["rep.east1", "rep.east2", "rep.south1"]:
        deal(org, u[name], 100000, closed=Q4_2025)
    director = u["director"]
    period = period_create(actor=director, kind="quarter", start=Q1[0])
    objective = objective_create(actor=director, period=period, title="提升客户生命周期价值")
    kr = key_result_create(actor=director, objective=objective,
                           metric=MetricKind.objects.get(key="signed_revenue"), target="390000", title="签约额增长30%")
    company = kr.targets.get(parent__isnull=True)
    warnings = {}
    r = target_allocate(actor=director, parent=company, children=[
        {"unit": org.units["east"].pk, "value": "250000"}, {"unit": org.units["south"].pk, "value": "140000"}])
    warnings["company"] = r.warnings
    east, south = r.targets
    r = target_allocate(actor=director, parent=east, children=[
        {"unit": org.units["shanghai"].pk, "value": "120000"}, {"unit": org.units["hangzhou"].pk, "value": "130000"}])
    warnings["east"] = r.warnings
    shanghai, hangzhou = r.targets
    r = target_allocate(actor=director, parent=shanghai, children=[{"user": u["rep.east1"].pk, "value": "115000"}])
    warnings["shanghai"] = r.warnings
    (rep,) = r.targets
    return Cascade(period, objective, kr, company, east, south, shanghai, hangzhou, rep, warnings)
