"""Customer grading (SPEC G3): default rules on edge values, reasons, rule validation, recomputation, pools."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tuijin.core.audit import history_for, verify
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.customers.grading_services import (
    GRADE_OBJECT_TYPE,
    grade_recompute,
    grade_rule_create,
    grade_rule_update,
)
from tuijin.customers.models import Customer, GradeRule
from tuijin.customers.services import customer_create, customer_update
from tuijin.customers.tasks import regrade_customers_nightly
from tuijin.pipeline.models import Opportunity, Product
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage


def fresh(c):
    return Customer.objects.get(pk=c.pk)


def won_deals(org, customer, amounts, products=(), closed_days_ago=10):
    """Won opportunities with the given amounts, closed `closed_days_ago` days ago."""
    rep = customer.owner
    for i, amount in enumerate(amounts):
        o = opportunity_create(actor=rep, customer=customer, name=f"成交{i}", amount=str(amount),
                               products=[p.pk for p in products])
        opportunity_move_stage(actor=rep, opportunity=o, stage=org.stages["won"])
        Opportunity.objects.filter(pk=o.pk).update(closed_at=timezone.now() - dt.timedelta(days=closed_days_ago))
    grade_recompute()
    return fresh(customer)


@pytest.fixture
def cust(org):
    return customer_create(actor=org.users["rep.east1"], name="瑞金医院", industry="hospital_public", region="华东")


def test_default_rules_are_seeded_in_priority_order(db):
    rules = list(GradeRule.objects.values_list("code", "priority"))
    assert [c for c, _p in rules] == ["high_value", "line_focused", "growth", "standard"]
    hv = GradeRule.objects.get(code="high_value")
    assert hv.name == "高净值" and hv.name_en == "High value"
    # The article's rule: LTV ≥ 80,000 AND more than 3 deals a year AND one product line above 65%.
    assert [(c["metric"], c["op"], c["value"], c["group"]) for c in hv.conditions] == [
        ("ltv", ">=", 80000, 0), ("deals_12m", ">", 3, 0), ("top_line_share", ">", 0.65, 0)]


@pytest.fixture
def ct(org):
    return Product.objects.get(code="ct-64")


def test_ltv_of_exactly_80000_with_four_recent_deals_in_one_line_is_high_value(org, cust, ct):
    c = won_deals(org, cust, [20000, 20000, 20000, 20000], products=[ct])
    assert c.grade == "high_value"
    # The explanation lists all three conditions, each with its actual value.
    assert c.grade_reasons == [
        {"metric": "ltv", "op": ">=", "value": 80000, "group": 0, "actual": 80000, "held": True},
        {"metric": "deals_12m", "op": ">", "value": 3, "group": 0, "actual": 4, "held": True},
        {"metric": "top_line_share", "op": ">", "value": 0.65, "group": 0, "actual": 1, "held": True},
    ]


@pytest.mark.parametrize("imaging, spine, high_value", [
    (52000, 28000, False),  # exactly 65% in one line: not more than 65%
    (52800, 27200, True),  # 66%
])
def test_top_line_share_must_be_above_65_percent(org, cust, ct, imaging, spine, high_value):
    screw = Product.objects.get(code="bone-screw")
    won_deals(org, cust, [imaging / 2, imaging / 2], products=[ct])
    c = won_deals(org, cust, [spine / 2, spine / 2], products=[screw])
    assert (c.grade == "high_value") is high_value
    share = next(r for r in grading_reasons(c) if r["metric"] == "top_line_share")
    assert share["actual"] == (0.65 if not high_value else 0.66)


def grading_reasons(c):
    """The conditions of the high_value rule evaluated for c (whatever grade c got)."""
    from tuijin.customers.grading import customer_metrics, reasons_for

    return reasons_for(GradeRule.objects.get(code="high_value").conditions, customer_metrics(customer_ids=[c.pk])[c.pk])


def test_ltv_and_four_deals_without_a_dominant_line_is_not_high_value(org, cust):
    c = won_deals(org, cust, [20000, 20000, 20000, 20000])  # no products: no line share
    assert c.grade != "high_value"


def test_ltv_just_below_80000_is_not_high_value(org, cust):
    c = won_deals(org, cust, [20000, 20000, 20000, "19999.99"])
    assert c.grade == "standard"
    assert c.grade_reasons == []  # the fallback rule has no conditions


def test_ltv_just_below_80000_in_one_line_is_line_focused_not_high_value(org, cust, ct):
    c = won_deals(org, cust, [20000, 20000, 20000, "19999.99"], products=[ct])
    assert c.grade == "line_focused"


def test_exactly_three_deals_in_twelve_months_is_not_more_than_three(org, cust, ct):
    c = won_deals(org, cust, [50000, 50000, 50000], products=[ct])
    assert c.grade != "high_value"
    c = won_deals(org, cust, [50000], products=[ct])  # the fourth
    assert c.grade == "high_value"


def test_deals_older_than_twelve_months_do_not_count(org, cust, ct):
    c = won_deals(org, cust, [30000] * 4, products=[ct], closed_days_ago=400)
    assert c.grade != "high_value"
    assert fresh(c).grade_reasons == [] or all(r["metric"] != "deals_12m" for r in fresh(c).grade_reasons)


def test_line_share_above_65_percent_is_line_focused_with_reasons(org, cust):
    ct = Product.objects.get(code="ct-64")
    c = won_deals(org, cust, [10000], products=[ct])
    assert c.grade == "line_focused"
    assert c.grade_reasons == [{"metric": "top_line_share", "op": ">", "value": 0.65, "group": 0,
                                "actual": 1, "held": True}]


def test_opportunity_spanning_two_lines_splits_its_amount(org, cust):
    ct, screw = Product.objects.get(code="ct-64"), Product.objects.get(code="bone-screw")
    c = won_deals(org, cust, [10000], products=[ct, screw])
    assert c.grade == "standard"  # 50% per line, not > 65%
    c = won_deals(org, cust, [20000], products=[ct])  # imaging 25000 of 30000 = 0.8333
    assert c.grade == "line_focused"
    assert c.grade_reasons[0]["actual"] == pytest.approx(0.8333)


def test_growth_by_either_group_open_pipeline_or_recent_contact(org, cust):
    rep = cust.owner
    o = opportunity_create(actor=rep, customer=cust, name="大单", amount="100000")
    assert fresh(cust).grade == "growth"  # open pipeline exactly 100,000 (≥)
    reasons = fresh(cust).grade_reasons
    assert [r["held"] for r in reasons] == [True, True, False]  # never contacted → not within 14 days
    Opportunity.objects.filter(pk=o.pk).update(amount=5000)
    grade_recompute()
    assert fresh(cust).grade == "standard"
    Customer.objects.filter(pk=cust.pk).update(last_contact_at=timezone.now() - dt.timedelta(days=3))
    grade_recompute()
    c = fresh(cust)
    assert c.grade == "growth"
    assert [(r["metric"], r["actual"], r["held"]) for r in c.grade_reasons] == [
        ("open_pipeline", 5000, False), ("open_pipeline", 5000, True), ("days_since_contact", 3, True)]


def test_rule_on_customer_fields_and_tags(org, cust):
    admin = org.users["admin"]
    grade_rule_create(actor=admin, code="east_hospital", name="华东医院", priority=1, conditions=[
        {"metric": "region", "op": "==", "value": "华东"},
        {"metric": "industry", "op": "in", "value": "hospital_public, hospital_private"},
        {"metric": "tags", "op": "contains", "value": "标杆"},
    ])
    assert fresh(cust).grade == "standard"
    customer_update(actor=cust.owner, customer=cust, tags=["标杆"])
    c = fresh(cust)
    assert c.grade == "east_hospital"
    assert [r["held"] for r in c.grade_reasons] == [True, True, True]


@pytest.mark.parametrize("conditions, field", [
    ([{"metric": "ltv", "op": ">=", "value": 1}, {"metric": "favourite_colour", "op": "==", "value": "red"}],
     "conditions[1].metric"),
    ([{"metric": "ltv", "op": "contains", "value": 1}], "conditions[0].op"),
    ([{"metric": "industry", "op": ">", "value": "x"}], "conditions[0].op"),
    ([{"metric": "ltv", "op": ">=", "value": "八万"}], "conditions[0].value"),
    ([{"metric": "top_line_share", "op": ">", "value": 65}], "conditions[0].value"),
    ([{"metric": "size_band", "op": "==", "value": "huge"}], "conditions[0].value"),
    ([{"metric": "ltv", "op": ">=", "value": 1, "group": "a"}], "conditions[0].group"),
    ("ltv >= 1", "conditions"),
])
def test_bad_rule_names_the_condition_and_saves_nothing(org, conditions, field):
    rules_before, events_before = GradeRule.objects.count(), AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        grade_rule_create(actor=org.users["admin"], code="bad", name="坏规则", priority=5, conditions=conditions)
    assert field in exc.value.errors
    assert GradeRule.objects.count() == rules_before and AuditEvent.objects.count() == events_before


def test_rule_code_and_priority_are_validated(org):
    with pytest.raises(ValidationFailed) as exc:
        grade_rule_create(actor=org.users["admin"], code="high_value", name="", priority=-1, conditions=[])
    assert {"code", "name", "priority"} <= set(exc.value.errors)


def test_only_admins_edit_rules(org):
    rule = GradeRule.objects.get(code="high_value")
    for username in ["director", "manager.east", "rep.east1"]:
        with pytest.raises(Forbidden):
            grade_rule_update(actor=org.users[username], rule=rule, priority=1)
    assert GradeRule.objects.get(code="high_value").priority == 10


def test_changing_a_rule_regrades_everyone_and_records_grade_changes(org, cust, ct):
    won_deals(org, cust, [20000] * 4, products=[ct])
    assert fresh(cust).grade == "high_value"
    rule = GradeRule.objects.get(code="high_value")
    conditions = [dict(c, value=100000) if c["metric"] == "ltv" else c for c in rule.conditions]
    grade_rule_update(actor=org.users["admin"], rule=rule, conditions=conditions)
    assert fresh(cust).grade == "line_focused"
    events = list(history_for(GRADE_OBJECT_TYPE, cust.pk))
    assert events[-1].action == "grade_change" and events[-1].changes == {"grade": ["high_value", "line_focused"]}
    assert events[-1].actor == org.users["admin"]
    rule_events = list(history_for(rule))
    assert rule_events[-1].changes["conditions"][1] == conditions
    assert verify().ok


def test_winning_a_deal_regrades_the_customer_at_once(org, cust, ct):
    rep = cust.owner
    opps = [opportunity_create(actor=rep, customer=cust, name=f"单{i}", amount="20000", products=[ct.pk])
            for i in range(4)]
    for o in opps[:3]:
        opportunity_move_stage(actor=rep, opportunity=o, stage=org.stages["won"])
    assert fresh(cust).grade == "line_focused"
    opportunity_move_stage(actor=rep, opportunity=opps[3], stage=org.stages["won"])
    assert fresh(cust).grade == "high_value"
    assert [e.changes for e in history_for(GRADE_OBJECT_TYPE, cust.pk)][-1] == {
        "grade": ["line_focused", "high_value"]}


def test_customer_grade_is_not_a_user_edit(org, cust, ct):
    """Re-grading bumps neither the version (no false conflicts) nor updated_at (list order)."""
    before = fresh(cust)
    won_deals(org, cust, [20000] * 4, products=[ct])
    after = fresh(cust)
    assert after.grade == "high_value"
    assert (after.version, after.updated_at) == (before.version, before.updated_at)


def test_nightly_recompute_is_idempotent_and_uses_constant_queries(org, cust):
    rep = cust.owner
    assert grade_recompute()["changed"] == 0

    def run():
        Customer.objects.update(grade="")  # everybody changes: the bulk write and audit path run too
        with CaptureQueriesContext(connection) as ctx:
            result = grade_recompute(now=timezone.now() + dt.timedelta(days=1))
        return len(ctx.captured_queries), result

    for i in range(3):
        customer_create(actor=rep, name=f"客户甲{i}", allow_duplicate=True)
    few, _r = run()
    for i in range(20):
        c = customer_create(actor=rep, name=f"客户乙{i}", allow_duplicate=True)
        o = opportunity_create(actor=rep, customer=c, name=f"商机{i}", amount="1000")
        opportunity_move_stage(actor=rep, opportunity=o, stage=org.stages["won"])
    many, result = run()
    assert result["regraded"] == Customer.objects.count() == 24
    assert many == few  # one bulk update and one audit append, not one query per customer
    assert grade_recompute()["changed"] == 0


def test_nightly_task_regrades_at_two_local_time_only(org, cust, monkeypatch):
    import tuijin.customers.tasks as tasks

    Customer.objects.filter(pk=cust.pk).update(grade="")
    at_noon = timezone.make_aware(dt.datetime(2026, 11, 23, 12, 20))
    monkeypatch.setattr(tasks.timezone, "now", lambda: at_noon)
    regrade_customers_nightly.call_local()
    assert fresh(cust).grade == ""
    monkeypatch.setattr(tasks.timezone, "now", lambda: at_noon.replace(hour=2))
    regrade_customers_nightly.call_local()
    assert fresh(cust).grade == "standard"
