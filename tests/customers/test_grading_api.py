"""`/api/grading/rules`: admins only (others 403), writes through the grading services (422 naming the
condition, change trail, re-grading), and the data migration that gives 高净值 its third condition."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps

from tuijin.core.audit import history_for
from tuijin.core.models import AuditEvent
from tuijin.customers.models import GradeRule

pytestmark = pytest.mark.django_db

RULE = {"code": "big_open", "name": "大额在谈", "priority": 5,
        "conditions": [{"metric": "open_pipeline", "op": ">=", "value": 100000}]}


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director", "finance"])
def test_only_admins_read_or_write_rules(org, api_client, username):
    client = api_client(org.users[username])
    rule = GradeRule.objects.get(code="high_value")
    assert client.get("/api/grading/rules").status_code == 403
    assert client.get(f"/api/grading/rules/{rule.pk}").status_code == 403
    assert client.post("/api/grading/rules", RULE, content_type="application/json").status_code == 403
    resp = client.patch(f"/api/grading/rules/{rule.pk}", {"priority": 1}, content_type="application/json")
    assert resp.status_code == 403
    assert not GradeRule.objects.filter(code="big_open").exists()
    assert GradeRule.objects.get(pk=rule.pk).priority == 10


def test_admin_lists_creates_and_patches_rules(world, api_client):
    client = api_client(world.users["admin"])
    resp = client.get("/api/grading/rules")
    assert resp.status_code == 200
    body = resp.json()
    assert [r["code"] for r in body["items"]] == ["high_value", "line_focused", "growth", "standard"]
    hv = body["items"][0]
    assert [c["text"] for c in hv["conditions"]] == [
        "客户生命周期价值（赢单金额合计） ≥ 80000", "近12个月成交次数 > 3", "单一产品线采购占比（0–1） > 0.65"]

    resp = client.post("/api/grading/rules", RULE, content_type="application/json")
    assert resp.status_code == 201, resp.content
    created = resp.json()
    # Every world customer has an open 100,000 deal: the new first rule grades all of them.
    assert created["code"] == "big_open" and created["customer_count"] == 4
    rule = GradeRule.objects.get(code="big_open")
    assert [e.action for e in history_for(rule)] == ["create"]

    resp = client.patch(f"/api/grading/rules/{rule.pk}", {"is_active": False}, content_type="application/json")
    assert resp.status_code == 200 and resp.json()["is_active"] is False and resp.json()["customer_count"] == 0
    assert [e.action for e in history_for(rule)] == ["create", "update"]
    assert client.get("/api/grading/rules/999999").status_code == 404


@pytest.mark.parametrize("conditions, loc", [
    ([{"metric": "wallet_size", "op": ">", "value": 3}], ["body", "conditions[0]", "metric"]),
    ([{"metric": "ltv", "op": "contains", "value": 3}], ["body", "conditions[0]", "op"]),
    ([{"metric": "top_line_share", "op": ">", "value": 65}], ["body", "conditions[0]", "value"]),
    ([{"metric": "ltv", "op": ">="}], ["body", "conditions[0]", "value"]),
])
def test_bad_condition_is_422_naming_it_and_changes_nothing(org, api_client, conditions, loc):
    client = api_client(org.users["admin"])
    rule = GradeRule.objects.get(code="high_value")
    events = AuditEvent.objects.count()
    resp = client.patch(f"/api/grading/rules/{rule.pk}", {"conditions": conditions}, content_type="application/json")
    assert resp.status_code == 422
    assert [e["loc"] for e in resp.json()["detail"]] == [loc]
    assert GradeRule.objects.get(pk=rule.pk).conditions == rule.conditions
    resp = client.post("/api/grading/rules", {**RULE, "conditions": conditions}, content_type="application/json")
    assert resp.status_code == 422 and not GradeRule.objects.filter(code="big_open").exists()
    assert AuditEvent.objects.count() == events


def test_malformed_rule_bodies_are_422(org, api_client):
    client = api_client(org.users["admin"])
    for body in [{"code": "x"}, {**RULE, "priority": "high"}, {**RULE, "conditions": [{"metric": "ltv"}]}]:
        assert client.post("/api/grading/rules", body, content_type="application/json").status_code == 422
    assert not GradeRule.objects.filter(code__in=["x", "big_open"]).exists()


MIGRATION = importlib.import_module("tuijin.customers.migrations.0006_grading_default_rule_three_conditions")


def test_migration_updates_the_untouched_default_rule_only(db):
    rule = GradeRule.objects.get(code="high_value")
    assert rule.conditions == MIGRATION.THREE_CONDITIONS  # fresh installation: 0005 then 0006
    MIGRATION.backwards(apps, None)
    assert GradeRule.objects.get(pk=rule.pk).conditions == MIGRATION.SEEDED["conditions"]
    MIGRATION.forwards(apps, None)
    assert GradeRule.objects.get(pk=rule.pk).conditions == MIGRATION.THREE_CONDITIONS
    # An admin's edit (here: the LTV threshold) is kept.
    MIGRATION.backwards(apps, None)
    edited = [dict(c, value=100000) if c["metric"] == "ltv" else c for c in MIGRATION.SEEDED["conditions"]]
    GradeRule.objects.filter(pk=rule.pk).update(conditions=edited)
    MIGRATION.forwards(apps, None)
    assert GradeRule.objects.get(pk=rule.pk).conditions == edited
    # So is a renamed or switched-off rule with the seeded conditions.
    GradeRule.objects.filter(pk=rule.pk).update(conditions=MIGRATION.SEEDED["conditions"], is_active=False)
    MIGRATION.forwards(apps, None)
    assert GradeRule.objects.get(pk=rule.pk).conditions == MIGRATION.SEEDED["conditions"]
