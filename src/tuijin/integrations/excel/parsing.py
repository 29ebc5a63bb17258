"""Reading an uploaded .xlsx or .csv into (row number, {column: text}) pairs.

Row numbers are the spreadsheet's own (header = row 1) so error reports point
at the line the user sees. CSV from Excel in China is usually GB18030/GBK, not
UTF-8, so decoding falls back to GB18030 (a superset of GBK).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from .columns import BY_KEY, Column, column_for_header


class ImportFileError(Exception):
    """The file as a whole cannot be imported (type, size, encoding, headers)."""


@dataclass
class ParsedFile:
    columns: list[tuple[int, Column, str]]  # (cell index, column, header as written in the file)
    ignored_headers: list[str]
    rows: list[tuple[int, dict[str, str]]]  # (spreadsheet row number, {column key: text})

    def header_of(self, key: str) -> str:
        for _i, col, text in self.columns:
            if col.key == key:
                return text.rstrip("*＊ ")  # the template's required-marker is not part of the name
        return BY_KEY[key].header().rstrip("*") if key in BY_KEY else key


def cell_text(value) -> str:
    """Spreadsheet cell → text; phone numbers typed as numbers must not become 1.38e10."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


def _decode_csv(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_("无法识别CSV文件的编码，请另存为UTF-8或GBK编码"))


def _looks_binary(text: str) -> bool:
    return "\x00" in text[:4096]


def _read_csv(data: bytes):
    text = _decode_csv(data)
    if _looks_binary(text):
        raise ImportFileError(_("文件内容不是CSV表格"))
    # Excel's "Unicode text" export is tab-separated; csv.Sniffer guesses wrong on Chinese text.
    first_line = text.split("\n", 1)[0]
    dialect = csv.excel_tab if "\t" in first_line and "," not in first_line else csv.excel
    yield from csv.reader(io.StringIO(text, newline=""), dialect)


def _read_xlsx(data: bytes):
    import openpyxl

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ImportFileError(_("文件内容不是有效的Excel(.xlsx)文件"))
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a corrupt file
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})
    try:
        # The first sheet holds the data; the template's second sheet is 说明.
        ws = wb.worksheets[0]
        for row in ws.iter_rows(values_only=True):
            yield list(row)
    finally:
        wb.close()


def parse_upload(filename: str, data: bytes) -> ParsedFile:
    """Parse and check the file as a whole; row contents are validated later."""
    name = (filename or "").lower()
    if not name.endswith((".xlsx", ".csv")):
        raise ImportFileError(_("只支持 .xlsx 或 .csv 文件（旧版 .xls 请在Excel中另存为 .xlsx）"))
    if not data:
        raise ImportFileError(_("文件是空的"))
    limit = settings.TUIJIN_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportFileError(_("文件太大，上限为%(limit)s") % {"limit": _human(limit)})
    reader = _read_xlsx(data) if name.endswith(".xlsx") else _read_csv(data)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(_("CSV格式错误：%(error)s") % {"error": exc})
    if not header or not any(cell_text(v) for v in header):
        raise ImportFileError(_("文件是空的，或第1行不是表头"))
    columns, ignored, seen = [], [], set()
    for i, value in enumerate(header):
        text = cell_text(value)
        if not text:
            continue
        col = column_for_header(text)
        if col is None:
            ignored.append(text)
        elif col.key in seen:
            raise ImportFileError(_("表头“%(header)s”出现了两次") % {"header": text})
        else:
            seen.add(col.key)
            columns.append((i, col, text))
    if "customer.name" not in seen:
        raise ImportFileError(
            _("缺少必填列“%(header)s”（第1行须是表头，可下载导入模板）") % {"header": BY_KEY["customer.name"].zh}
        )
    rows = []
    try:
        for number, values in enumerate(reader, start=2):
            record = {}
            for i, col, _text in columns:
                record[col.key] = cell_text(values[i]) if i < len(values) else ""
            if any(record.values()):
                rows.append((number, record))
    except csv.Error as exc:
        raise ImportFileError(_("CSV格式错误：%(error)s") % {"error": exc})
    if not rows:
        raise ImportFileError(_("文件只有表头，没有数据行"))
    return ParsedFile(columns=columns, ignored_headers=ignored, rows=rows)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"
