"""Excel (.xlsx) downloads any app can hand rows to: `xlsx_response(filename, headers, rows)`.

It uses openpyxl's write-only workbook (rows go to a temporary file as they come, so memory stays flat)
and stops at `EXPORT_MAX_ROWS`, saying so in the file's last row. It lives in core because goals and
forecasting reports download xlsx too, and a domain app must not import the integrations layer above it.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterable, Sequence
from decimal import Decimal

from django.http import FileResponse
from django.utils import timezone
from django.utils.translation import gettext as _

EXPORT_MAX_ROWS = 100_000
XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _excel_value(value):
    # Excel has no time zones: show datetimes in the site's zone, as the pages do.
    if isinstance(value, dt.datetime):
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.replace(tzinfo=None, microsecond=0)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    if value is None or isinstance(value, (str, int, float, Decimal, dt.date, bool)):
        return value
    return str(value)


def xlsx_workbook_file(headers: Sequence[str], rows: Iterable[Sequence], *, sheet_title: str = "",
                       max_rows: int | None = None):
    """Write rows into a temporary .xlsx file and return it, rewound."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    max_rows = EXPORT_MAX_ROWS if max_rows is None else max_rows
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=(sheet_title or "Sheet1")[:31])
    bold = Font(bold=True)
    header_cells = []
    for h in headers:
        cell = WriteOnlyCell(ws, value=str(h))
        cell.font = bold
        header_cells.append(cell)
    ws.append(header_cells)
    date_format, datetime_format, money_format = "yyyy-mm-dd", "yyyy-mm-dd hh:mm", "#,##0.00"
    written = 0
    for row in rows:
        if written >= max_rows:
            ws.append([_("已达到导出上限%(n)s行，其余记录未导出；请缩小筛选范围后分批导出") % {"n": max_rows}])
            break
        out = []
        for value in row:
            value = _excel_value(value)
            if isinstance(value, (dt.date, Decimal)):
                cell = WriteOnlyCell(ws, value=value)
                cell.number_format = (
                    money_format if isinstance(value, Decimal)
                    else datetime_format if isinstance(value, dt.datetime) else date_format
                )
                out.append(cell)
            elif isinstance(value, str) and value.startswith("="):
                # openpyxl would store this as a formula: user-typed text must never run in Excel.
                cell = WriteOnlyCell(ws, value=value)
                cell.data_type = "s"
                out.append(cell)
            else:
                out.append(value)
        ws.append(out)
        written += 1
    tmp = tempfile.TemporaryFile(suffix=".xlsx")
    wb.save(tmp)
    tmp.seek(0)
    return tmp


def xlsx_response(filename: str, headers: Sequence[str], rows: Iterable[Sequence], *, sheet_title: str = "",
                  max_rows: int | None = None) -> FileResponse:
    """An .xlsx download of `rows` under `headers`; `rows` may be a lazy iterator."""
    if not filename.endswith(".xlsx"):
        filename += ".xlsx"
    tmp = xlsx_workbook_file(headers, rows, sheet_title=sheet_title or filename[:-5], max_rows=max_rows)
    return FileResponse(tmp, as_attachment=True, filename=filename, content_type=XLSX_CONTENT_TYPE)
