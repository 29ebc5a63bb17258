"""Excel export of customers, opportunities and activities: same visibility and filters as the lists."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal

import openpyxl
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.customers.services import customer_create
from tuijin.followups.services import activity_create
from tuijin.integrations.excel import exporting
from tuijin.integrations.excel.services import xlsx_response
from tuijin.pipeline.services import opportunity_create

from .helpers import response_bytes


def _rows(resp) -> list[list]:
    assert resp.status_code == 200, resp.content[:500]
    assert resp["Content-Type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert "attachment" in resp["Content-Disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response_bytes(resp)))
    return [[c.value for c in r] for r in wb.worksheets[0].iter_rows()]


def _names(rows, column=0) -> set:
    return {r[column] for r in rows[1:]}


def test_rep_exports_only_own_customers(world, login):
    rows = _rows(login(world.users["rep.east1"]).get("/export/customers.xlsx"))
    assert rows[0][:3] == ["客户名称", "统一社会信用代码", "行业"]
    assert _names(rows) == {world.customers["rep.east1"].name}


def test_manager_export_contains_team_but_not_other_region(world, login):
    names = _names(_rows(login(world.users["manager.east"]).get("/export/customers.xlsx")))
    assert world.customers["rep.east2"].name in names
    assert world.customers["manager.east"].name in names
    assert world.customers["rep.south1"].name not in names


def test_customer_export_applies_the_list_filters(world, login):
    client = login(world.users["manager.east"])
    east2 = world.users["rep.east2"]
    assert _names(_rows(client.get("/export/customers.xlsx", {"owner_id": east2.pk}))) == {
        world.customers["rep.east2"].name
    }
    assert _names(_rows(client.get("/export/customers.xlsx", {"q": "测试客户0号"}))) == {
        world.customers["rep.east1"].name
    }
    assert _names(_rows(client.get("/export/customers.xlsx", {"scope": "mine"}))) == {
        world.customers["manager.east"].name
    }
    assert _rows(client.get("/export/customers.xlsx", {"status": "churned"}))[1:] == []
    # A garbage id is a 400 naming the parameter, as on the list page (core.params), not a server error.
    bad = client.get("/export/customers.xlsx", {"owner_id": "abc"})
    assert bad.status_code == 400 and "owner_id" in bad.content.decode()


def test_customer_export_values(world, login):
    rows = _rows(login(world.users["rep.east1"]).get("/export/customers.xlsx"))
    header, first = rows[0], rows[1]
    record = dict(zip(header, first, strict=True))
    assert record["负责人用户名"] == "rep.east1" and record["负责人"] == world.users["rep.east1"].label
    assert record["状态"] == "活跃"
    assert isinstance(record["创建时间"], dt.datetime)


def test_opportunity_export_amounts_are_numbers_and_dates_are_dates(world, login):
    rows = _rows(login(world.users["manager.east"]).get("/export/opportunities.xlsx"))
    header = rows[0]
    assert header[:2] == ["商机名称", "客户名称"]
    names = _names(rows)
    assert world.opps["rep.east2"].name in names and world.opps["rep.south1"].name not in names
    record = dict(zip(header, rows[1], strict=True))
    assert record["金额"] == 100000 and isinstance(record["金额"], (int, float))
    assert record["预计成交日期"].date() == dt.date(2027, 3, 1)  # openpyxl reads dates back as datetimes


def test_opportunity_export_filters(world, login):
    client = login(world.users["director"])
    cust = world.customers["rep.south1"]
    assert _names(_rows(client.get("/export/opportunities.xlsx", {"customer_id": cust.pk}))) == {
        world.opps["rep.south1"].name
    }
    assert _rows(client.get("/export/opportunities.xlsx", {"status": "won"}))[1:] == []


def test_activity_export_visibility_and_filters(world, login):
    client = login(world.users["rep.east1"])
    rows = _rows(client.get("/export/activities.xlsx"))
    assert len(rows) == 2 and rows[1][2] == world.customers["rep.east1"].name
    assert isinstance(rows[1][0], dt.datetime) and rows[1][1] == "拜访"
    assert _rows(client.get("/export/activities.xlsx", {"kind": "call"}))[1:] == []
    mgr = _rows(login(world.users["manager.east"]).get("/export/activities.xlsx"))
    assert {r[2] for r in mgr[1:]} == {world.customers[u].name for u in ("rep.east1", "rep.east2", "manager.east")}


def test_english_headers_when_language_is_english(world, login):
    user = world.users["rep.east1"]
    user.language = "en"
    user.save(update_fields=["language"])
    rows = _rows(login(user).get("/export/customers.xlsx"))
    assert rows[0][0] == "customer name" and rows[0][11] == "owner username"
    assert _rows(login(user).get("/export/opportunities.xlsx"))[0][0] == "opportunity"


def _grow(world, n: int) -> None:
    rep = world.users["rep.east1"]
    for i in range(n):
        c = customer_create(actor=rep, name=f"批量客户{n}-{i}号", phone=f"0571-8{n:02d}{i:05d}",
                            contacts=[{"name": f"联系人{i}"}])
        o = opportunity_create(actor=rep, customer=c, name=f"商机{i}", amount="1234.50",
                               expected_close_date=dt.date(2027, 1, 1))
        activity_create(actor=rep, customer=c, opportunity=o, kind="call", subject="电话")


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
        response_bytes(resp)
    return len(ctx.captured_queries)


def test_export_query_count_does_not_grow_with_rows(world, login):
    client = login(world.users["rep.east1"])
    _grow(world, 2)  # 3 visible rows of each kind
    small = {u: _count_queries(client, u) for u in
             ("/export/customers.xlsx", "/export/opportunities.xlsx", "/export/activities.xlsx")}
    _grow(world, 27)  # 30
    assert len(_rows(client.get("/export/customers.xlsx"))) == 31
    large = {u: _count_queries(client, u) for u in small}
    assert large == small


def test_row_cap_is_stated_in_the_file(world, login, monkeypatch):
    monkeypatch.setattr(exporting, "EXPORT_MAX_ROWS", 2)
    rows = _rows(login(world.users["director"]).get("/export/customers.xlsx"))
    assert len(rows) == 4  # header, 2 rows, the note
    assert "上限2行" in rows[3][0]


def test_xlsx_response_is_reusable(rf=None):
    resp = xlsx_response("报表.xlsx", ["名称", "金额", "日期"], iter([["甲", Decimal("12.50"), dt.date(2026, 1, 2)]]))
    rows = _rows(resp)
    assert rows == [["名称", "金额", "日期"], ["甲", 12.5, dt.datetime(2026, 1, 2)]]
    assert "filename*=utf-8''%E6%8A%A5%E8%A1%A8.xlsx" in resp["Content-Disposition"]


def test_text_that_looks_like_a_formula_is_exported_as_text(world, login):
    rep = world.users["rep.east1"]
    customer_create(actor=rep, name='=HYPERLINK("http://evil.example","点我")', phone="021-77776666")
    resp = login(rep).get("/export/customers.xlsx")
    wb = openpyxl.load_workbook(io.BytesIO(response_bytes(resp)))
    cells = [r[0] for r in wb.worksheets[0].iter_rows(min_row=2)]
    evil = next(c for c in cells if str(c.value).startswith("=HYPERLINK"))
    assert evil.data_type == "s"
