"""Reading an uploaded .xlsx or .csv as a stream of (row number, {column: text}) pairs.

Row numbers are the spreadsheet's own (header = row 1) so error reports point
at the line the user sees. CSV from Excel in China is usually GB18030/GBK, not
UTF-8, so decoding falls back to GB18030 (a superset of GBK).

Rows are never all held in memory: `open_upload` checks the file as a whole
and reads the header, then `Upload.rows()` yields one row at a time (openpyxl's
read-only mode for .xlsx, a decoding stream for CSV).

Decompression bombs (security): an .xlsx is a zip, so a 1 MB upload can unpack
to gigabytes, and openpyxl parses most parts whole and keeps every shared string
in memory. `check_upload` therefore inspects the package before any parser sees
it — entry count, declared uncompressed sizes (zipfile never returns more than an
entry declares), compression methods, which parts may be large, the number of
shared strings and the longest run of text — using only bounded, streamed reads.
CSV lines and every cell are capped too. The bounds are settings
(TUIJIN_IMPORT_*, see README).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import posixpath
import re
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


# Columns past this one are not read (the template has 20): a forged sheet dimension or a cell in
# column XFD would otherwise make openpyxl build 16,384-wide rows.
MAX_COLUMNS = 256
# Excel writes deflate; bzip2 and lzma entries would decompress without zipfile's output bound.
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
# Streamed reads of a package part go in pieces of this size (the split into runs costs ~6x a piece).
_CHUNK = 1 << 18
# A <si> start tag, with or without a namespace prefix (comments may over-count; that only errs safe).
_SI_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?si[\s/>]")


class Upload:
    """An opened upload: its recognised columns and a one-pass iterator over the data rows."""

    def __init__(self, columns, ignored_headers, reader):
        self.columns: list[tuple[int, Column, str]] = columns  # (cell index, column, header as written)
        self.ignored_headers: list[str] = ignored_headers
        self._reader = reader
        # Called with the number of rows read so far, every few hundred rows (dry-run progress, heartbeat).
        self.on_progress = None

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
        cell_limit = settings.TUIJIN_IMPORT_MAX_CELL_CHARS
        columns = [(i, col.key) for i, col, _text in self.columns]
        count = 0
        on_progress = self.on_progress
        try:
            for number, values in reader:
                # Blank rows count too (the row number is what the user sees), so a sheet of a million
                # empty rows stops here instead of being walked to the end.
                if number > limit + 1:
                    raise ImportFileError(_("文件超过%(limit)s行，请拆分成多个文件导入") % {"limit": limit})
                if on_progress is not None and number % 500 == 0:
                    on_progress(number)
                n = len(values)
                record = {key: (cell_text(values[i]) if i < n else "") for i, key in columns}
                for i, key in columns:
                    if len(record[key]) > cell_limit:
                        raise ImportFileError(
                            _("第%(row)s行%(letter)s列（%(column)s）的内容超过%(limit)s个字符，请检查该单元格")
                            % {"row": number, "letter": column_letter(i), "column": self.header_of(key),
                               "limit": cell_limit})
                if any(record.values()):
                    count += 1
                    if count > limit:
                        raise ImportFileError(_("文件超过%(limit)s行，请拆分成多个文件导入") % {"limit": limit})
                    yield number, record
        except csv.Error as exc:
            raise ImportFileError(_("CSV格式错误：%(error)s") % {"error": exc})
        except _XLSX_ERRORS as exc:
            raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA: the column name the user sees in Excel."""
    out = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        out = chr(65 + rem) + out
    return out


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
    yield from enumerate(csv.reader(_bounded_lines(text), dialect), start=1)


def _bounded_lines(text):
    """The file's lines, refusing one longer than TUIJIN_IMPORT_CSV_MAX_LINE_CHARS before it is built whole.

    A file without line breaks (or a binary file that decoded) would otherwise be read as one huge line.
    """
    limit = settings.TUIJIN_IMPORT_CSV_MAX_LINE_CHARS
    number = 0
    while True:
        line = text.readline(limit + 1)
        if not line:
            return
        number += 1
        if len(line) > limit:
            raise ImportFileError(_("CSV文件第%(line)s行超过%(limit)s个字符，请检查文件（是否缺少换行，或有未配对的引号）")
                                  % {"line": number, "limit": limit})
        yield line


# ---------------------------------------------------------------------------
# XLSX
# ---------------------------------------------------------------------------


def _read_xlsx(data: bytes):
    """openpyxl's read-only mode streams the sheet's XML (rows are not all built in memory)."""
    import openpyxl

    try:
        # keep_links=False: external links hold cached copies of other workbooks, parsed whole; not needed.
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
        ws = wb.worksheets[0]  # the data; the template's second sheet is 说明
        # The declared dimension is not trusted: a forged A1:XFD1048576 would pad every row and add
        # a million empty rows at the end.
        ws.reset_dimensions()
    except Exception as exc:  # a corrupt package fails in many ways (missing parts, bad XML, bad zip)
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})
    try:
        # Read-only sheets yield every row from the first, blank ones included, so the count is the row number.
        yield from enumerate(ws.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1)
    finally:
        wb.close()


def _too_big(part: str | None = None, *, text: bool = False) -> ImportFileError:
    if text:
        return ImportFileError(_("Excel文件解压后的单元格内容超出上限（%(limit)s个字符），不予处理")
                               % {"limit": settings.TUIJIN_IMPORT_MAX_CELL_CHARS})
    if part:
        return ImportFileError(_("Excel文件解压后的部件“%(name)s”超出上限，不予处理（请检查文件，或拆分后导入）")
                               % {"name": part[:100]})
    return ImportFileError(_("Excel文件解压后的总大小超出上限，不予处理（请检查文件，或拆分后导入）"))


def check_xlsx_package(data: bytes) -> None:
    """Refuse a decompression bomb before any XML parser sees it; streamed reads only (bounded memory).

    openpyxl (read-only) streams the first worksheet and the shared strings (keeping every string, ~250
    bytes each), and parses every other part it reads as a whole tree. So: a bounded number of entries and
    total unpacked size; only those two parts may exceed TUIJIN_IMPORT_MAX_PART_BYTES; at most
    TUIJIN_IMPORT_MAX_SHARED_STRINGS strings; no run of text longer than a capped cell could need.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError):
        raise ImportFileError(_("文件内容不是有效的Excel(.xlsx)文件"))
    max_entries = settings.TUIJIN_IMPORT_MAX_ZIP_ENTRIES
    if len(infos) > max_entries:
        raise ImportFileError(_("Excel文件包含%(n)s个部件，超过上限%(limit)s") % {"n": len(infos), "limit": max_entries})
    if any(i.compress_type not in _ZIP_METHODS for i in infos):
        raise ImportFileError(_("Excel文件使用了不支持的压缩方式"))
    if sum(i.file_size for i in infos) > settings.TUIJIN_IMPORT_MAX_UNCOMPRESSED_BYTES:
        raise _too_big()
    by_name = {i.filename: i for i in infos}
    part_limit = settings.TUIJIN_IMPORT_MAX_PART_BYTES
    big = {i.filename for i in infos if i.file_size > part_limit}
    strings, sheet = _streamed_parts(zf, by_name, big)
    if big - {strings, sheet}:
        raise _too_big(sorted(big - {strings, sheet})[0])
    for name in (strings, sheet):
        if name in by_name:
            _scan_part(zf, name, count_strings=name == strings)


def _streamed_parts(zf: zipfile.ZipFile, by_name: dict, big: set[str]) -> tuple[str | None, str | None]:
    """(shared strings part, first worksheet part), found the way openpyxl finds them.

    Only reads parts that are not big; a big part that openpyxl would parse whole is refused.
    """
    from openpyxl.packaging.manifest import Manifest
    from openpyxl.reader.excel import SHARED_STRINGS, _find_workbook_part
    from openpyxl.reader.workbook import WorkbookParser
    from openpyxl.xml.constants import ARC_CONTENT_TYPES
    from openpyxl.xml.functions import fromstring

    try:
        if ARC_CONTENT_TYPES in big:
            raise _too_big(ARC_CONTENT_TYPES)
        package = Manifest.from_tree(fromstring(zf.read(ARC_CONTENT_TYPES)))
        ct = package.find(SHARED_STRINGS)
        strings = ct.PartName[1:] if ct is not None else None
        workbook = _find_workbook_part(package).PartName[1:]
        rels = posixpath.join(posixpath.dirname(workbook), "_rels", posixpath.basename(workbook) + ".rels")
        if workbook in big or rels in big:
            raise _too_big(workbook)
        parser = WorkbookParser(zf, workbook, keep_links=False)
        parser.parse()
        sheet, others = None, set()
        for _sheet, rel in parser.find_sheets():
            if sheet is None and "chartsheet" not in rel.Type:
                sheet = rel.target
            else:
                others.add(rel.target)  # chartsheets are parsed whole
    except ImportFileError:
        raise
    except Exception as exc:  # a damaged package: let the usual error name it
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})
    whole = {ARC_CONTENT_TYPES, workbook, rels, "xl/styles.xml", "docProps/core.xml", "docProps/custom.xml"} | others
    for name in big & {strings, sheet}:
        if name in whole or name.endswith(".rels"):
            raise _too_big(name)
    return strings, sheet


def _scan_part(zf: zipfile.ZipFile, name: str, *, count_strings: bool) -> None:
    """One streamed pass over a part: the longest run between two '<' and (shared strings) the <si> count."""
    longest = settings.TUIJIN_IMPORT_MAX_CELL_CHARS * 10 + 4096  # &#1114111; is 10 bytes for one character
    max_strings = settings.TUIJIN_IMPORT_MAX_SHARED_STRINGS
    n_strings = 0
    carry = b""
    try:
        with zf.open(name) as src:
            while True:
                chunk = src.read(_CHUNK)
                buf = carry + chunk
                cut = buf.rfind(b"<") if chunk else len(buf)
                if cut <= 0:
                    carry = buf
                else:
                    head, carry = buf[:cut], buf[cut:]
                    if max(map(len, head.split(b"<"))) > longest:
                        raise _too_big(text=True)
                    if count_strings:
                        n_strings += sum(1 for _m in _SI_TAG.finditer(head))
                        if n_strings > max_strings:
                            raise ImportFileError(_("Excel文件的共享字符串超过%(limit)s个，不予处理（请拆分后导入）")
                                                  % {"limit": max_strings})
                if len(carry) > longest:
                    raise _too_big(text=True)
                if not chunk:
                    return
    except ImportFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:  # bad CRC, truncated data
        raise ImportFileError(_("无法读取Excel文件：%(error)s") % {"error": exc.__class__.__name__})


# ---------------------------------------------------------------------------
# Opening an upload
# ---------------------------------------------------------------------------


def check_upload(filename: str, data: bytes) -> None:
    """The checks that need no parsing (type, size, an .xlsx package's bounds); cheap enough for a web request."""
    name = (filename or "").lower()
    if not name.endswith((".xlsx", ".csv")):
        raise ImportFileError(_("只支持 .xlsx 或 .csv 文件（旧版 .xls 请在Excel中另存为 .xlsx）"))
    if not data:
        raise ImportFileError(_("文件是空的"))
    limit = settings.TUIJIN_IMPORT_MAX_BYTES
    if len(data) > limit:
        raise ImportFileError(_("文件太大，上限为%(limit)s") % {"limit": _human(limit)})
    if name.endswith(".xlsx"):
        check_xlsx_package(data)


def open_upload(filename: str, data: bytes) -> Upload:
    """Check the file as a whole and read its header; rows are read (and validated) later, one at a time."""
    name = (filename or "").lower()
    check_upload(filename, data)
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
