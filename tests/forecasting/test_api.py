"""API of forecasting: filing, 422 naming line and field, 423 on locked reports, 404 outside visibility,
corrections, missing filers, accuracy with record links."""

from __future__ import annotations

import pytest

from tuijin.forecasting.models import DailyReport, ForecastLine

from .dataset import WEEK, build
from .helpers import D, future, line, submitted_report


def _post(client, url, body):
    return client.post(url, body, content_type="application/json")


def _patch(client, url, body):
    return client.patch(url, body, content_type="application/json")


def test_file_a_report_through_the_api(world, api_client):
    client = api_client(world.users["rep.east1"])
    resp = _post(client, "/api/forecasts/reports", {"summary": "今天拜访", "lines": [line(world)]})
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["status"] == "draft" and body["lines"][0]["evidence"][0]["conclusion"] == "需求确认"
    assert [a["id"] for a in body["activities_today"]] == [world.activities["rep.east1"].pk]
    rid = body["id"]
    cands = client.get(f"/api/forecasts/reports/{rid}/evidence-candidates",
                       {"opportunity_id": world.opps["rep.east1"].pk}).json()
    assert [a["id"] for a in cands] == [world.activities["rep.east1"].pk]
    resp = _post(client, f"/api/forecasts/reports/{rid}/submit", {"version": body["version"]})
    assert resp.status_code == 200, resp.content
    assert resp.json()["status"] == "submitted"
    history = client.get(f"/api/forecasts/reports/{rid}/history").json()
    assert [e["action"] for e in history["items"]] == ["create", "line_add", "submit"]


def test_bad_line_is_422_naming_line_and_field_and_saves_nothing(world, api_client):
    client = api_client(world.users["rep.east1"])
    resp = _post(client, "/api/forecasts/reports", {"summary": "x", "lines": [
        line(world), line(world, opportunity_id=world.opps["rep.east2"].pk, amount="abc")]})
    assert resp.status_code == 422
    locs = {tuple(d["loc"]) for d in resp.json()["detail"]}
    assert ("body", "lines[1]", "amount") in locs and ("body", "lines[1]", "opportunity_id") in locs
    assert not DailyReport.objects.exists()
    resp = _post(client, "/api/forecasts/reports", {"summary": "x", "lines": [line(world, amount=-3)]})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "lines[0]", "amount"]


def test_duplicate_day_is_422(world, api_client):
    client = api_client(world.users["rep.east1"])
    assert _post(client, "/api/forecasts/reports", {"summary": "一"}).status_code == 201
    resp = _post(client, "/api/forecasts/reports", {"summary": "二"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "date"]


def test_locked_report_answers_423_and_stays_unchanged(world, api_client):
    report = submitted_report(world)
    ln = report.lines.get()
    client = api_client(world.users["rep.east1"])
    attempts = [
        _patch(client, f"/api/forecasts/reports/{report.pk}", {"summary": "改"}),
        _post(client, f"/api/forecasts/reports/{report.pk}/lines", line(world)),
        _patch(client, f"/api/forecasts/lines/{ln.pk}", {"amount": "1"}),
        client.delete(f"/api/forecasts/lines/{ln.pk}"),
        _post(client, f"/api/forecasts/reports/{report.pk}/submit", {}),
    ]
    for resp in attempts:
        assert resp.status_code == 423, resp.content
        assert "锁定" in resp.json()["detail"] and "locked" in resp.json()["detail"]
    ln.refresh_from_db()
    assert ln.amount == D("100000.00") and ForecastLine.objects.count() == 1
    report.refresh_from_db()
    assert report.summary == "拜访两家医院"


def test_line_add_update_remove_on_a_draft(world, api_client):
    client = api_client(world.users["rep.east1"])
    rid = _post(client, "/api/forecasts/reports", {"summary": "x"}).json()["id"]
    resp = _post(client, f"/api/forecasts/reports/{rid}/lines", line(world))
    assert resp.status_code == 201
    lid = resp.json()["id"]
    resp = _patch(client, f"/api/forecasts/lines/{lid}", {"amount": 120000, "expected_sign_date": future(30)})
    assert resp.status_code == 200 and resp.json()["amount"] == "120000.00"
    resp = _patch(client, f"/api/forecasts/lines/{lid}", {"expected_sign_date": "2000-01-01"})
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "lines[0]", "expected_sign_date"]
    assert client.delete(f"/api/forecasts/lines/{lid}").status_code == 204
    assert not ForecastLine.objects.exists()


def test_visibility_404_and_manager_sees_subtree(world, api_client):
    report = submitted_report(world, "rep.east2")
    assert api_client(world.users["rep.east1"]).get(f"/api/forecasts/reports/{report.pk}").status_code == 404
    assert api_client(world.users["manager.south"]).get(f"/api/forecasts/reports/{report.pk}").status_code == 404
    assert api_client(world.users["manager.east"]).get(f"/api/forecasts/reports/{report.pk}").status_code == 200
    assert api_client(world.users["finance"]).get(f"/api/forecasts/reports/{report.pk}").status_code == 200
    ln = report.lines.get()
    resp = _patch(api_client(world.users["rep.east1"]), f"/api/forecasts/lines/{ln.pk}", {"amount": "1"})
    assert resp.status_code == 404
    listed = api_client(world.users["manager.east"]).get("/api/forecasts/reports").json()
    assert [r["rep"]["username"] for r in listed["items"]] == ["rep.east2"]
    assert api_client(world.users["rep.east1"]).get("/api/forecasts/reports").json()["count"] == 0


def test_manager_cannot_write_a_reps_draft(world, api_client):
    rid = _post(api_client(world.users["rep.east1"]), "/api/forecasts/reports", {"summary": "x"}).json()["id"]
    resp = _patch(api_client(world.users["manager.east"]), f"/api/forecasts/reports/{rid}", {"summary": "y"})
    assert resp.status_code == 403


def test_missing_filers(world, api_client, monkeypatch):
    import datetime as dt

    monday = dt.date(2026, 3, 2)
    submitted = DailyReport.objects.create(rep=world.users["rep.east1"], date=monday, status="submitted")
    assert submitted.pk
    resp = api_client(world.users["manager.east"]).get("/api/forecasts/missing", {"date": monday.isoformat()})
    body = resp.json()
    assert body["working_day"] is True
    assert [m["rep"]["username"] for m in body["items"]] == ["rep.east2"]
    sunday = api_client(world.users["manager.east"]).get("/api/forecasts/missing", {"date": "2026-03-01"}).json()
    assert sunday["working_day"] is False and sunday["items"] == []
    director = api_client(world.users["director"]).get("/api/forecasts/missing", {"date": "2026-03-02"}).json()
    assert {m["rep"]["username"] for m in director["items"]} == {"rep.east2", "rep.south1"}


def test_correction_flow_through_the_api(world, api_client):
    report = submitted_report(world)
    ln = report.lines.get()
    rep = api_client(world.users["rep.east1"])
    resp = _post(rep, f"/api/forecasts/reports/{report.pk}/corrections",
                 {"reason": "多写了一个零", "items": [{"line_id": ln.pk, "amount": "10000"}]})
    assert resp.status_code == 201, resp.content
    cid = resp.json()["id"]
    assert _post(rep, f"/api/forecasts/corrections/{cid}/approve", {}).status_code == 403
    mgr = api_client(world.users["manager.east"])
    pending = mgr.get("/api/forecasts/corrections", {"awaiting_me": True}).json()
    assert [c["id"] for c in pending["items"]] == [cid]
    assert _post(mgr, f"/api/forecasts/corrections/{cid}/approve", {}).json()["status"] == "pending"
    assert mgr.get("/api/forecasts/corrections", {"awaiting_me": True}).json()["count"] == 0
    fin = api_client(world.users["finance"])
    assert fin.get("/api/forecasts/corrections", {"awaiting_me": True}).json()["count"] == 1
    assert _post(fin, f"/api/forecasts/corrections/{cid}/approve", {}).json()["status"] == "applied"
    detail = rep.get(f"/api/forecasts/reports/{report.pk}").json()
    line_out = detail["lines"][0]
    assert (line_out["amount"], line_out["original_amount"]) == ("10000.00", "100000.00")
    assert detail["corrections"][0]["status"] == "applied"


def test_reject_through_the_api_needs_reason(world, api_client):
    report = submitted_report(world)
    ln = report.lines.get()
    cid = _post(api_client(world.users["rep.east1"]), f"/api/forecasts/reports/{report.pk}/corrections",
                {"reason": "r", "items": [{"line_id": ln.pk, "confidence": "upside"}]}).json()["id"]
    fin = api_client(world.users["finance"])
    assert _post(fin, f"/api/forecasts/corrections/{cid}/reject", {"reason": ""}).status_code == 422
    resp = _post(fin, f"/api/forecasts/corrections/{cid}/reject", {"reason": "无依据"})
    assert resp.json()["status"] == "rejected"
    ln.refresh_from_db()
    assert ln.confidence == "commit"


def test_accuracy_api_figures_link_to_records(world, api_client):
    build(world)
    client = api_client(world.users["manager.east"])
    body = client.get("/api/forecasts/accuracy", {"period": "week", "start": WEEK.isoformat(),
                                                  "end": WEEK.isoformat(), "group": "rep"}).json()
    row = next(r for r in body["rows"] if r["label"] == "李明")
    assert (row["forecast"], row["actual"], row["deviation"]) == ("150000.00", "90000.00", "0.4000")
    for which, figure in (("forecast", "forecast"), ("hit", "actual"), ("won", "won_all")):
        records = client.get(row["records"][which]).json()
        assert sum(D(i["amount"]) for i in records["items"]) == D(row[figure]), which
    missed = client.get(row["records"]["missed"]).json()
    assert [i["opportunity_name"] for i in missed["items"]] == ["B单"]
    assert missed["items"][0]["opportunity_url"].startswith("/opportunities/")
    assert body["series"][0]["deviation"] == "0.1714"


@pytest.mark.parametrize("username", ["rep.east1", "manager.south"])
def test_accuracy_api_hides_other_reps(world, api_client, username):
    build(world)
    body = api_client(world.users[username]).get("/api/forecasts/accuracy", {
        "start": WEEK.isoformat(), "end": WEEK.isoformat()}).json()
    assert "张婷" not in {r["label"] for r in body["rows"]}
