"""Goals API with real bearer tokens: objectives (403 for reps), allocation with warnings (422 naming the row),
attenuation, boards (404 for others), figure records, reports with records links and downloads."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.goals.models import Objective, Target
from tuijin.goals.services import report_generate

from .conftest import deal

pytestmark = pytest.mark.django_db


def test_rep_cannot_create_objectives_director_can(org, api_client):
    body = {"period_kind": "quarter", "period_start": "2026-04-01", "title": "Q2",
            "key_results": [{"metric": "signed_revenue", "target": "500000"}]}
    assert api_client(org.users["rep.east1"]).post("/api/goals/objectives", body,
                                                   content_type="application/json").status_code == 403
    resp = api_client(org.users["director"]).post("/api/goals/objectives", body, content_type="application/json")
    assert resp.status_code == 201, resp.content
    kr = resp.json()["key_results"][0]
    assert kr["metric"] == "signed_revenue" and kr["company"]["target"] == "500000.00"
    assert kr["company"]["records"].startswith("/api/goals/targets/")
    bad = api_client(org.users["director"]).post("/api/goals/objectives", {**body, "period_start": "2026-04-15",
                                                  "period_end": "2026-04-01"}, content_type="application/json")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "end"]
    assert Objective.objects.count() == 1


def test_allocate_returns_warnings_and_errors_name_the_row(cascade, org, api_client):
    client = api_client(org.users["manager.east"])
    url = f"/api/goals/targets/{cascade.east.pk}/allocate"
    resp = client.post(url, {"children": [{"unit": org.units["shanghai"].pk, "value": "100000"},
                                          {"unit": org.units["hangzhou"].pk, "value": "-1"}]},
                       content_type="application/json")
    assert resp.status_code == 422
    assert resp.json()["detail"] == [{"type": "value_error", "loc": ["body", "children[1]", "value"],
                                      "msg": "不能为负数"}]
    assert Target.objects.get(pk=cascade.shanghai.pk).value == 120000
    resp = client.post(url, {"children": [{"unit": org.units["shanghai"].pk, "value": "100000"}]},
                       content_type="application/json")
    assert resp.status_code == 200
    kinds = sorted(w["kind"] for w in resp.json()["warnings"])
    assert kinds == ["growth_drop", "sum_short"]  # 上海 now +0% (杭州 keeps +30%), sum 230k < 250k
    assert api_client(org.users["rep.east1"]).post(url, {"children": []},
                                                   content_type="application/json").status_code == 404


def test_attenuation_endpoint(cascade, org, api_client):
    data = api_client(org.users["director"]).get(f"/api/goals/key-results/{cascade.kr.pk}/attenuation").json()
    assert [lv["scope"] for lv in data["levels"]][:4] == ["推进示范医疗器械有限公司", "华东大区", "上海", "李明"]
    drops = [f for f in data["flags"] if f["kind"] == "growth_drop"]
    assert [(f["scope"], round(f["growth"], 2), round(f["parent_growth"], 2)) for f in drops] == [
        ("华东大区", 0.25, 0.3), ("上海", 0.2, 0.25), ("李明", 0.15, 0.2)]


def test_boards_and_figure_records(cascade, org, api_client):
    rep = org.users["rep.east1"]
    won = deal(org, rep, 30000, closed=dt.date(2026, 1, 10))
    client = api_client(rep)
    board = client.get("/api/goals/boards/me?on=2026-02-14").json()
    k = board["kpis"][0]
    assert k["metric"] == "signed_revenue" and k["actual"] == "30000.00" and k["expected"] == "57500.00"
    records = client.get(k["records"]).json()
    assert records["kind"] == "opportunity" and [r["id"] for r in records["items"]] == [won.pk]
    assert client.get(f"/api/goals/boards/{org.users['rep.east2'].pk}").status_code == 404
    assert client.get(f"/api/goals/targets/{cascade.east.pk}/records").status_code == 404
    team = api_client(org.users["manager.east"]).get("/api/goals/boards/team?on=2026-02-14").json()
    assert team["rollup"][0]["target"] == "250000.00"
    assert {p["user"]["username"] for p in team["people"]} == {"rep.east1", "rep.east2"}


def test_reports_api(cascade, org, api_client):
    deal(org, org.users["rep.east1"], 5000, stage="lost", closed=dt.date(2026, 2, 10), loss_reason="competitor")
    client = api_client(org.users["director"])
    resp = client.post("/api/goals/reports", {"start": "2026-02-01"}, content_type="application/json")
    assert resp.status_code == 201
    again = client.post("/api/goals/reports", {"start": "2026-02-01"}, content_type="application/json")
    assert again.status_code == 200 and again.json()["id"] == resp.json()["id"]
    data = resp.json()
    rep_row = next(r for r in data["rows"] if r["kind"] == "rep")
    comp = next(c for c in rep_row["causes"] if c["key"] == "competitor")
    assert comp["amount"] == "5000.00"
    assert client.get(comp["records"]).json()["count"] == 1
    assert client.get(data["excel"]).status_code == 200
    assert client.get(data["pdf"]).content.startswith(b"%PDF")
    assert api_client(org.users["rep.east1"]).post("/api/goals/reports", {"start": "2026-03-01"},
                                                   content_type="application/json").status_code == 403


def test_report_rows_filtered_for_rep(cascade, org, api_client):
    report_generate(actor=None, start=dt.date(2026, 2, 1), as_of=dt.date(2026, 2, 28))
    client = api_client(org.users["rep.east1"])
    rid = client.get("/api/goals/reports").json()["items"][0]["id"]
    rows = client.get(f"/api/goals/reports/{rid}").json()["rows"]
    assert [r["name"] for r in rows] == ["李明"]
