"""metrics.local_month: the database buckets datetimes into local (Asia/Shanghai) months exactly like
Python does, including instants just before/after local midnight of the 1st (UTC 16:00 the day before)."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from tuijin.goals.metrics import local_month
from tuijin.pipeline.models import Opportunity

from .conftest import deal

pytestmark = pytest.mark.django_db


def test_time_zone_is_shanghai():
    assert settings.TIME_ZONE == "Asia/Shanghai"


def test_local_month_matches_python_at_boundaries_and_random_instants(org):
    rep = org.users["rep.east1"]
    utc = dt.UTC
    instants = [
        dt.datetime(2026, 1, 31, 15, 59, 59, tzinfo=utc),  # 23:59:59 local on 31 Jan → January
        dt.datetime(2026, 1, 31, 16, 0, 0, tzinfo=utc),  # 00:00 local on 1 Feb → February
        dt.datetime(2025, 12, 31, 16, 0, 0, tzinfo=utc),  # 1 Jan 2026 local
        dt.datetime(2026, 3, 1, 0, 30, tzinfo=utc),
    ]
    rng = random.Random(5)
    base = dt.datetime(2025, 11, 1, tzinfo=utc)
    instants += [base + dt.timedelta(minutes=rng.randrange(0, 150 * 1440)) for _ in range(40)]
    expected: dict[dt.date, list] = {}
    for i, when in enumerate(instants):
        o = deal(org, rep, 100 + i, closed=when)
        month = timezone.localtime(when).date().replace(day=1)
        expected.setdefault(month, []).append(o.amount)
    first = min(timezone.localtime(w).date() for w in instants)
    last = max(timezone.localtime(w).date() for w in instants)
    rows = (Opportunity.objects.filter(owner=rep).order_by().annotate(month=local_month("closed_at", first, last))
            .values("month").annotate(n=Count("id"), total=Sum("amount")))
    got = {r["month"]: (r["n"], Decimal(r["total"])) for r in rows}
    assert got == {m: (len(v), sum(v, Decimal(0))) for m, v in expected.items()}
    assert got[dt.date(2026, 1, 1)][0] >= 1 and got[dt.date(2026, 2, 1)][0] >= 1


def test_rows_outside_the_range_get_no_month(org):
    rep = org.users["rep.east1"]
    deal(org, rep, 1, closed=dt.date(2026, 5, 10))
    row = Opportunity.objects.filter(owner=rep).annotate(
        month=local_month("closed_at", dt.date(2026, 1, 1), dt.date(2026, 4, 30))).values("month").get()
    assert row["month"] is None
