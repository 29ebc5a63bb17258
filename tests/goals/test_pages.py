"""Goal pages: permissions (403 create, 404 others' boards), allocation form with warning banner,
figures linking to records, reports in browser / Excel / PDF (Chinese text extracted with pdftotext)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import subprocess
import tempfile

import pytest
from django.contrib.messages import get_messages

from tuijin.goals.models import Objective, Target
from tuijin.goals.services import report_generate

from .conftest import deal

pytestmark = pytest.mark.django_db
ON = "?on=2026-02-14"


def test_goals_home_lists_current_objectives_with_figures(cascade, login, org):
    resp = login(org.users["rep.east1"]).get("/goals/" + ON)
    assert resp.status_code == 200
    html = resp.content.decode()
    assert "提升客户生命周期价值" in html and "390,000" in html
    # The company figure is shown to a rep but not linked: its records are not theirs to open (404).
    assert f"/goals/figures/{cascade.company.pk}/records" not in html
    assert "/goals/objectives/new/" not in html  # no create button for a rep
    html = login(org.users["director"]).get("/goals/" + ON).content.decode()
    assert f"/goals/figures/{cascade.company.pk}/records" in html


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "finance"])
def test_non_directors_cannot_create_objectives(org, login, username):
    client = login(org.users[username])
    assert client.get("/goals/objectives/new/").status_code == 403
    resp = client.post("/goals/objectives/new/", {"kind": "quarter", "start": "2026-04-01", "title": "x"})
    assert resp.status_code == 403 and not Objective.objects.exists()


def test_director_creates_objective_with_key_results_and_sees_errors(org, login):
    client = login(org.users["director"])
    resp = client.post("/goals/objectives/new/", {"kind": "quarter", "start": "2026-04-01", "title": "Q2 目标",
                                                  "kr-0-metric": "signed_revenue", "kr-0-target": "1000000",
                                                  "kr-1-metric": "activities", "kr-1-target": "-3"})
    assert resp.status_code == 422 and "不能为负数" in resp.content.decode()
    assert not Objective.objects.exists()
    resp = client.post("/goals/objectives/new/", {"kind": "quarter", "start": "2026-04-01", "title": "Q2 目标",
                                                  "kr-0-metric": "signed_revenue", "kr-0-target": "1000000"})
    o = Objective.objects.get()
    assert resp.status_code == 302 and resp["Location"] == f"/goals/objectives/{o.pk}/"
    assert o.key_results.get().targets.get().value == 1000000


def test_allocation_form_saves_and_shows_the_attenuation_banner(cascade, org, login):
    client = login(org.users["manager.east"])
    page = client.get(f"/goals/targets/{cascade.east.pk}/allocate/")
    assert page.status_code == 200 and f'name="unit-{org.units["shanghai"].pk}"' in page.content.decode()
    resp = client.post(f"/goals/targets/{cascade.east.pk}/allocate/", {
        f"unit-{org.units['shanghai'].pk}": "100000", f"unit-{org.units['hangzhou'].pk}": "130000"})
    assert resp.status_code == 302
    texts = [str(m) for m in get_messages(resp.wsgi_request)]
    assert any("目标衰减" in t and "下级目标合计" in t for t in texts)
    assert Target.objects.get(pk=cascade.shanghai.pk).value == 100000


def test_allocation_form_bad_value_names_the_row_and_saves_nothing(cascade, org, login):
    client = login(org.users["director"])
    resp = client.post(f"/goals/targets/{cascade.east.pk}/allocate/", {
        f"unit-{org.units['shanghai'].pk}": "1", f"unit-{org.units['hangzhou'].pk}": "十万"})
    assert resp.status_code == 422 and "请输入数字" in resp.content.decode()
    assert Target.objects.get(pk=cascade.shanghai.pk).value == 120000


def test_rep_cannot_allocate_page(cascade, org, login):
    assert login(org.users["rep.east1"]).get(f"/goals/targets/{cascade.rep.pk}/allocate/").status_code == 403
    assert login(org.users["rep.east1"]).get(f"/goals/targets/{cascade.shanghai.pk}/allocate/").status_code == 404
    assert login(org.users["rep.south1"]).get(f"/goals/targets/{cascade.shanghai.pk}/allocate/").status_code == 404


def test_cascade_page_shows_flags_and_chart(cascade, org, login):
    resp = login(org.users["director"]).get(f"/goals/key-results/{cascade.kr.pk}/")
    html = resp.content.decode()
    assert resp.status_code == 200 and 'id="attenuation-flags"' in html and "chart-growth" in html
    assert html.count('data-kind="growth_drop"') == 3 and html.count('data-kind="sum_short"') == 1
    assert "+25.0%" in html and "+15.0%" in html


def test_rep_board_and_other_boards_404(cascade, org, login):
    rep = org.users["rep.east1"]
    deal(org, rep, 30000, closed=dt.date(2026, 1, 10), name="一月赢单CT")
    client = login(rep)
    resp = client.get("/goals/board/" + ON)
    html = resp.content.decode()
    assert resp.status_code == 200 and "一月赢单CT" in html and f"/goals/figures/{cascade.rep.pk}/records" in html
    assert client.get(f"/goals/board/{org.users['rep.east2'].pk}/").status_code == 404
    assert client.get(f"/goals/board/{org.users['manager.east'].pk}/").status_code == 404
    assert client.get(f"/goals/figures/{cascade.east.pk}/records").status_code == 404
    # The manager sees the rep's board and the team roll-up.
    mgr = login(org.users["manager.east"])
    assert mgr.get(f"/goals/board/{rep.pk}/" + ON).status_code == 200
    team = mgr.get("/goals/team/" + ON).content.decode()
    assert "李明" in team and f"/goals/figures/{cascade.east.pk}/records" in team
    assert login(org.users["manager.south"]).get(f"/goals/board/{rep.pk}/").status_code == 404


def test_figure_records_page_lists_the_records_behind_the_figure(cascade, org, login):
    rep = org.users["rep.east1"]
    deal(org, rep, 30000, closed=dt.date(2026, 1, 10), name="计入的赢单")
    deal(org, rep, 7000, closed=dt.date(2025, 12, 30), name="上季度的赢单")
    deal(org, org.users["rep.east2"], 9000, closed=dt.date(2026, 1, 11), name="别人的赢单")
    html = login(rep).get(f"/goals/figures/{cascade.rep.pk}/records" + ON).content.decode()
    assert "计入的赢单" in html and "上季度的赢单" not in html and "别人的赢单" not in html
    html = login(org.users["director"]).get(f"/goals/figures/{cascade.east.pk}/records" + ON).content.decode()
    assert "计入的赢单" in html and "别人的赢单" in html


@pytest.fixture
def report(cascade, org):
    rep = org.users["rep.east1"]
    deal(org, rep, 12345, closed=dt.date(2026, 2, 3), name="二月赢单")
    deal(org, rep, 5000, stage="lost", closed=dt.date(2026, 2, 10), loss_reason="quote_delay", name="报价晚了")
    r, _ = report_generate(actor=org.users["director"], start=dt.date(2026, 2, 1), as_of=dt.date(2026, 2, 28))
    return r


def test_report_page_links_causes_to_records(report, org, login):
    client = login(org.users["director"])
    html = client.get(f"/goals/reports/{report.pk}/").content.decode()
    assert "目标偏差分析报告" in html and "华东大区" in html and 'data-cause="quote_delay"' in html
    rows = report.data["rows"]
    idx = next(i for i, r in enumerate(rows) if r["kind"] == "rep")
    page = client.get(f"/goals/reports/{report.pk}/records?row={idx}&cause=quote_delay").content.decode()
    assert "报价晚了" in page and "二月赢单" not in page
    page = client.get(f"/goals/reports/{report.pk}/records?row={idx}&cause=actual").content.decode()
    assert "二月赢单" in page
    # A rep sees only their own row; another region's rows are 404.
    rep_html = login(org.users["rep.east1"]).get(f"/goals/reports/{report.pk}/").content.decode()
    assert "李明" in rep_html and "华南大区" not in rep_html
    south = next(i for i, r in enumerate(rows) if r["name"] == "华南大区")
    assert login(org.users["rep.east1"]).get(
        f"/goals/reports/{report.pk}/records?row={south}&cause=actual").status_code == 404


def test_report_excel_download(report, org, login):
    from openpyxl import load_workbook

    resp = login(org.users["director"]).get(f"/goals/reports/{report.pk}/excel")
    assert resp.status_code == 200
    ws = load_workbook(io.BytesIO(b"".join(resp.streaming_content))).active
    values = [[c for c in row] for row in ws.iter_rows(values_only=True)]
    assert values[0][:4] == ["层级", "名称", "所属组织", "目标"]
    rep_row = next(v for v in values if v[1] and "李明" in v[1])
    assert float(rep_row[4]) == 12345.0  # actual
    gap, causes, unexplained = float(rep_row[5]), rep_row[7:-1:2], float(rep_row[-1])
    assert abs(sum(float(c) for c in causes) + unexplained - gap) < 0.005


def test_report_pdf_renders_chinese(report, org, login):
    assert shutil.which("pdftotext"), "poppler-utils (pdftotext) is not installed"
    resp = login(org.users["director"]).get(f"/goals/reports/{report.pk}/pdf")
    assert resp.status_code == 200 and resp.content.startswith(b"%PDF")
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(resp.content)
        f.flush()
        text = subprocess.run(["pdftotext", "-layout", f.name, "-"], capture_output=True, check=True,
                              text=True).stdout
    assert "目标偏差分析报告" in text
    assert "华东大区" in text and "上海" in text and "报价延迟" in text
    assert "¥12,345.00" in text
