"""Excel import of N customers (100,000 at scale M): the dry run, then the import itself.

Each run happens inside a transaction that is rolled back afterwards, so the
dataset stays the same from run to run (and the imported customers are new
every time, never skipped as duplicates). The .xlsx file is generated once
per size and kept under var/.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.db import transaction

from . import BenchError, scenario

HEADERS = [
    "客户名称*", "统一社会信用代码", "行业", "规模", "区域", "城市", "来源", "标签", "状态", "电话", "地址",
    "负责人用户名", "联系人姓名", "联系人职务", "决策角色", "手机", "邮箱",
]


class Timed:
    """Returned by an operation that times only part of its work (the runner uses `elapsed`)."""

    def __init__(self, elapsed: float, value=None):
        self.elapsed, self.value = elapsed, value


def import_file(rows: int, owners: list[str]) -> Path:
    import openpyxl

    from tuijin.customers.normalize import credit_code_check_char

    path = Path(settings.VAR_DIR) / f"bench-import-{rows}-v1.xlsx"
    if path.exists():
        return path
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("客户")
    ws.append(HEADERS)
    for i in range(rows):
        first17 = f"91440300{i:09d}"
        ws.append([
            f"基准导入{i:06d}号医疗科技有限公司", first17 + credit_code_check_char(first17), "hospital_private",
            "中型(100-499人)", "华南", "深圳", "exhibition", "重点", "活跃", f"0755-9{i:07d}", f"南山区科技路{i}号",
            owners[i % len(owners)], f"联系人{i}", "设备科主任", "决策人", f"17{i:09d}", f"c{i}@example.com",
        ])
    tmp = path.with_suffix(".tmp")
    wb.save(tmp)
    tmp.rename(path)
    return path


def _prepare(ctx):
    from tuijin.org.models import User

    owners = list(User.objects.filter(role="rep", username__startswith="bench.rep")
                  .order_by("username").values_list("username", flat=True))
    path = import_file(ctx.scale.import_rows, owners)
    return ctx.user("director"), path.name, path.read_bytes()


def _dry_run(actor, name, data):
    from tuijin.integrations.excel.services import import_job_create

    job = import_job_create(actor=actor, filename=name, data=data, dup_mode="skip")
    if job.report.get("error_count") or job.report.get("create") != job.total_rows:
        raise BenchError(f"import dry run: unexpected report {dict(list(job.report.items())[:8])}")
    return job


@scenario("import.dry_run", title="Excel import: dry run (parse + validate + duplicate check)", heavy=True,
          group="jobs")
def dry_run(ctx, role):
    actor, name, data = _prepare(ctx)

    def run():
        with transaction.atomic():
            start = time.perf_counter()
            job = _dry_run(actor, name, data)
            elapsed = time.perf_counter() - start
            transaction.set_rollback(True)
        return Timed(elapsed, job.total_rows)

    return run


@scenario("import.run", title="Excel import: the import itself (re-validate + write, one transaction)",
          heavy=True, group="jobs")
def run_import(ctx, role):
    from tuijin.integrations.excel.services import import_job_start

    actor, name, data = _prepare(ctx)

    def run():
        with transaction.atomic():
            job = _dry_run(actor, name, data)
            start = time.perf_counter()
            job = import_job_start(actor=actor, job=job)
            elapsed = time.perf_counter() - start
            if job.status != "done" or job.created_count != job.total_rows:
                raise BenchError(f"import ended {job.status}: {job.error} created={job.created_count}")
            transaction.set_rollback(True)
        return Timed(elapsed, job.created_count)

    return run
