"""The demo loads goals with a visible attenuation chain, targets for every rep and last month's report."""

from __future__ import annotations

import pytest

from tuijin.demo.generate import generate
from tuijin.goals.models import GoalReport, KeyResult, Target
from tuijin.goals.selectors import cascade
from tuijin.org.models import User

pytestmark = pytest.mark.django_db


def test_demo_goals(db):
    summary = generate(reps=8, customers=120, months=6, seed=7)
    assert "分解目标值" in summary  # EXTENSION_LABELS["goal targets"]
    kr = KeyResult.objects.filter(metric__key="signed_revenue").order_by("-objective__period__start").first()
    reps = set(User.objects.filter(role="rep", is_active=True).values_list("pk", flat=True))
    assert reps <= set(Target.objects.filter(key_result=kr).values_list("user_id", flat=True))
    data = cascade(user=User.objects.get(username="director"), key_result=kr)
    drops = {f["scope"] for f in data["flags"] if f["kind"] == "growth_drop"}
    assert {"华东大区", "上海", "李明"} <= drops
    assert "华南大区" not in drops
    report = GoalReport.objects.get()
    assert report.data["rows"] and any(r["kind"] == "rep" for r in report.data["rows"])
