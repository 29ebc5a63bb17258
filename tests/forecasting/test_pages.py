"""Pages of forecasting: filing on the web, lock (no edit controls, 423 on POST), visibility 404,
manager views, corrections, accuracy with record links and Excel export."""

from __future__ import annotations

import io

import pytest

from tuijin.forecasting import services
from tuijin.forecasting.models import CorrectionRequest, DailyReport, ForecastLine

from .dataset import WEEK, build
from .helpers import D, future, line, submitted_report, won_deal

EDIT_MARKERS = [b'id="add-line-form"', b'id="summary-form"', b'id="submit-report"', b"ack-form",
                b"/lines/add", b"/remove"]


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director", "finance", "presales", "admin"])
def test_pages_render_for_each_role(world, login, username):
    report = submitted_report(world)
    build(world)
    client = login(world.users[username])
    pages = ["/forecasts/", "/forecasts/corrections/", "/forecasts/corrections/?awaiting=0", "/forecasts/accuracy/",
             "/forecasts/accuracy/?period=month&group=region", f"/forecasts/accuracy/?start={WEEK}&end={WEEK}",
             f"/forecasts/accuracy/records?period=week&start={WEEK}&group=company&key=0&which=missed"]
    for url in pages:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
    expected = 200 if username in ("rep.east1", "manager.east", "director", "finance", "admin") else 404
    assert client.get(f"/forecasts/reports/{report.pk}/").status_code == expected


def test_file_report_on_the_web_with_outlier_acknowledgement(world, login):
    customer = world.customers["rep.east1"]
    won_deal(world, "rep.east1", customer, 100000)
    rep = world.users["rep.east1"]
    client = login(rep)
    resp = client.post("/forecasts/reports/new")
    report = DailyReport.objects.get(rep=rep)
    assert resp.status_code == 302 and resp["Location"] == f"/forecasts/reports/{report.pk}/"
    page = client.get(f"/forecasts/reports/{report.pk}/").content.decode()
    assert world.activities["rep.east1"].conclusion in page  # today's activities, linked
    options = client.get(f"/forecasts/reports/{report.pk}/evidence-options",
                         {"opportunity_id": world.opps["rep.east1"].pk}).content.decode()
    assert f'value="{world.activities["rep.east1"].pk}"' in options
    # Bad input: the form comes back with the error and nothing is saved.
    resp = client.post(f"/forecasts/reports/{report.pk}/lines/add", {
        "form": "add", "opportunity_id": world.opps["rep.east1"].pk, "amount": "-1",
        "expected_sign_date": future(), "confidence": "commit"})
    assert resp.status_code == 422 and "金额不能为负数" in resp.content.decode()
    assert not ForecastLine.objects.exists()
    resp = client.post(f"/forecasts/reports/{report.pk}/lines/add", {
        "form": "add", "opportunity_id": world.opps["rep.east1"].pk, "amount": "200000",
        "expected_sign_date": future(), "confidence": "commit",
        "evidence_ids": [world.activities["rep.east1"].pk]})
    assert resp.status_code == 302
    ln = ForecastLine.objects.get()
    assert ln.is_outlier
    page = client.get(f"/forecasts/reports/{report.pk}/").content.decode()
    assert f'id="outlier-{ln.pk}"' in page and "+100.0%" in page
    client.post(f"/forecasts/reports/{report.pk}/summary", {"summary": "拜访客户，确认预算"})
    resp = client.post(f"/forecasts/reports/{report.pk}/submit")
    assert resp.status_code == 422 and "请填写原因确认" in resp.content.decode()
    client.post(f"/forecasts/reports/{report.pk}/lines/{ln.pk}/update",
                {"form": "ack", "outlier_reason": "客户扩建，采购量翻倍"})
    resp = client.post(f"/forecasts/reports/{report.pk}/submit")
    assert resp.status_code == 302
    report.refresh_from_db()
    assert report.status == "submitted"
    page = client.get(f"/forecasts/reports/{report.pk}/").content
    assert b'id="locked-badge"' in page and "客户扩建，采购量翻倍".encode() in page
    for marker in EDIT_MARKERS:
        assert marker not in page, marker
    assert b'id="request-correction"' in page


def test_posts_against_a_locked_report_answer_423_and_change_nothing(world, login):
    report = submitted_report(world)
    ln = report.lines.get()
    client = login(world.users["rep.east1"])
    base = f"/forecasts/reports/{report.pk}"
    posts = [
        (f"{base}/summary", {"summary": "改"}),
        (f"{base}/lines/add", {"form": "add", **{k: v for k, v in line(world).items() if k != "evidence_ids"}}),
        (f"{base}/lines/{ln.pk}/update", {"form": "line", "amount": "1"}),
        (f"{base}/lines/{ln.pk}/remove", {}),
        (f"{base}/submit", {}),
    ]
    for url, data in posts:
        resp = client.post(url, data)
        assert resp.status_code == 423, (url, resp.status_code)
        assert "锁定" in resp.content.decode()
    ln.refresh_from_db()
    report.refresh_from_db()
    assert ln.amount == D("100000.00") and report.summary == "拜访两家医院"


def test_rep_gets_404_for_another_reps_report_and_manager_sees_team(world, login):
    other = submitted_report(world, "rep.south1")
    mine = submitted_report(world, "rep.east2")
    client = login(world.users["rep.east1"])
    assert client.get(f"/forecasts/reports/{other.pk}/").status_code == 404
    assert client.post(f"/forecasts/reports/{other.pk}/summary", {"summary": "x"}).status_code == 404
    mgr = login(world.users["manager.east"])
    assert mgr.get(f"/forecasts/reports/{mine.pk}/").status_code == 200
    assert mgr.get(f"/forecasts/reports/{other.pk}/").status_code == 404
    home = mgr.get("/forecasts/").content.decode()
    assert f'data-report-id="{mine.pk}"' in home and f'data-report-id="{other.pk}"' not in home
    assert 'id="missing"' in home
    # manager sees the rep's report but no edit controls on someone else's draft
    draft = services.report_create(actor=world.users["rep.east1"], summary="草稿")
    page = mgr.get(f"/forecasts/reports/{draft.pk}/").content
    assert b'id="add-line-form"' not in page
    assert mgr.post(f"/forecasts/reports/{draft.pk}/summary", {"summary": "经理改"}).status_code == 403


def test_home_lists_who_has_not_filed(world, login):
    import datetime as dt

    monday = dt.date(2026, 3, 2)
    DailyReport.objects.create(rep=world.users["rep.east2"], date=monday, status="draft")
    page = login(world.users["manager.east"]).get("/forecasts/", {"date": monday.isoformat()}).content.decode()
    assert 'data-rep="rep.east1"' in page and 'data-rep="rep.east2"' in page and "草稿未提交" in page
    assert 'data-rep="rep.south1"' not in page


def test_correction_through_pages_shows_original_beside_corrected(world, login):
    report = submitted_report(world)
    ln = report.lines.get()
    rep = login(world.users["rep.east1"])
    resp = rep.post(f"/forecasts/reports/{report.pk}/correction", {"reason": "", f"line_{ln.pk}": "1"})
    assert resp.status_code == 422
    resp = rep.post(f"/forecasts/reports/{report.pk}/correction",
                    {"reason": "金额多写一个零", f"line_{ln.pk}": "1", f"amount_{ln.pk}": "10000"})
    assert resp.status_code == 302
    req = CorrectionRequest.objects.get()
    page = rep.get(f"/forecasts/reports/{report.pk}/").content.decode()
    assert "approve-btn" not in page  # the requester gets no approval button
    mgr = login(world.users["manager.east"])
    assert "approve-btn" in mgr.get(f"/forecasts/reports/{report.pk}/").content.decode()
    mgr.post(f"/forecasts/corrections/{req.pk}/approve")
    ln.refresh_from_db()
    assert ln.amount == D("100000.00")
    assert rep.post(f"/forecasts/corrections/{req.pk}/approve").status_code == 403
    fin = login(world.users["finance"])
    assert f'data-correction-id="{req.pk}"' in fin.get("/forecasts/corrections/").content.decode()
    fin.post(f"/forecasts/corrections/{req.pk}/approve")
    ln.refresh_from_db()
    assert ln.amount == D("10000.00")
    page = rep.get(f"/forecasts/reports/{report.pk}/").content.decode()
    assert f'id="original-{ln.pk}"' in page and "100,000.00" in page and "10,000.00" in page


def test_reject_through_pages(world, login):
    report = submitted_report(world)
    ln = report.lines.get()
    req = services.correction_request_create(actor=world.users["rep.east1"], report=report, reason="r",
                                             items=[{"line_id": ln.pk, "amount": "1"}])
    login(world.users["finance"]).post(f"/forecasts/corrections/{req.pk}/reject", {"reason": "没有依据"})
    req.refresh_from_db()
    ln.refresh_from_db()
    assert req.status == "rejected" and ln.amount == D("100000.00")


def test_accuracy_page_figures_link_to_records_and_export(world, login):
    build(world)
    client = login(world.users["director"])
    default = client.get("/forecasts/accuracy/", {"start": WEEK.isoformat(), "end": WEEK.isoformat()}).content.decode()
    # A director starts at regions; the per-rep table is one click away.
    assert "group=region" in default and "华东大区" in default
    assert f"key={world.users['rep.east1'].pk}" not in default
    page = client.get("/forecasts/accuracy/", {"start": WEEK.isoformat(), "end": WEEK.isoformat(),
                                               "group": "rep"}).content.decode()
    assert 'id="chart-deviation"' in page and "echarts.min.js" in page
    assert "¥150,000.00" in page and "40.0%" in page
    east1 = world.users["rep.east1"].pk
    link = f"/forecasts/accuracy/records?period=week&amp;start={WEEK}&amp;group=rep&amp;which=missed&amp;key={east1}"
    assert link in page
    records = client.get(link.replace("&amp;", "&")).content.decode()
    assert "B单" in records and "A单" not in records and "/opportunities/" in records
    hits = client.get(f"/forecasts/accuracy/records?period=week&start={WEEK}&group=rep&which=hit&key={east1}")
    assert 'id="records-total">90,000.00' in hits.content.decode()
    resp = client.get("/forecasts/accuracy/export", {"start": WEEK.isoformat(), "end": WEEK.isoformat(),
                                                     "group": "rep"})
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxmlformats")
    from openpyxl import load_workbook
    wb = load_workbook(io.BytesIO(b"".join(resp.streaming_content)))
    rows = list(wb.active.iter_rows(values_only=True))
    assert rows[0][0] == "周期"
    east1_row = next(r for r in rows if r[1] == "李明")
    assert (east1_row[2], east1_row[3], round(east1_row[5], 4)) == (150000, 90000, 0.4)
