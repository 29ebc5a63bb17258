"""Grading in the pages and API: pools per grade (with records links), the grade on the customer page,
the admin rule editor (403 for others, preview count, field-named errors), query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.customers.models import Customer, GradeRule
from tuijin.customers.services import customer_create
from tuijin.pipeline.services import opportunity_create


def _big_deal(rep, name):
    c = customer_create(actor=rep, name=name, allow_duplicate=True)
    opportunity_create(actor=rep, customer=c, name=f"{name}大单", amount="150000")
    return c


def test_pools_api_counts_only_visible_customers_and_links_records(world, api_client):
    east1, east2 = world.users["rep.east1"], world.users["rep.east2"]
    _big_deal(east1, "甲医院")
    _big_deal(east2, "乙医院")
    client = api_client(east1)
    pools = {p["grade"]: p for p in client.get("/api/customers/pools").json()["items"]}
    assert list(pools) == ["high_value", "line_focused", "growth", "standard"]
    # rep.east1: the world's customer (open 100,000) and 甲医院 are growth; nobody else's.
    assert pools["growth"]["count"] == 2 and pools["high_value"]["count"] == 0
    listed = client.get(pools["growth"]["records"]).json()
    assert listed["count"] == 2
    assert {c["grade"] for c in listed["items"]} == {"growth"}
    assert {c["name"] for c in listed["items"]} == {"甲医院", world.customers["rep.east1"].name}
    assert pools["growth"]["page"] == "/health/pools/?grade=growth"
    manager = {p["grade"]: p for p in api_client(world.users["manager.east"]).get("/api/customers/pools")
               .json()["items"]}
    assert manager["growth"]["count"] == 5  # east1 ×2, east2 ×2, manager's own


def test_pools_page_tabs_and_list(world, login):
    client = login(world.users["rep.east1"])
    _big_deal(world.users["rep.east1"], "甲医院")
    resp = client.get("/health/pools/?grade=growth")
    html = resp.content.decode()
    assert resp.status_code == 200
    assert 'data-count="growth">2<' in html and "甲医院" in html
    assert world.customers["rep.east2"].name not in html
    assert "甲医院" not in client.get("/health/pools/?grade=standard").content.decode()


@pytest.mark.parametrize("username", ["rep.east1", "manager.east"])
def test_pools_page_has_constant_query_count(world, login, username):
    client = login(world.users[username])
    rep = world.users["rep.east1"]

    def count():
        client.get("/health/pools/?grade=growth")
        with CaptureQueriesContext(connection) as ctx:
            assert client.get("/health/pools/?grade=growth").status_code == 200
        return len(ctx.captured_queries)

    for i in range(2):
        _big_deal(rep, f"少{i}")
    few = count()
    for i in range(25):
        _big_deal(rep, f"多{i}")
    assert count() == few


def test_customer_page_shows_grade_and_why(world, login):
    c = world.customers["rep.east1"]
    html = login(world.users["rep.east1"]).get(f"/customers/{c.pk}/").content.decode()
    assert 'id="grade-badge">潜力<' in html
    assert "✓ 进行中商机金额 ≥ 100000（实际：100000）" in html
    assert "✗ 距最近跟进天数 ≤ 14" in html or "✓ 距最近跟进天数 ≤ 14" in html


def test_rule_pages_are_for_admins_only(world, login):
    for username in ["rep.east1", "manager.east", "director"]:
        client = login(world.users[username])
        assert client.get("/health/grading/").status_code == 403
        assert client.post("/health/grading/new/", {"code": "x", "name": "x", "priority": "1"}).status_code == 403
    assert not GradeRule.objects.filter(code="x").exists()
    assert login(world.users["admin"]).get("/health/grading/").status_code == 200


def test_admin_previews_and_saves_a_rule_without_code(world, login):
    client = login(world.users["admin"])
    form = {"code": "big_open", "name": "大额在谈", "name_en": "Big open", "priority": "5", "is_active": "on",
            "cond-0-metric": "open_pipeline", "cond-0-op": ">=", "cond-0-value": "100000", "cond-0-group": "0"}
    resp = client.post("/health/grading/new/", {**form, "preview": "1"})
    html = resp.content.decode()
    assert resp.status_code == 200
    assert "当前有 4 / 4 个客户满足这些条件" in html and "将有 4 个客户获得该等级" in html
    assert not GradeRule.objects.filter(code="big_open").exists()
    resp = client.post("/health/grading/new/", {**form, "save": "1"})
    assert resp.status_code == 302
    assert Customer.objects.filter(grade="big_open").count() == 4


def test_rule_editor_names_the_bad_condition(world, login):
    client = login(world.users["admin"])
    rule = GradeRule.objects.get(code="high_value")
    resp = client.post(f"/health/grading/{rule.pk}/", {
        "code": "high_value", "name": "高净值", "priority": "10", "is_active": "on",
        "cond-0-metric": "ltv", "cond-0-op": ">=", "cond-0-value": "80000",
        "cond-1-metric": "wallet_size", "cond-1-op": ">", "cond-1-value": "3", "save": "1"})
    assert resp.status_code == 422
    assert "conditions[1].metric" in resp.content.decode()
    assert GradeRule.objects.get(pk=rule.pk).conditions == rule.conditions
