"""Decompression bombs and oversized content: refused before any parser runs, nothing stored or written.

The bomb files are made here: an entry that declares a huge unpacked size, a shared string of tens of
MB of one repeated character (a few KB compressed), too many shared strings, a parsed-whole part that
is too big, too many entries, and cells, rows and CSV lines past their caps. "Before parsing" is
measured: openpyxl.load_workbook is never called, and tracemalloc's peak stays far below the unpacked size.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

import openpyxl
import pytest
from django.test import override_settings

from tuijin.customers.models import Customer
from tuijin.integrations.excel import services
from tuijin.integrations.excel.models import ImportJob
from tuijin.integrations.excel.parsing import ImportFileError, check_upload, open_upload

from .helpers import HEADERS, csv_bytes, row, upload, xlsx_bytes

MB = 1024 * 1024
SST_HEAD = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">')


def _rewrite(data: bytes, changes: dict) -> bytes:
    src, out = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in src.infolist():
            body = src.read(item.filename)
            zf.writestr(item, changes.pop(item.filename)(body) if item.filename in changes else body)
        for name, make in changes.items():
            zf.writestr(name, make(b""))
    return out.getvalue()


def _base() -> bytes:
    """A real workbook whose cells are shared strings, as Excel writes them (openpyxl writes inline strings)."""
    wb = openpyxl.Workbook()
    wb.active.append(["客户名称"])
    wb.active.append(["甲医院"])
    buf = io.BytesIO()
    wb.save(buf)
    ct = b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml" />'
    rel = (b'<Relationship Id="rIdS" Target="sharedStrings.xml" '
           b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" />')
    data = _rewrite(buf.getvalue(), {
        "[Content_Types].xml": lambda b: b.replace(b"</Types>", ct + b"</Types>"),
        "xl/_rels/workbook.xml.rels": lambda b: b.replace(b"</Relationships>", rel + b"</Relationships>"),
        "xl/worksheets/sheet1.xml": lambda b: b.replace(
            '<c r="A1" t="inlineStr"><is><t>客户名称</t></is></c>'.encode(), b'<c r="A1" t="s"><v>0</v></c>').replace(
            '<c r="A2" t="inlineStr"><is><t>甲医院</t></is></c>'.encode(), b'<c r="A2" t="s"><v>1</v></c>'),
        "xl/sharedStrings.xml": lambda _b: SST_HEAD + "<si><t>客户名称</t></si><si><t>甲医院</t></si></sst>".encode(),
    })
    return data


def test_the_base_workbook_reads_through_its_shared_strings():
    assert list(open_upload("base.xlsx", _base()).rows()) == [(2, {"customer.name": "甲医院"})]


def _with_part(name: str, pieces, *, base: bytes | None = None, method=zipfile.ZIP_DEFLATED) -> bytes:
    """The base package with part `name` replaced by the streamed pieces (never held whole in memory)."""
    src, out = zipfile.ZipFile(io.BytesIO(base or _base())), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in src.infolist():
            if item.filename != name:
                zf.writestr(item, src.read(item.filename))
        info = zipfile.ZipInfo(name)
        info.compress_type = method
        with zf.open(info, "w", force_zip64=True) as dst:
            for piece in pieces:
                dst.write(piece)
    return out.getvalue()


def _repeated(byte: bytes, size: int, chunk: int = MB):
    for _ in range(size // chunk):
        yield byte * chunk


@pytest.fixture
def no_parser(monkeypatch):
    """Fails the test if openpyxl is asked to open the workbook."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(1)
        raise AssertionError("openpyxl.load_workbook must not be reached")

    monkeypatch.setattr(openpyxl, "load_workbook", refuse)
    return calls


def _refused_before_parsing(data: bytes, message: str, no_parser, *, name: str = "bomb.xlsx") -> str:
    tracemalloc.start()
    try:
        with pytest.raises(ImportFileError) as exc:
            check_upload(name, data)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in str(exc.value), str(exc.value)
    assert no_parser == []
    # Streamed in pieces: the peak is a few MB, whatever the unpacked size.
    assert peak < 8 * MB, peak
    return str(exc.value)


def _upload_refused(org, login, data: bytes, message: str, name: str = "bomb.xlsx") -> None:
    client = login(org.users["rep.east1"])
    before = Customer.objects.count()
    resp = upload(client, data, name=name)
    assert resp.status_code == 200 and message in resp.content.decode()
    assert not ImportJob.objects.exists() and Customer.objects.count() == before


def test_an_entry_declaring_a_huge_unpacked_size_is_refused_from_the_directory_alone(org, login, no_parser):
    data = bytearray(_base())
    # Patch the central directory: xl/sharedStrings.xml now declares 4 GB unpacked.
    name = b"xl/sharedStrings.xml"
    at = 0
    while True:
        at = data.index(b"PK\x01\x02", at)
        n = struct.unpack("<H", data[at + 28: at + 30])[0]
        if data[at + 46: at + 46 + n] == name:
            break
        at += 4
    data[at + 24: at + 28] = struct.pack("<I", 0xFFFFFFF0)
    data = bytes(data)
    assert zipfile.ZipFile(io.BytesIO(data)).getinfo(name.decode()).file_size == 0xFFFFFFF0
    _refused_before_parsing(data, "解压后的总大小超出上限", no_parser)
    _upload_refused(org, login, data, "解压后的总大小超出上限")


def test_a_shared_string_of_64_mb_of_one_character_is_refused_while_streaming(org, login, no_parser):
    head = [SST_HEAD, "<si><t>客户名称</t></si><si><t>".encode()]
    bomb = _with_part("xl/sharedStrings.xml", [*head, *_repeated(b"A", 64 * MB), b"</t></si></sst>"])
    assert len(bomb) < 200 * 1024  # the upload is small; unpacked it is 64 MB
    _refused_before_parsing(bomb, "单元格内容超出上限", no_parser)
    _upload_refused(org, login, bomb, "单元格内容超出上限")


@override_settings(TUIJIN_IMPORT_MAX_UNCOMPRESSED_BYTES=32 * MB)
def test_unpacked_size_over_the_setting_is_refused(org, login, no_parser):
    bomb = _with_part("xl/sharedStrings.xml", [SST_HEAD, *(b"<si><t>x</t></si>" * 4096 for _ in range(600)),
                                               b"</sst>"])
    _refused_before_parsing(bomb, "解压后的总大小超出上限", no_parser)


@override_settings(TUIJIN_IMPORT_MAX_SHARED_STRINGS=100_000)
def test_too_many_shared_strings_are_refused_before_openpyxl_loads_them(org, login, no_parser):
    # Namespace prefixes do not hide them from the count.
    many = _with_part("xl/sharedStrings.xml", [
        SST_HEAD.replace(b"<sst xmlns=", b"<x:sst xmlns:x="),
        *(b"<x:si><x:t>x</x:t></x:si>" * 1000 for _ in range(101)), b"</x:sst>"])
    _refused_before_parsing(many, "共享字符串超过100000个", no_parser)
    _upload_refused(org, login, many, "共享字符串超过100000个")


@override_settings(TUIJIN_IMPORT_MAX_PART_BYTES=MB)
def test_a_big_part_that_openpyxl_parses_whole_is_refused(org, login, no_parser):
    # 2 MB of empty elements in styles.xml would be a tree of 400,000 nodes.
    base = _base()
    styles = zipfile.ZipFile(io.BytesIO(base)).read("xl/styles.xml")
    head, tail = styles.rsplit(b"</styleSheet>", 1)
    bomb = _with_part("xl/styles.xml", [head, *(b"<a/>" * 4096 for _ in range(128)), b"</styleSheet>", tail],
                      base=base)
    _refused_before_parsing(bomb, "xl/styles.xml", no_parser)


@override_settings(TUIJIN_IMPORT_MAX_ZIP_ENTRIES=5)
def test_too_many_entries_are_refused(no_parser):
    _refused_before_parsing(_base(), "超过上限5", no_parser)


def test_bzip2_entries_are_refused(no_parser):
    data = _with_part("xl/sharedStrings.xml", [SST_HEAD, b"<si><t>x</t></si></sst>"], method=zipfile.ZIP_BZIP2)
    _refused_before_parsing(data, "不支持的压缩方式", no_parser)


def test_a_normal_workbook_passes_the_package_checks():
    check_upload("ok.xlsx", xlsx_bytes([row(i) for i in range(1, 30)]))
    check_upload("ok.xlsx", xlsx_bytes([row(i) for i in range(1, 30)], write_only=True))


# ---------------------------------------------------------------------------
# Caps found while reading: cell length (row and column named), rows, CSV lines
# ---------------------------------------------------------------------------

LONG = "长" * 40_000


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_a_cell_over_the_cap_fails_the_dry_run_naming_row_and_column(org, kind):
    rows = [row(1), row(2, 联系人职务="LONG"), row(3)]
    if kind == "xlsx":  # openpyxl cuts strings at 32,767 characters when writing: put it in afterwards
        data = _rewrite(xlsx_bytes(rows), {"xl/worksheets/sheet1.xml": lambda b: b.replace(
            b"<t>LONG</t>", f"<t>{LONG}</t>".encode())})
    else:
        data = csv_bytes(rows).replace(b"LONG", LONG.encode())
    job = services.import_job_create(actor=org.users["rep.east1"], filename=f"long.{kind}", data=data)
    assert HEADERS.index("联系人职务") == 13  # column N
    assert job.status == "failed" and "第3行N列（联系人职务）" in job.error and "32767" in job.error, job.error
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


@override_settings(TUIJIN_IMPORT_MAX_ROWS=100)
def test_a_sheet_whose_last_row_is_a_million_rows_down_stops_at_the_row_cap(org):
    """Blank rows count: openpyxl would otherwise yield a million empty rows before the real one."""
    data = xlsx_bytes([row(1)], write_only=True)
    sheet = zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml")
    far = sheet.replace(b'<row r="2"', b'<row r="1048576"').replace(b'r="A2"', b'r="A1048576"')
    assert far != sheet
    job = services.import_job_create(actor=org.users["rep.east1"], filename="far.xlsx",
                                     data=_with_part("xl/worksheets/sheet1.xml", [far], base=data))
    assert job.status == "failed" and "超过100行" in job.error, job.error


@override_settings(TUIJIN_IMPORT_CSV_MAX_LINE_CHARS=1000)
def test_a_csv_line_over_the_cap_is_refused_naming_the_line(org):
    data = csv_bytes([row(1)]) + ("客户" * 3000).encode()  # no line break: one 6,000-character line
    job = services.import_job_create(actor=org.users["rep.east1"], filename="line.csv", data=data)
    assert job.status == "failed" and "第3行超过1000个字符" in job.error, job.error
    assert not Customer.objects.filter(name__startswith="导入测试").exists()


@override_settings(TUIJIN_IMPORT_MAX_BYTES=1000)
def test_an_oversized_csv_is_refused_before_reading(org, login):
    _upload_refused(org, login, csv_bytes([row(i) for i in range(30)]), "文件太大", name="big.csv")
