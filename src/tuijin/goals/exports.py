"""Excel and PDF downloads of a deviation report (SPEC G7, P4); the PDF renders Chinese with Noto Sans CJK SC."""

from __future__ import annotations

import logging

from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from tuijin.core.xlsx import xlsx_response

from .report import CAUSES

# WeasyPrint logs every layout step at INFO; the site's root logger is at INFO, so one report would
# write a dozen lines per download.
logging.getLogger("weasyprint").setLevel(logging.WARNING)


def _kind_label(row) -> str:
    return _("销售") if row["kind"] == "rep" else _("组织")


def report_xlsx_response(report, rows):
    """One row per org unit / rep: target, actual, gap, each cause's amount and record count, unexplained."""
    headers = [_("层级"), _("名称"), _("所属组织"), _("目标"), _("实际"), _("缺口"), _("完成率")]
    for _key, label in CAUSES:
        headers += [f"{label}", f"{label}（{_('商机数')}）"]
    headers.append(_("未解释"))

    def lines():
        for row in rows:
            out = [_kind_label(row), ("  " * row["depth"]) + row["name"], row.get("unit_name", ""),
                   row["target_d"], row["actual_d"], row["gap_d"],
                   f"{row['achievement'] * 100:.1f}%" if row["achievement"] is not None else "—"]
            for cell in row["cause_cells"]:
                out += [cell["amount"], cell["count"]]
            out.append(row["unexplained_d"])
            yield out

    return xlsx_response(f"goal-report-{report.period_start:%Y-%m}.xlsx", headers, lines(),
                         sheet_title=_("目标偏差分析报告"))


def report_pdf_bytes(report, rows) -> bytes:
    from weasyprint import HTML

    html = render_to_string("goals/report_pdf.html", {"report": report, "rows": rows, "causes": CAUSES})
    return HTML(string=html).write_pdf()
