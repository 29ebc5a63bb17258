"""Bad input gets a clear 4xx and changes nothing: malformed, oversized and hostile JSON bodies,
out-of-range numbers, and spreadsheet files the import tests (tests/integrations) do not cover yet:
a 10,000-row GBK CSV with a few bad rows, and a file over the real default size limit."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from tests.integrations.helpers import csv_bytes, row, upload
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Customer
from tuijin.integrations.excel.models import ImportJob


def _post(client, url, body: bytes, content_type="application/json"):
    return client.generic("POST", url, body, content_type=content_type)


def _nothing_written(before_customers, before_events):
    assert Customer.objects.count() == before_customers
    assert AuditEvent.objects.count() == before_events


BAD_BODIES = [
    ("truncated", '{"name": "半截客户'.encode()),
    ("not json", b"name=abc&industry=x"),
    ("a list", b'[{"name": "x"}]'),
    ("a string", b'"just a string"'),
    ("null", b"null"),
    ("invalid utf-8", b'{"name": "\xff\xfe\xfa"}'),
    ("deeply nested", b'{"name": "x", "tags": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    ("wrong types", json.dumps({"name": ["a"], "tags": "x", "contacts": {"a": 1}}).encode()),
    ("huge integer", json.dumps({"name": "大数客户", "owner_id": 10**30}).encode()),
    ("NUL byte", json.dumps({"name": "空\x00字符客户"}).encode()),
    ("lone surrogate", b'{"name": "a\\ud800b"}'),
    ("lone low surrogate in a list", b'{"name": "x", "tags": ["\\udfff"]}'),
    ("name far too long", json.dumps({"name": "长" * 5000}).encode()),
]


@pytest.mark.parametrize(("label", "body"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_json_bodies_are_4xx_and_write_nothing(world, api_client, label, body):
    client = api_client(world.users["rep.east1"])
    before = Customer.objects.count(), AuditEvent.objects.count()
    resp = _post(client, "/api/customers", body)
    assert 400 <= resp.status_code < 500, (label, resp.status_code, resp.content[:300])
    _nothing_written(*before)


def test_lone_surrogate_in_a_json_body_is_a_400_naming_the_body(world, api_client):
    # JSON's \ud800 escape decodes to a lone surrogate that neither database can store: was a 500.
    client = api_client(world.users["rep.east1"])
    before = Customer.objects.count(), AuditEvent.objects.count()
    resp = _post(client, "/api/customers", b'{"name": "\xe5\xae\xa2\\ud800\xe6\x88\xb7"}')
    assert resp.status_code == 400, resp.content[:300]
    detail = resp.json()["detail"]
    assert detail[0]["loc"] == ["body"] and "surrogate" in detail[0]["msg"]
    _nothing_written(*before)
    # A proper surrogate pair (an emoji written as \ud83d\ude80) is ordinary text.
    resp = _post(client, "/api/customers", b'{"name": "\\ud83d\\ude80 \xe5\xae\xa2\xe6\x88\xb7"}')
    assert resp.status_code == 201, resp.content[:300]
    assert Customer.objects.filter(name="\U0001F680 客户").exists()


def test_wrong_content_type_is_4xx(world, api_client):
    client = api_client(world.users["rep.east1"])
    before = Customer.objects.count(), AuditEvent.objects.count()
    resp = _post(client, "/api/customers", b"<customer><name>x</name></customer>", content_type="application/xml")
    assert 400 <= resp.status_code < 500
    _nothing_written(*before)


def test_oversized_json_body_is_refused_with_400(world, api_client):
    client = api_client(world.users["rep.east1"])
    before = Customer.objects.count(), AuditEvent.objects.count()
    notes = "备" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 3 + 10)  # 3 bytes each in UTF-8: just over the limit
    resp = _post(client, "/api/customers", json.dumps({"name": "超大请求客户", "notes": notes}, ensure_ascii=False)
                 .encode())
    assert resp.status_code == 400
    _nothing_written(*before)


@pytest.mark.parametrize("url", [
    "/api/customers/99999999999999999999999",
    "/api/opportunities/99999999999999999999999/history",
    "/api/customers?page=99999999999999999999999",
    "/api/opportunities?customer_id=99999999999999999999999",
    "/api/activities?owner_id=-99999999999999999999999",
])
def test_out_of_range_numbers_in_urls_are_not_server_errors(world, api_client, url):
    resp = api_client(world.users["manager.east"]).get(url)
    # A record that cannot exist is 404/422; a list filtered by it (or paged past its end) is simply empty.
    assert resp.status_code in (200, 404, 422), (url, resp.status_code, resp.content[:300])
    if resp.status_code == 200:
        assert resp.json()["items"] == []


def test_patch_with_out_of_range_version_changes_nothing(world, api_client):
    client = api_client(world.users["rep.east1"])
    opp = world.opps["rep.east1"]
    before = AuditEvent.objects.count()
    resp = client.patch(f"/api/opportunities/{opp.pk}", {"version": 10**30, "amount": "1"},
                        content_type="application/json")
    assert 400 <= resp.status_code < 500
    opp.refresh_from_db()
    assert str(opp.amount) != "1.00" and AuditEvent.objects.count() == before


def _gbk_rows(n: int, bad: dict[int, dict]) -> bytes:
    rows = [row(i, **bad.get(i, {})) for i in range(1, n + 1)]
    return csv_bytes(rows, encoding="gbk")


def test_gbk_csv_of_10000_rows_with_a_few_bad_ones_names_exactly_those_rows_and_imports_nothing(org, login):
    client = login(org.users["rep.east1"])
    # Spreadsheet row = index + 1 (row 1 is the header).
    bad = {
        1500: {"手机": "12345"},
        4200: {"状态": "未知状态"},
        9999: {"统一社会信用代码": "91310000ABCDEFGHIJ"},
    }
    resp = upload(client, _gbk_rows(10_000, bad), name="客户-GBK.csv")
    assert resp.status_code == 302, resp.content.decode()[:1000]
    job = ImportJob.objects.get()
    assert job.total_rows == 10_000
    assert job.report["bad_rows"] == 3 and job.report["good_rows"] == 9_997
    assert sorted({e["row"] for e in job.report["errors"]}) == [1501, 4201, 10000]
    # The Chinese text survived GBK decoding: the report names columns in Chinese.
    assert {e["column"] for e in job.report["errors"]} >= {"手机", "状态"}
    # A file with errors cannot be started, and the dry run wrote no customers.
    start = client.post(f"/import/jobs/{job.pk}/start")
    assert start.status_code in (200, 302, 422)
    job.refresh_from_db()
    assert job.status == ImportJob.Status.VALIDATED
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


def test_file_over_the_default_size_limit_is_refused_without_a_job(org, login):
    client = login(org.users["rep.east1"])
    limit = settings.TUIJIN_IMPORT_MAX_BYTES
    assert limit == 50 * 1024 * 1024  # the shipped default, not a test override
    header = "客户名称*,电话\n".encode()
    line = "巨大文件客户,021-12345678\n".encode()
    data = header + line * ((limit - len(header)) // len(line) + 100)
    assert len(data) > limit
    resp = upload(client, data, name="huge.csv")
    assert resp.status_code == 200
    assert "文件太大" in resp.content.decode()
    assert not ImportJob.objects.exists()
    assert not Customer.objects.filter(name="巨大文件客户").exists()
