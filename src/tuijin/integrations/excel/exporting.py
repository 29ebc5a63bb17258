"""Excel export of lists (SPEC P4): the same selectors as the list pages, so no invisible rows.

The workbook writing itself (`xlsx_response`, the row cap and its note) is core.xlsx, shared with
the goals and forecasting reports.
"""

from __future__ import annotations

from django.http import FileResponse
from django.utils import timezone, translation

from tuijin.core.xlsx import EXPORT_MAX_ROWS, XLSX_CONTENT_TYPE, xlsx_response
from tuijin.customers.models import Customer
from tuijin.customers.selectors import customer_list
from tuijin.followups.models import Activity
from tuijin.followups.selectors import activity_list
from tuijin.org.models import User
from tuijin.pipeline.models import Stage
from tuijin.pipeline.selectors import opportunity_list

from .columns import BY_KEY

CHUNK_SIZE = 2000


def _en() -> bool:
    return (translation.get_language() or "").startswith("en")


def _h(zh: str, en: str) -> str:
    return en if _en() else zh


def _col(key: str) -> str:
    col = BY_KEY[key]
    return col.en if _en() else col.zh


def _stamp() -> str:
    return timezone.localtime().strftime("%Y%m%d-%H%M")


def _cap(max_rows: int | None) -> int:
    # Read at call time: this module's EXPORT_MAX_ROWS is the lists' cap (tests lower it).
    return EXPORT_MAX_ROWS if max_rows is None else max_rows


def _limited(qs, max_rows: int | None):
    # One row past the cap tells xlsx_workbook_file that rows were cut off.
    cap = _cap(max_rows)
    return qs[: cap + 1].iterator(chunk_size=CHUNK_SIZE)


def customer_export(*, user: User, max_rows: int | None = None, **filters) -> FileResponse:
    """Visible customers (customer_list with the list page's filters) as .xlsx.

    The headers are the import columns, so an export can be edited and imported
    back in "update" mode.
    """
    keys = ["customer.name", "customer.credit_code", "customer.industry", "customer.size_band", "customer.region",
            "customer.city", "customer.source", "customer.tags", "customer.status", "customer.phone",
            "customer.address", "owner"]
    headers = [_col(k) for k in keys] + [
        _h("负责人", "owner"), _h("最近跟进", "last contact"), _h("创建时间", "created"), _h("更新时间", "updated"),
    ]
    sizes, sources, statuses = dict(Customer.Size.choices), dict(Customer.Source.choices), dict(Customer.Status.choices)

    def rows():
        for c in _limited(customer_list(user=user, **filters), max_rows):
            yield [
                c.name, c.credit_code, c.industry, str(sizes.get(c.size_band, c.size_band)), c.region, c.city,
                str(sources.get(c.source, c.source)), c.tags, str(statuses.get(c.status, c.status)), c.phone,
                c.address, c.owner.username, c.owner.label, c.last_contact_at, c.created_at, c.updated_at,
            ]

    name = _h("客户", "customers")
    return xlsx_response(f"{name}-{_stamp()}.xlsx", headers, rows(), sheet_title=name, max_rows=_cap(max_rows))


def opportunity_export(*, user: User, max_rows: int | None = None, **filters) -> FileResponse:
    headers = [
        _h("商机名称", "opportunity"), _h("客户名称", "customer"), _h("负责人", "owner"),
        _h("销售流程", "pipeline"), _h("阶段", "stage"), _h("状态", "status"), _h("赢率%", "win %"),
        _h("金额", "amount"), _h("预计成交日期", "expected close"), _h("最近推进", "last progress"),
        _h("关闭时间", "closed"), _h("创建时间", "created"),
    ]
    kinds = dict(Stage.Kind.choices)

    def rows():
        for o in _limited(opportunity_list(user=user, **filters), max_rows):
            yield [
                o.name, o.customer.name, o.owner.label, str(o.pipeline), str(o.stage),
                str(kinds.get(o.stage.kind, o.stage.kind)), o.probability, o.amount, o.expected_close_date,
                o.last_progress_at, o.closed_at, o.created_at,
            ]

    name = _h("商机", "opportunities")
    return xlsx_response(f"{name}-{_stamp()}.xlsx", headers, rows(), sheet_title=name, max_rows=_cap(max_rows))


def activity_export(*, user: User, max_rows: int | None = None, **filters) -> FileResponse:
    headers = [
        _h("时间", "time"), _h("方式", "kind"), _h("客户名称", "customer"), _h("商机", "opportunity"),
        _h("联系人", "contact"), _h("负责人", "owner"), _h("时长(分钟)", "minutes"), _h("主题", "subject"),
        _h("关键结论", "conclusion"), _h("备注", "notes"),
    ]
    kinds = dict(Activity.Kind.choices)

    def rows():
        for a in _limited(activity_list(user=user, **filters), max_rows):
            yield [
                a.occurred_at, str(kinds.get(a.kind, a.kind)), a.customer.name,
                a.opportunity.name if a.opportunity_id else "", a.contact.name if a.contact_id else "",
                a.owner.label, a.duration_minutes, a.subject, a.conclusion, a.notes,
            ]

    name = _h("跟进记录", "activities")
    return xlsx_response(f"{name}-{_stamp()}.xlsx", headers, rows(), sheet_title=name, max_rows=_cap(max_rows))


def import_template_response() -> FileResponse:
    """The import template (导入模板, K7): headers on the first sheet, 说明 on the second."""
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    from .columns import COLUMNS, choices_text

    lang = translation.get_language() or "zh-hans"
    wb = Workbook()
    ws = wb.active
    ws.title = _h("客户导入", "customers")
    ws.append([c.header(lang) for c in COLUMNS])
    for i, col in enumerate(COLUMNS, start=1):
        cell = ws.cell(row=1, column=i)
        cell.font = Font(bold=True, color="C00000" if col.required else "000000")
        cell.fill = PatternFill("solid", fgColor="DDEBF7")
        ws.column_dimensions[get_column_letter(i)].width = max(12, len(cell.value) * 2 + 2)
        if col.choices is not None:
            # A drop-down of the labels; codes typed by hand are accepted as well.
            with translation.override(lang):
                labels = ",".join(str(label) for _code, label in col.choices.choices)
            dv = DataValidation(type="list", formula1=f'"{labels}"', allow_blank=True, showErrorMessage=False)
            ws.add_data_validation(dv)
            dv.add(f"{get_column_letter(i)}2:{get_column_letter(i)}5000")
    ws.freeze_panes = "A2"

    notes = wb.create_sheet(_h("说明", "Notes"))
    notes.append([_h("列名", "column"), _h("英文列名", "English header"), _h("必填", "required"),
                  _h("说明", "notes"), _h("可选值（代码或名称均可）", "allowed values (code or label)")])
    for col in COLUMNS:
        notes.append([col.zh, col.en, _h("是", "yes") if col.required else "", col.help(lang), choices_text(col, lang)])
    notes.append([])
    for line in (
        _h("第1行是表头，从第2行开始每行一条记录；列的顺序不限，中文或英文列名均可。",
           "Row 1 holds the headers; one record per row from row 2. Columns may be in any order, "
           "with Chinese or English headers."),
        _h("同一客户有多个联系人时，每个联系人一行，客户名称相同，其余客户列可以留空。",
           "For several contacts of one customer, use one row per contact with the same customer name; "
           "the other customer columns may be left empty."),
        _h("导入前会先校验全部行；有任何错误都不会导入，全部正确后才一次性导入。",
           "Every row is checked first; nothing is imported while any row has an error."),
        _h("与系统中已有客户（名称、电话或统一社会信用代码相同）重复时，可选择跳过或更新。",
           "Rows matching an existing customer (name, phone or credit code) are skipped or update it, as chosen."),
        _h("支持 .xlsx 和 .csv（UTF-8 或 GBK 编码）。", "Accepts .xlsx and .csv (UTF-8 or GBK)."),
    ):
        notes.append([line])
    for letter, width in zip("ABCDE", (16, 20, 8, 60, 70), strict=True):
        notes.column_dimensions[letter].width = width
    for row in notes.iter_rows(min_row=2):
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
    for cell in notes[1]:
        cell.font = Font(bold=True)
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    name = _h("客户导入模板", "customer-import-template")
    return FileResponse(buf, as_attachment=True, filename=f"{name}.xlsx", content_type=XLSX_CONTENT_TYPE)
