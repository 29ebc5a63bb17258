"""Helpers for the Excel import/export tests: build .xlsx/.csv files in memory and read them back."""

from __future__ import annotations

import io

import openpyxl
from django.core.files.uploadedfile import SimpleUploadedFile

from tuijin.customers.normalize import credit_code_check_char

HEADERS = [
    "客户名称*", "统一社会信用代码", "行业", "规模", "区域", "城市", "来源", "标签", "状态", "电话", "地址",
    "负责人用户名", "联系人姓名", "联系人职务", "决策角色", "手机", "座机", "邮箱", "微信", "QQ",
]


def credit_code(i: int) -> str:
    first17 = f"91310000{i:09d}"
    return first17 + credit_code_check_char(first17)


def row(i: int, **over) -> dict:
    """A good row for customer number i (one contact)."""
    data = {
        "客户名称*": f"导入测试{i}号医疗科技有限公司", "统一社会信用代码": credit_code(i), "行业": "hospital_public",
        "规模": "中型(100-499人)", "区域": "华东", "城市": "上海", "来源": "exhibition", "标签": "三甲,重点",
        "状态": "活跃", "电话": f"021-6{i:07d}", "地址": f"浦东新区{i}号", "负责人用户名": "",
        "联系人姓名": f"王{i}", "联系人职务": "设备科主任", "决策角色": "决策人", "手机": f"139{i:08d}",
        "座机": "", "邮箱": f"w{i}@example.com", "微信": f"wx{i}", "QQ": f"{100000 + i}",
    }
    data.update(over)
    return data


def xlsx_bytes(rows: list[dict], headers: list[str] = HEADERS, *, write_only: bool = False) -> bytes:
    """write_only: openpyxl's streaming writer (inline strings), as the bench's large file is written."""
    wb = openpyxl.Workbook(write_only=write_only)
    ws = wb.create_sheet("客户") if write_only else wb.active
    ws.append(headers)
    for r in rows:
        ws.append([r.get(h, "") for h in headers])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def csv_bytes(rows: list[dict], headers: list[str] = HEADERS, encoding: str = "utf-8") -> bytes:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(headers)
    for r in rows:
        w.writerow([r.get(h, "") for h in headers])
    return buf.getvalue().encode(encoding)


def upload(client, content: bytes, name: str = "customers.xlsx", dup_mode: str = "skip"):
    return client.post("/import/customers/", {"file": SimpleUploadedFile(name, content), "dup_mode": dup_mode})


def read_xlsx(content: bytes) -> list[list]:
    wb = openpyxl.load_workbook(io.BytesIO(content), read_only=True)
    return [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]


def response_bytes(resp) -> bytes:
    return b"".join(resp.streaming_content) if resp.streaming else resp.content
