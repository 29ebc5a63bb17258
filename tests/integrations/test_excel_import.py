"""Customer import from .xlsx/.csv: dry run report, all-or-nothing import, duplicates, progress."""

from __future__ import annotations

import io

import openpyxl
import pytest
from django.test import override_settings
from django.utils import timezone

from tuijin.core import audit
from tuijin.core.models import AuditEvent
from tuijin.customers import services as customer_services
from tuijin.customers.models import Contact, Customer
from tuijin.integrations.excel.models import ImportJob

from .helpers import HEADERS, credit_code, csv_bytes, response_bytes, row, upload, xlsx_bytes


def _job(resp) -> ImportJob:
    assert resp.status_code == 302, resp.content.decode()[:2000]
    return ImportJob.objects.get(pk=int(resp["Location"].rstrip("/").split("/")[-1]))


def _start(client, job) -> ImportJob:
    resp = client.post(f"/import/jobs/{job.pk}/start")
    assert resp.status_code == 302
    job.refresh_from_db()
    return job


def _bad_file_rows():
    rows = [row(i) for i in range(1, 51)]
    rows.insert(10, row(101, 手机="12345"))  # spreadsheet row 12
    rows.insert(20, row(102, 状态="未知状态"))  # row 22
    bad_code = credit_code(103)[:-1] + ("0" if credit_code(103)[-1] != "0" else "1")
    rows.insert(30, row(103, 统一社会信用代码=bad_code))  # row 32
    return rows


def test_bad_rows_import_nothing_and_fixed_file_imports_all(org, login):
    manager = org.users["manager.east"]
    client = login(manager)
    before = Customer.objects.count()

    job = _job(upload(client, xlsx_bytes(_bad_file_rows())))
    report = job.report
    assert job.status == "validated"
    assert report["rows"] == 53 and report["bad_rows"] == 3 and report["good_rows"] == 50
    where = {(e["row"], e["column"]) for e in report["errors"]}
    assert where == {(12, "手机"), (22, "状态"), (32, "统一社会信用代码")}
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert "import-errors" in page and "disabled" in page and "未知状态" in page
    # Starting anyway is refused and writes nothing.
    assert _start(client, job).status == "validated"
    assert Customer.objects.count() == before

    fixed = _bad_file_rows()
    fixed[10]["手机"] = "13900000101"
    fixed[20]["状态"] = "lead"
    fixed[30]["统一社会信用代码"] = credit_code(103)
    for r in fixed[:5]:
        r["负责人用户名"] = "rep.east2"
    job = _job(upload(client, xlsx_bytes(fixed)))
    assert job.report["error_count"] == 0 and job.report["create"] == 53
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert "导入53个客户" in page
    job = _start(client, job)
    assert job.status == "done", job.error
    assert (job.created_count, job.updated_count, job.skipped_count) == (53, 0, 0)

    imported = Customer.objects.filter(name__startswith="导入测试")
    assert imported.count() == 53
    assert Contact.objects.filter(customer__in=imported).count() == 53
    owners = {c.name: c.owner.username for c in imported}
    assert owners[fixed[0]["客户名称*"]] == "rep.east2"
    assert owners[fixed[6]["客户名称*"]] == "manager.east"
    c = imported.get(name=row(102)["客户名称*"])
    assert c.status == "lead" and c.size_band == "medium" and c.source == "exhibition" and c.tags == ["三甲", "重点"]
    assert c.contacts.get().decision_role == "decision_maker" and c.contacts.get().is_primary
    events = AuditEvent.objects.filter(object_type="customers.customer", action="create",
                                       object_id__in=[str(pk) for pk in imported.values_list("pk", flat=True)])
    assert events.count() == 53 and all(e.actor_id == manager.pk for e in events)
    assert AuditEvent.objects.filter(object_type="excel.importjob", action="import", object_id=str(job.pk)).exists()
    assert audit.verify().ok


def test_rows_with_same_customer_name_are_one_customer_with_several_contacts(org, login):
    client = login(org.users["rep.east1"])
    rows = [
        row(1),
        {"客户名称*": "导入测试1号医疗科技（股份）有限公司", "联系人姓名": "赵二", "手机": "13700000002"},
        row(1, 联系人姓名="钱三", 手机="13700000003", 决策角色="influencer"),
        row(2),
    ]
    job = _start(client, _job(upload(client, xlsx_bytes(rows))))
    assert job.status == "done", job.error
    c = Customer.objects.get(name=row(1)["客户名称*"])
    assert sorted(c.contacts.values_list("name", flat=True)) == sorted(["王1", "赵二", "钱三"])
    assert c.contacts.filter(is_primary=True).count() == 1
    assert Customer.objects.filter(name__startswith="导入测试").count() == 2


def test_same_name_with_contradicting_fields_is_an_error(org, login):
    client = login(org.users["rep.east1"])
    rows = [row(1), row(1, 城市="杭州", 联系人姓名="赵二", 手机="13700000002")]
    job = _job(upload(client, xlsx_bytes(rows)))
    assert [(e["row"], e["column"]) for e in job.report["errors"]] == [(3, "城市")]
    assert "第2行" in job.report["errors"][0]["message"]


def test_duplicates_inside_the_file_by_phone_and_credit_code(org, login):
    client = login(org.users["rep.east1"])
    rows = [row(1), row(2, 电话=row(1)["电话"]), row(3, 统一社会信用代码=credit_code(1))]
    job = _job(upload(client, xlsx_bytes(rows)))
    assert {(e["row"], e["column"]) for e in job.report["errors"]} == {(3, "电话"), (4, "统一社会信用代码")}


def test_owner_must_exist_and_be_visible(org, login):
    client = login(org.users["rep.east1"])
    rows = [row(1, 负责人用户名="rep.south1"), row(2, 负责人用户名="nobody"), row(3, 负责人用户名="rep.east1")]
    job = _job(upload(client, xlsx_bytes(rows)))
    assert {(e["row"], e["column"]) for e in job.report["errors"]} == {(2, "负责人用户名"), (3, "负责人用户名")}


def _existing_rows(world):
    mine = world.customers["rep.east1"]
    return mine, [
        {"客户名称*": mine.name, "城市": "苏州", "地址": "新地址1号", "联系人姓名": "新联系人", "手机": "13600000001"},
        row(1),
    ]


def test_duplicates_against_database_skip(world, login):
    client = login(world.users["rep.east1"])
    mine, rows = _existing_rows(world)
    job = _job(upload(client, xlsx_bytes(rows), dup_mode="skip"))
    assert job.report["error_count"] == 0
    assert [(d["row"], d["action"]) for d in job.report["duplicates"]] == [(2, "skip")]
    assert "客户名称" in job.report["duplicates"][0]["matched"]
    job = _start(client, job)
    assert (job.status, job.created_count, job.skipped_count) == ("done", 1, 1)
    mine.refresh_from_db()
    assert mine.city != "苏州" and mine.contacts.count() == 1


def test_duplicates_against_database_update_overwrites_non_empty_fields(world, login):
    client = login(world.users["rep.east1"])
    mine, rows = _existing_rows(world)
    old_phone, old_region = mine.phone, mine.region
    job = _start(client, _job(upload(client, xlsx_bytes(rows), dup_mode="update")))
    assert (job.status, job.created_count, job.updated_count) == ("done", 1, 1), job.error
    mine.refresh_from_db()
    assert (mine.city, mine.address, mine.phone, mine.region) == ("苏州", "新地址1号", old_phone, old_region)
    assert mine.contacts.filter(name="新联系人").exists() and mine.contacts.count() == 2
    assert AuditEvent.objects.filter(object_type="customers.customer", object_id=str(mine.pk), action="update").exists()
    assert audit.verify().ok


def test_update_of_another_reps_customer_is_refused_naming_the_owner_only(world, login):
    client = login(world.users["rep.east1"])
    theirs = world.customers["rep.east2"]
    # Matched by phone only: the importer must not learn the existing customer's name or contacts.
    rows = [row(1, 电话=theirs.phone)]
    job = _job(upload(client, xlsx_bytes(rows), dup_mode="update"))
    [error] = job.report["errors"]
    assert (error["row"], error["column"]) == (2, "客户名称")
    assert world.users["rep.east2"].label in error["message"]
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert theirs.name not in page and "联系人1" not in page and "13800000001" not in page
    assert _start(client, job).status == "validated"
    assert not Customer.objects.filter(name=row(1)["客户名称*"]).exists()
    # Two rows updating the same existing customer are refused too.
    mine = world.customers["rep.east1"]
    job = _job(upload(client, xlsx_bytes([{"客户名称*": mine.name}, row(2, 电话=mine.phone)]), dup_mode="update"))
    assert [(e["row"], "第2行" in e["message"]) for e in job.report["errors"]] == [(3, True)]
    # In skip mode the same row is simply skipped.
    job = _start(client, _job(upload(client, xlsx_bytes(rows), dup_mode="skip")))
    assert (job.status, job.skipped_count) == ("done", 1)


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_in_gbk_and_utf8_with_bom(org, login, encoding):
    client = login(org.users["rep.east1"])
    job = _start(client, _job(upload(client, csv_bytes([row(1), row(2)], encoding=encoding), name="客户.csv")))
    assert job.status == "done", job.error
    c = Customer.objects.get(name=row(1)["客户名称*"])
    assert c.city == "上海" and c.contacts.get().name == "王1"


def test_english_headers_are_accepted(org, login):
    client = login(org.users["rep.east1"])
    headers = ["Customer Name", "Credit Code", "Size", "Status", "Contact Name", "Mobile", "Decision Role"]
    data = [{"Customer Name": "Acme Medical Co., Ltd.", "Credit Code": credit_code(7), "Size": "large",
             "Status": "active", "Contact Name": "John", "Mobile": "13900000007", "Decision Role": "user"}]
    job = _start(client, _job(upload(client, xlsx_bytes(data, headers=headers))))
    assert job.status == "done", job.error
    c = Customer.objects.get(name="Acme Medical Co., Ltd.")
    assert c.size_band == "large" and c.contacts.get().decision_role == "user"


def _refused(resp) -> str:
    assert resp.status_code == 200
    assert not ImportJob.objects.exists()
    return resp.content.decode()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "文件是空的"),
        ("notes.pdf", b"%PDF-1.4 binary", "只支持"),
        ("fake.xlsx", b"this is not a zip file at all", "不是有效的Excel"),
    ],
)
def test_files_refused_without_parsing_get_a_form_error_and_store_nothing(org, login, name, content, message):
    client = login(org.users["rep.east1"])
    before = Customer.objects.count()
    page = _refused(upload(client, content, name=name))
    assert message in page
    assert Customer.objects.count() == before


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("wrong.xlsx", xlsx_bytes([{"公司": "x"}], headers=["公司", "电话号码"]), "缺少必填列"),
        ("header-only.csv", "客户名称\n".encode(), "没有数据行"),
        ("binary.csv", b"\x00\x01\x02\xff\xfe" * 20, "编码"),
    ],
)
def test_files_unusable_once_parsed_fail_their_dry_run_and_write_nothing(org, login, name, content, message):
    """Parsing runs in the worker: the job page shows the file's error; no customer is written."""
    client = login(org.users["rep.east1"])
    before = Customer.objects.count()
    job = _job(upload(client, content, name=name))
    assert job.status == "failed" and message in job.error
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert message in page and "hx-trigger" not in page
    assert Customer.objects.count() == before


@override_settings(TUIJIN_IMPORT_MAX_BYTES=1000)
def test_oversized_file_is_refused(org, login):
    client = login(org.users["rep.east1"])
    page = _refused(upload(client, xlsx_bytes([row(i) for i in range(30)])))
    assert "文件太大" in page and "1000 B" in page
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


def test_failure_discovered_late_leaves_no_customers(org, login, monkeypatch):
    client = login(org.users["rep.east1"])
    job = _job(upload(client, xlsx_bytes([row(i) for i in range(1, 51)])))
    assert job.report["error_count"] == 0
    real, calls = customer_services.customer_create, []

    def flaky(**kwargs):
        calls.append(kwargs["name"])
        if len(calls) == 40:
            raise customer_services.ValidationFailed({"phone": "数据库里刚刚出现了同号码的客户"})
        return real(**kwargs)

    monkeypatch.setattr(customer_services, "customer_create", flaky)
    before_events = AuditEvent.objects.count()
    job = _start(client, job)
    assert job.status == "failed" and "没有写入任何数据" in job.error
    assert [(e["row"], e["column"]) for e in job.report["errors"]] == [(41, "电话")]
    assert not Customer.objects.filter(name__startswith="导入测试").exists()
    assert not Contact.objects.filter(name="王1").exists()
    # Only the job's own start/failure events remain; the 39 customers' events were rolled back.
    assert AuditEvent.objects.count() == before_events + 2
    assert audit.verify().ok
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert "没有写入任何数据" in page and "hx-trigger" not in page


def test_unexpected_exception_also_rolls_back(org, login, monkeypatch):
    client = login(org.users["rep.east1"])
    job = _job(upload(client, xlsx_bytes([row(i) for i in range(1, 6)])))
    real, calls = customer_services.customer_create, []

    def boom(**kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(customer_services, "customer_create", boom)
    job = _start(client, job)
    assert job.status == "failed" and "disk full" not in job.error
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


def test_progress_reaches_done_and_partial_shows_100_percent(org, login):
    client = login(org.users["rep.east1"])
    job = _job(upload(client, xlsx_bytes([row(i) for i in range(1, 21)])))
    running = client.get(f"/import/jobs/{job.pk}/progress").content.decode()
    assert "0%" in running
    job = _start(client, job)
    assert job.status == "done" and job.finished_at and job.started_at
    partial = client.get(f"/import/jobs/{job.pk}/progress").content.decode()
    assert "100%" in partial and "20 / 20" in partial
    assert "hx-trigger" not in partial  # polling stops once the job is finished
    assert "导入完成" in partial and 'href="/customers/"' in partial


def test_progress_partial_polls_while_queued(org, login):
    client = login(org.users["rep.east1"])
    job = _job(upload(client, xlsx_bytes([row(1)])))
    ImportJob.objects.filter(pk=job.pk).update(status="running", heartbeat_at=timezone.now())
    partial = client.get(f"/import/jobs/{job.pk}/progress").content.decode()
    assert 'hx-trigger="every 1s"' in partial and "progress-bar" in partial


def test_only_the_creator_sees_the_job(org, login):
    job = _job(upload(login(org.users["rep.east1"]), xlsx_bytes([row(1)])))
    for username in ("rep.east2", "manager.east", "admin"):
        other = login(org.users[username])
        assert other.get(f"/import/jobs/{job.pk}/").status_code == 404
        assert other.get(f"/import/jobs/{job.pk}/progress").status_code == 404
        assert other.post(f"/import/jobs/{job.pk}/start").status_code == 404
    job.refresh_from_db()
    assert job.status == "validated"


@pytest.mark.parametrize("username", ["finance", "legal", "presales", "delivery"])
def test_cross_role_staff_cannot_import(org, login, username):
    client = login(org.users[username])
    assert client.get("/import/customers/").status_code == 403
    assert upload(client, xlsx_bytes([row(1)])).status_code == 403
    assert not ImportJob.objects.exists()


def test_template_downloads_and_reimports(org, login):
    client = login(org.users["manager.east"])
    resp = client.get("/import/customers/template.xlsx")
    assert resp.status_code == 200 and resp["Content-Type"].startswith("application/vnd.openxmlformats")
    wb = openpyxl.load_workbook(io.BytesIO(response_bytes(resp)))
    ws, notes = wb.worksheets
    assert [c.value for c in ws[1]] == HEADERS
    assert notes.title == "说明"
    notes_text = " ".join(str(c.value) for r in notes.iter_rows() for c in r if c.value)
    assert "中型(100-499人)" in notes_text and "medium" in notes_text and "decision_maker" in notes_text
    for i, n in enumerate((1, 2), start=2):
        r = row(n, 负责人用户名="rep.east1")
        for col, header in enumerate(HEADERS, start=1):
            ws.cell(row=i, column=col, value=r[header])
    ws.cell(row=2, column=HEADERS.index("手机") + 1, value=13912345678)  # typed as a number in Excel
    buf = io.BytesIO()
    wb.save(buf)
    job = _start(client, _job(upload(client, buf.getvalue(), name="客户导入模板.xlsx")))
    assert job.status == "done", (job.error, job.report.get("errors"))
    assert Customer.objects.filter(name__startswith="导入测试", owner=org.users["rep.east1"]).count() == 2
    assert Contact.objects.filter(mobile="13912345678").exists()


def test_upload_page_renders_with_template_link(org, login):
    page = login(org.users["rep.east1"]).get("/import/customers/").content.decode()
    assert "/import/customers/template.xlsx" in page and 'type="file"' in page


def test_large_files_use_bulk_writes_with_the_same_audit_trail(org, login, monkeypatch):
    from tuijin.integrations.excel import services as excel_services

    client = login(org.users["rep.east1"])
    # Row-by-row through customer_create (below the bulk threshold)...
    job = _start(client, _job(upload(client, xlsx_bytes([row(1), row(1, 联系人姓名="赵二", 手机="13700000002")]))))
    assert job.status == "done"
    per_row = Customer.objects.get(name=row(1)["客户名称*"])
    # ...and in bulk batches.
    monkeypatch.setattr(excel_services, "BULK_MIN_CUSTOMERS", 1)
    monkeypatch.setattr(excel_services, "BULK_BATCH", 7)
    rows = [row(i) for i in range(2, 22)] + [row(2, 联系人姓名="赵二", 手机="13700000003")]
    job = _start(client, _job(upload(client, xlsx_bytes(rows))))
    assert (job.status, job.created_count) == ("done", 20), job.error
    bulk = Customer.objects.get(name=row(2)["客户名称*"])
    assert bulk.contacts.count() == 2 and bulk.contacts.filter(is_primary=True).count() == 1
    assert bulk.name_normalized and bulk.phone_normalized and bulk.contacts.get(name="王2").phone_normalized

    def events(customer):
        contact_ids = [str(pk) for pk in customer.contacts.values_list("pk", flat=True)]
        out = [AuditEvent.objects.get(object_type="customers.customer", object_id=str(customer.pk))]
        out += list(AuditEvent.objects.filter(object_type="customers.contact", object_id__in=contact_ids).order_by("seq"))
        return out

    def shape(evs):
        return [(e.action, e.actor_id, sorted(e.changes)) for e in evs]

    assert shape(events(bulk)) == shape(events(per_row))
    assert events(bulk)[1].changes["customer"] == [None, bulk.pk]
    assert audit.verify().ok


def test_failure_in_a_late_bulk_batch_leaves_no_customers(org, login, monkeypatch):
    from tuijin.integrations.excel import services as excel_services

    monkeypatch.setattr(excel_services, "BULK_MIN_CUSTOMERS", 1)
    monkeypatch.setattr(excel_services, "BULK_BATCH", 10)
    real, calls = excel_services._create_batch, []

    def flaky(**kwargs):
        calls.append(1)
        real(**kwargs)
        if len(calls) == 4:  # rows 32-41: the batch holding row 40
            raise RuntimeError("database went away")

    monkeypatch.setattr(excel_services, "_create_batch", flaky)
    client = login(org.users["rep.east1"])
    job = _start(client, _job(upload(client, xlsx_bytes([row(i) for i in range(1, 51)]))))
    assert job.status == "failed" and len(calls) == 4
    assert not Customer.objects.filter(name__startswith="导入测试").exists()
    assert audit.verify().ok
