"""Large imports: streamed parsing, bounded memory, chunked queries, re-checks under the write lock."""

from __future__ import annotations

import datetime as dt
import io
import tracemalloc
import zipfile

import pytest
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from tuijin.core import audit
from tuijin.customers.models import Contact, Customer
from tuijin.customers.services import customer_create
from tuijin.integrations.excel import services
from tuijin.integrations.excel.parsing import ImportFileError, open_upload

from .helpers import HEADERS, credit_code, row, xlsx_bytes


def big_xlsx(rows: list[dict], headers: list[str] = HEADERS) -> bytes:
    return xlsx_bytes(rows, headers, write_only=True)


def test_ten_thousand_rows_with_a_few_bad_ones_lists_every_one_and_writes_nothing(org):
    actor = org.users["manager.east"]
    rows = [row(i) for i in range(1, 10_001)]
    rows[99]["手机"] = "12345"  # spreadsheet row 101
    rows[4_999]["状态"] = "未知状态"  # row 5001
    rows[9_998]["统一社会信用代码"] = credit_code(1)  # row 10000: same code as row 2
    rows[9_999]["负责人用户名"] = "nobody"  # row 10001
    data = big_xlsx(rows)
    customers, contacts, events = Customer.objects.count(), Contact.objects.count(), audit.AuditEvent.objects.count()

    with CaptureQueriesContext(connection) as queries:
        job = services.import_job_create(actor=actor, filename="big.xlsx", data=data)
    report = job.report
    assert (report["rows"], report["bad_rows"], report["good_rows"]) == (10_000, 4, 9_996)
    assert [(e["row"], e["column"]) for e in report["errors"]] == [
        (101, "手机"), (5001, "状态"), (10000, "统一社会信用代码"), (10001, "负责人用户名")]
    assert "第2行" in report["errors"][2]["message"] and "nobody" in report["errors"][3]["message"]
    # Duplicate lookups go by chunks of customers, not by row: a handful of queries for 10,000 rows.
    assert len(queries) < 50, len(queries)  # plus the job's own lifecycle (stored, claimed, validated)

    with pytest.raises(services.ValidationFailed):
        services.import_job_start(actor=actor, job=job)
    assert (Customer.objects.count(), Contact.objects.count()) == (customers, contacts)
    # Only the job's own events: stored ("create") and its dry run ("validate").
    assert audit.AuditEvent.objects.count() == events + 2


def test_dry_run_memory_stays_small_for_thousands_of_rows(org):
    actor = org.users["rep.east1"]
    data = big_xlsx([row(i) for i in range(1, 5_001)])
    tracemalloc.start()
    try:
        job = services.import_job_create(actor=actor, filename="big.xlsx", data=data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert job.report["create"] == 5_000 and not job.report["error_count"]
    # Holding every parsed row as dicts took ~5 KB a row (≈ 25 MB here); streamed and packed it is ~1 KB.
    assert peak < 12 * 1024 * 1024, peak


def test_bulk_import_through_the_job_writes_everything_in_one_go(org, monkeypatch):
    monkeypatch.setattr(services, "BULK_BATCH", 400)
    actor = org.users["rep.east1"]
    rows = [row(i) for i in range(1, 1_201)] + [row(7, 联系人姓名="赵二", 手机="13700000007")]
    job = services.import_job_create(actor=actor, filename="big.xlsx", data=big_xlsx(rows))
    job = services.import_job_start(actor=actor, job=job)
    assert (job.status, job.created_count, job.total_rows) == ("done", 1_200, 1_201), job.error
    c = Customer.objects.get(name=row(7)["客户名称*"])
    assert sorted(c.contacts.values_list("name", "is_primary")) == [("王7", True), ("赵二", False)]
    assert c.tags == ["三甲", "重点"] and c.size_band == "medium" and c.owner == actor
    assert audit.AuditEvent.objects.filter(object_type="customers.customer", action="create").count() >= 1_200
    assert audit.verify().ok


def test_database_changes_after_the_dry_run_are_checked_again_under_the_lock(org):
    actor = org.users["manager.east"]
    rows = [row(1), row(2, 负责人用户名="rep.east2"), row(3)]
    job = services.import_job_create(actor=actor, filename="x.xlsx", data=big_xlsx(rows))
    assert job.report["create"] == 3 and not job.report["error_count"]
    # Someone creates row 3's customer meanwhile: in skip mode the import skips it.
    customer_create(actor=actor, name=row(3)["客户名称*"])
    job = services.import_job_start(actor=actor, job=job)
    assert (job.status, job.created_count, job.skipped_count) == ("done", 2, 1), job.error

    # The owner named on row 2 leaves before the job runs: nothing is written, row 2 is named.
    job = services.import_job_create(actor=actor, filename="x.xlsx",
                                     data=big_xlsx([row(11), row(12, 负责人用户名="rep.east2")]))
    org.users["rep.east2"].__class__.objects.filter(pk=org.users["rep.east2"].pk).update(is_active=False)
    job = services.import_job_start(actor=actor, job=job)
    assert job.status == "failed" and "没有写入任何数据" in job.error
    assert [(e["row"], e["column"]) for e in job.report["errors"]] == [(3, "负责人用户名")]
    assert not Customer.objects.filter(name__in=[row(11)["客户名称*"], row(12)["客户名称*"]]).exists()


@override_settings(TUIJIN_IMPORT_MAX_ROWS=50)
def test_too_many_rows_is_a_clear_error_and_stores_nothing(org):
    job = services.import_job_create(actor=org.users["rep.east1"], filename="big.xlsx",
                                     data=big_xlsx([row(i) for i in range(1, 52)]))
    assert job.status == "failed" and "超过50行" in job.error and job.report == {}
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


def _workbook_bytes(rows, formats=None) -> bytes:
    """A real .xlsx written by openpyxl (shared strings, styles, content types as Excel has them)."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "客户"
    for r, values in rows.items():
        for c, value in enumerate(values, start=1):
            if value is not None:
                ws.cell(row=r, column=c, value=value)
    for ref, fmt in (formats or {}).items():
        ws[ref].number_format = fmt
    wb.create_sheet("说明")
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _rewrite(data: bytes, part: str, change) -> bytes:
    """The same package with one part's XML changed (a damaged file)."""
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for item in src.infolist():
            body = src.read(item.filename)
            zf.writestr(item, change(body.decode()) if item.filename == part else body)
    return out.getvalue()


def test_excel_numbers_dates_and_blank_rows_are_read_as_the_user_sees_them():
    data = _workbook_bytes({
        1: ["客户名称", "手机", None, "标签"],
        3: ["甲乙医院", 13912345678, None, dt.datetime(2023, 3, 15)],
        4: ["丙", "1.5E+3", None, dt.datetime(2023, 3, 16, 12)],
    }, formats={"D3": "yyyy/mm/dd", "D4": "yyyy-mm-dd hh:mm"})
    upload = open_upload("excel.xlsx", data)
    assert [c.key for _i, c, _t in upload.columns] == ["customer.name", "contact.mobile", "customer.tags"]
    assert list(upload.rows()) == [
        (3, {"customer.name": "甲乙医院", "contact.mobile": "13912345678", "customer.tags": "2023-03-15"}),
        (4, {"customer.name": "丙", "contact.mobile": "1.5E+3",
             "customer.tags": dt.datetime(2023, 3, 16, 12).isoformat(sep=" ")}),
    ]


def test_a_corrupt_sheet_is_a_clear_error():
    data = _workbook_bytes({1: ["客户名称"], 2: ["甲医院"], 3: ["乙医院"]})
    broken = _rewrite(data, "xl/worksheets/sheet1.xml", lambda xml: xml[: xml.index("<row r=\"3\"") + 12])
    with pytest.raises(ImportFileError, match="无法读取Excel文件"):
        list(open_upload("broken.xlsx", broken).rows())


def test_a_shared_string_index_out_of_range_is_a_clear_error():
    data = _workbook_bytes({1: ["客户名称"], 2: ["甲医院"]})
    # Make cell A2 a shared-string reference past the end of the (empty) table.
    broken = _rewrite(data, "xl/worksheets/sheet1.xml", lambda xml: xml.replace(
        '<c r="A2" t="inlineStr"><is><t>甲医院</t></is></c>', '<c r="A2" t="s"><v>7</v></c>'))
    assert broken != data
    with pytest.raises(ImportFileError, match="无法读取Excel文件"):
        list(open_upload("broken.xlsx", broken).rows())


def test_a_contact_number_already_in_the_database_is_a_duplicate_on_the_bulk_path_too(world, monkeypatch):
    # customer_create treats a new contact's number matching an existing contact as a duplicate;
    # the import's bulk path must find the same customers.
    monkeypatch.setattr(services, "BULK_MIN_CUSTOMERS", 1)
    actor = world.users["rep.east1"]
    existing = world.customers["rep.east1"].contacts.first()
    number = existing.mobile or existing.phone
    job = services.import_job_create(actor=actor, filename="x.xlsx",
                                     data=big_xlsx([row(1), row(2, 手机="", 座机=number)]))
    assert [(d["row"], d["action"]) for d in job.report["duplicates"]] == [(3, "skip")]
    job = services.import_job_start(actor=actor, job=job)
    assert (job.status, job.created_count, job.skipped_count) == ("done", 1, 1), job.error
    assert not Customer.objects.filter(name=row(2)["客户名称*"]).exists()
