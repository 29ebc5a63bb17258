"""Reading an uploaded .xlsx or .csv as a stream of (row number, {column: text}) pairs.

Row numbers are the spreadsheet's own (header = row 1) so error reports point
at the line the user sees. CSV from Excel in China is usually GB18030/GBK, not
UTF-8, so decoding falls back to GB18030 (a superset of GBK).

Rows are never all held in memory: `open_upload` checks the file as a whole
and reads the header, then `Upload.rows()` yields one row at a time (openpyxl's
read-only mode for .xlsx, a decoding stream for CSV).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterator

from django.conf import settings
from django.utils.translation import gettext as _

from .columns import BY_KEY, Column, column_for_header

# What openpyxl raises for a damaged sheet part while streaming it (XML parse errors of
# ElementTree and lxml are both SyntaxErrors).
_XLSX_ERRORS = (SyntaxError, zipfile.BadZipFile, EOFError, ValueError, KeyError, IndexError, TypeError, AttributeError)


class ImportFileError(Exception):
    """The file as a whole cannot be imported (type, size, encoding, headers, row count)."""


class Upload:
    """An opened upload: its recognised columns and a one-pass iterator over the data rows."""

    def __init__(self, columns, ignored_headers, reader):
        self.columns: list[tuple[int, Column, str]] = columns  # (cell index, column, header as written)
        self.ignored_headers: list[str] = ignored_headers
        self._reader = reader

    def header_of(self, key: str) -> str:
        for _i, col, text in self.columns:
            if col.key == key:
                return text.rstrip("*＊ ")  # the template's required-marker is not part of the name
        return BY_KEY[key].header().rstrip("*") if key in BY_KEY else key

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """Non-empty data rows as (spreadsheet row number, {column key: text}); one pass only."""
        reader, self._reader = self._reader, None
        if reader is None:
            raise RuntimeError("Upload.rows() can be iterated only once")
        limit = settings.TUIJIN_IMPORT_MAX_ROWS
        columns = [(i, col.key) for i, col, _text in self.columns]
        count = 0
        try:
            for number, values in reader:
                n = len(values)
                record = {key: (cell_text(values[i]) if i < n else "") for i, key in columns}
                if any(record.values()):
                    count += 1
                    if count > limit:
                        raise ImportFileError(_("文件超过%(limit)s行，请拆分成多个文件导入") % {"limit": limit})
                    yield number, record
        except csv.Error as exc:
            raise ImportFileError(_("CSV格式错误：%(error)s") % {"error": exc})
        except _XLSX_ERRORS as exc:
            raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})


def cell_text(value) -> str:
    """Spreadsheet cell → text; phone numbers typed as numbers must not become 1.38e10."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value).strip()


# ---------------------------------------------------------------------------
# CSV
# ---------------------------------------------------------------------------


def _csv_encoding(data: bytes) -> str:
    """The first of UTF-8 / GB18030 that decodes the whole file, checked in pieces (no full copy)."""
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            for i in range(0, len(data), 1 << 20):
                decoder.decode(data[i : i + (1 << 20)])
            decoder.decode(b"", final=True)
            return encoding
        except UnicodeDecodeError:
            continue
    raise ImportFileError(_("无法识别CSV文件的编码，请另存为UTF-8或GBK编码"))


def _read_csv(data: bytes):
    start = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    encoding = _csv_encoding(memoryview(data)[start:])
    first = bytes(memoryview(data)[start : start + 4096]).decode(encoding, errors="ignore")
    if "\x00" in first:
        raise ImportFileError(_("文件内容不是CSV表格"))
    text = io.TextIOWrapper(io.BytesIO(memoryview(data)[start:]), encoding=encoding, newline="")
    # Excel's "Unicode text" export is tab-separated; csv.Sniffer guesses wrong on Chinese text.
    first_line = first.split("\n", 1)[0]
    dialect = csv.excel_tab if "\t" in first_line and "," not in first_line else csv.excel
    yield from enumerate(csv.reader(text, dialect), start=1)


# ---------------------------------------------------------------------------
# XLSX
# ---------------------------------------------------------------------------


def _read_xlsx(data: bytes):
    """openpyxl's read-only mode streams the sheet's XML (rows are not all built in memory)."""
    import openpyxl

    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ImportFileError(_("文件内容不是有效的Excel(.xlsx)文件"))
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        ws = wb.worksheets[0]  # the data; the template's second sheet is 说明
    except Exception as exc:  # a corrupt package fails in many ways (missing parts, bad XML, bad zip)
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})
    try:
        # Read-only sheets yield every row from the first, blank ones included, so the count is the row number.
        yield from enumerate(ws.iter_rows(values_only=True), start=1)
    finally:
        wb.close()


# ---------------------------------------------------------------------------
# Opening an upload
# ---------------------------------------------------------------------------


def open_upload(filename: str, data: bytes) -> Upload:
    """Check the file as a whole and read its header; rows are read (and validated) later, one at a time."""
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
        first = next(reader, None)
    except csv.Error as exc:
        raise ImportFileError(_("CSV格式错误：%(error)s") % {"error": exc})
    except _XLSX_ERRORS as exc:
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})
    number, header = first if first else (0, None)
    if number != 1 or not header or not any(cell_text(v) for v in header):
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
    return Upload(columns=columns, ignored_headers=ignored, reader=reader)


def _human(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / 1024 / 1024:.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n} B"
