"""The forecasting demo: weeks of submitted reports with evidence, deviation falling over time,
acknowledged outliers, one applied and one pending correction."""

from __future__ import annotations

import decimal

import pytest
from django.utils import timezone

from tuijin.core import audit
from tuijin.demo.generate import generate
from tuijin.forecasting.accuracy import Accuracy
from tuijin.forecasting.models import CorrectionRequest, DailyReport, ForecastLine
from tuijin.org.models import User


@pytest.fixture
def demo(db):
    return generate(reps=5, customers=60, months=3, seed=7)


def test_demo_has_reports_with_evidence_and_a_falling_deviation(demo):
    assert DailyReport.objects.filter(status="submitted").count() > 100
    lines = ForecastLine.objects.all()
    assert lines.exists() and not lines.filter(evidence__isnull=True).exists()
    assert not lines.filter(is_outlier=True, outlier_reason="").exists()
    assert lines.filter(is_outlier=True).exists()
    series = [s for s in Accuracy(user=User.objects.get(username="director")).series() if s["deviation"] is not None]
    assert len(series) >= 6
    early = sum(s["deviation"] for s in series[:3]) / 3
    late = sum(s["deviation"] for s in series[-3:]) / 3
    assert early > late + decimal.Decimal("0.15"), (early, late)
    # The README's rep has not filed today: the demo leaves that to the person trying it.
    assert not DailyReport.objects.filter(rep__username="rep.east1", date=timezone.localdate()).exists()


def test_demo_corrections_one_applied_one_awaiting_finance(demo):
    statuses = dict(CorrectionRequest.objects.values_list("status", "finance_approver"))
    assert set(statuses) == {"applied", "pending"} and statuses["pending"] is None
    applied = CorrectionRequest.objects.get(status="applied")
    ln = applied.items.get().line
    assert ln.original_amount is not None and ln.amount != ln.original_amount
    assert audit.verify().ok
