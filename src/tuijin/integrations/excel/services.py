"""Importing customers with contacts from a spreadsheet, all or nothing (SPEC P4, K2, K7).

The flow is upload (`import_job_create`: the checks that need no parsing, see
parsing.check_upload, then store the file and queue the dry run) → dry run in
the worker (`import_job_validate`: parse, validate every row, find duplicates,
store the report) → start (`import_job_start`: queue a Huey
task) → run (`import_job_run`: re-read and re-validate the rows before taking
the write lock, then inside ONE transaction re-check what the database may have
changed — owners, duplicates — and write, in bulk batches with the same change
trail as the customers services record). Any failing row, even one discovered
only while writing, rolls the whole import back. Rows are streamed and kept
only in a compact form, so memory stays bounded for 100,000-row files.
Uploaded files are deleted after TUIJIN_IMPORT_FILE_RETENTION_DAYS
(`import_files_purge`, a daily Huey task), whatever state the job is in.

Stuck jobs: a running task renews a lease (`heartbeat_at`, and a cache key the
worker can still write while SQLite's write lock is held by the import). A job
without a heartbeat for TUIJIN_IMPORT_HEARTBEAT_TIMEOUT seconds, or waiting in
the queue longer than TUIJIN_IMPORT_QUEUE_TIMEOUT, is marked interrupted by
`import_jobs_sweep` (every minute, and when its page is viewed) and can be
started again. Restarting is safe because the import is one transaction: a
killed worker's transaction is rolled back by the database, so nothing of the
first attempt remains. When the queue cannot be reached, starting raises
`QueueUnavailable` and leaves the job in a state that can be started again.

`xlsx_response` (the export side) lives in core.xlsx and is re-exported here.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, NotFound, ServiceError, ValidationFailed
from tuijin.core.xlsx import xlsx_response  # noqa: F401  (public API of this module)
from tuijin.customers import services as customer_services
from tuijin.customers.models import Contact, Customer
from tuijin.customers.normalize import normalize_credit_code, normalize_name, normalize_phone
from tuijin.customers.selectors import customer_can_write, duplicates_find
from tuijin.customers.services import (
    DuplicateFound,
    contact_create,
    contact_update,
    customer_update,
    validate_contact_data,
    validate_customer_data,
)
from tuijin.org.models import User
from tuijin.org.selectors import user_list

from .columns import BY_KEY, CONTACT_COLUMNS, CUSTOMER_COLUMNS, choice_to_code
from .models import ImportJob
from .parsing import ImportFileError, Upload, check_upload, open_upload

logger = logging.getLogger(__name__)

# The report keeps at most this many row errors; past that the file is clearly the wrong one.
MAX_REPORTED_ERRORS = 2000
PROGRESS_TIMEOUT = 24 * 3600


def can_import(user: User) -> bool:
    """Importing creates customers, so the rule is customers.services' own create rule."""
    return bool(user and user.is_authenticated) and customer_services._can_create(user)


# ---------------------------------------------------------------------------
# Dry run: build a plan from the rows, streamed
# ---------------------------------------------------------------------------

# Cleaned values are kept per customer as compact JSON bytes (positional lists), not as dicts of
# Python strings: a 100,000-row file held as dicts measured ~490 MB, this way ~1 KB a customer.
_CUSTOMER_KEYS = [c.field for c in CUSTOMER_COLUMNS]
_CONTACT_KEYS = [c.field for c in CONTACT_COLUMNS]
# Duplicate lookups against the database: one IN query per this many customers and field.
LOOKUP_CHUNK = 2000


def _pack(keys: list[str], data: dict) -> bytes:
    return json.dumps([data.get(k) for k in keys], ensure_ascii=False, separators=(",", ":")).encode()


def _unpack(keys: list[str], blob: bytes) -> dict:
    return {k: v for k, v in zip(keys, json.loads(blob), strict=True) if v is not None}


class Group:
    """One customer in the file: its first row plus continuation rows that add contacts."""

    __slots__ = ("first_row", "name_norm", "blob", "overrides", "owner_id", "owner_row", "contacts",
                 "n_rows", "action", "existing_id")

    def __init__(self, first_row: int, name_norm: str, customer: dict, owner_id: int, owner_row: int | None):
        self.first_row, self.name_norm = first_row, name_norm
        self.blob = _pack(_CUSTOMER_KEYS, customer)
        self.overrides: dict[str, int] | None = None  # customer field → continuation row that set it
        self.owner_id, self.owner_row = owner_id, owner_row
        self.contacts: list[tuple[int, bytes]] = []
        self.n_rows = 1
        self.action = "create"  # create / update / skip
        self.existing_id: int | None = None

    @property
    def customer(self) -> dict:
        return _unpack(_CUSTOMER_KEYS, self.blob)

    def field_row(self, key: str) -> int:
        return (self.overrides or {}).get(key, self.first_row)

    def contact_list(self, *, primary_first: bool = False) -> list[tuple[int, dict]]:
        out = [(row, _unpack(_CONTACT_KEYS, blob)) for row, blob in self.contacts]
        if primary_first and out:
            # The first contact listed for a new customer becomes its primary contact.
            out[0][1]["is_primary"] = True
        return out


@dataclass
class Plan:
    groups: list[Group]
    errors: list[dict]
    error_count: int
    bad_rows: int
    duplicates: list[dict]
    report: dict
    owners: dict[int, User] = field(default_factory=dict)
    rows: int = 0
    contacts: int = 0
    ignored_headers: list[str] = field(default_factory=list)


class _Errors:
    """Row errors, every one counted; the report keeps the first MAX_REPORTED_ERRORS by row."""

    def __init__(self, upload: Upload):
        self.upload = upload
        self.items: list[dict] = []
        self.rows: set[int] = set()
        self.count = 0

    def add(self, row: int, key: str | None, message: str) -> None:
        self.rows.add(row)
        self.count += 1
        column = self.upload.header_of(key) if key else ""
        self.items.append({"row": row, "column": column, "message": str(message)})
        if len(self.items) >= 2 * MAX_REPORTED_ERRORS:  # a wrong file must not fill memory with errors
            self.items = self.sorted()

    def add_validation(self, row: int, prefix: str, exc: ValidationFailed) -> None:
        for fld, messages in exc.errors.items():
            key = f"{prefix}.{fld}"
            self.add(row, key if key in BY_KEY else None, " ".join(str(m) for m in messages))

    def sorted(self) -> list[dict]:
        return sorted(self.items, key=lambda e: e["row"])[:MAX_REPORTED_ERRORS]


def _row_customer_data(record: dict) -> dict:
    data = {}
    for col in CUSTOMER_COLUMNS:
        value = record.get(col.key, "")
        if value or col.field == "name":
            data[col.field] = choice_to_code(col, value)
    return data


def _row_contact_data(record: dict) -> dict:
    data = {}
    for col in CONTACT_COLUMNS:
        value = record.get(col.key, "")
        if value:
            data[col.field] = choice_to_code(col, value)
    return data


def _validate_rows(*, actor: User, upload: Upload, errors: _Errors) -> Plan:
    """Validate every row as it streams past and group rows into customers; no database writes.

    Reads nothing from the database but the importer's visible users, so the import job runs
    it before taking the write lock.
    """
    owners = {u.username: u for u in user_list(user=actor)}
    groups: dict[str, Group] = {}
    phone_owner: dict[str, int] = {}  # normalised phone → first row of the group that has it
    code_owner: dict[str, int] = {}
    n_rows = n_contacts = 0

    for row, record in upload.rows():
        n_rows += 1
        customer = None
        try:
            customer = validate_customer_data(_row_customer_data(record))
        except ValidationFailed as exc:
            errors.add_validation(row, "customer", exc)
        owner = actor
        username = record.get("owner", "")
        if username:
            owner = owners.get(username)
            if owner is None:
                errors.add(row, "owner", _("用户“%(username)s”不存在、已停用或不在你的可见范围内") % {"username": username})
        contact = None
        contact_data = _row_contact_data(record)
        if contact_data:
            try:
                contact = validate_contact_data(contact_data)
            except ValidationFailed as exc:
                errors.add_validation(row, "contact", exc)
        if customer is None:
            continue
        norm = normalize_name(customer["name"])
        group = groups.get(norm)
        if group is None:
            group = Group(row, norm, customer, (owner or actor).pk, row if username else None)
            groups[norm] = group
            for key, index, value in (
                ("customer.phone", phone_owner, normalize_phone(customer.get("phone", ""))),
                ("customer.credit_code", code_owner, normalize_credit_code(customer.get("credit_code", ""))),
            ):
                if key == "customer.phone" and len(value) < 7:
                    continue
                if value and value in index:
                    errors.add(row, key, _("与第%(row)s行的客户重复") % {"row": index[value]})
                elif value:
                    index[value] = row
        else:
            _merge_continuation(group, customer, row, errors)
            if username and owner is not None:
                if group.owner_row is not None and group.owner_id != owner.pk:
                    errors.add(row, "owner", _("与第%(row)s行同名客户的负责人不一致") % {"row": group.owner_row})
                elif group.owner_row is None:
                    group.owner_id, group.owner_row = owner.pk, row
            group.n_rows += 1
        if contact is not None:
            group.contacts.append((row, _pack(_CONTACT_KEYS, contact)))
            n_contacts += 1
    if not n_rows:
        raise ImportFileError(_("文件只有表头，没有数据行"))
    return Plan(groups=list(groups.values()), errors=[], error_count=0, bad_rows=0, duplicates=[], report={},
                owners={u.pk: u for u in owners.values()} | {actor.pk: actor}, rows=n_rows,
                contacts=n_contacts, ignored_headers=upload.ignored_headers)


def _merge_continuation(group: Group, customer: dict, row: int, errors: _Errors) -> None:
    """A continuation row may leave customer columns empty, but must not contradict them."""
    current, changed = group.customer, False
    for key, value in customer.items():
        if key == "name" or value in ("", []):
            continue
        if current.get(key) in (None, "", []):
            current[key] = value
            group.overrides = {**(group.overrides or {}), key: row}
            changed = True
        elif current[key] != value:
            errors.add(row, f"customer.{key}", _("与第%(row)s行同名客户的值不一致") % {"row": group.field_row(key)})
    if changed:
        group.blob = _pack(_CUSTOMER_KEYS, current)


def _finish(plan: Plan, errors: _Errors, dup_mode: str) -> Plan:
    plan.errors, plan.error_count, plan.bad_rows = errors.sorted(), errors.count, len(errors.rows)
    counts = {a: 0 for a in ("create", "update", "skip")}
    for g in plan.groups:
        counts[g.action] += 1
    plan.report = {
        "rows": plan.rows,
        "good_rows": plan.rows - plan.bad_rows,
        "bad_rows": plan.bad_rows,
        "customers": len(plan.groups),
        "contacts": plan.contacts,
        **counts,
        "dup_mode": dup_mode,
        "error_count": plan.error_count,
        "errors": plan.errors,
        "duplicates": plan.duplicates[:MAX_REPORTED_ERRORS],
        "ignored_headers": plan.ignored_headers,
    }
    return plan


def build_plan(*, actor: User, upload: Upload, dup_mode: str) -> Plan:
    """Validate every row without writing; the plan says what the import would do."""
    errors = _Errors(upload)
    plan = _validate_rows(actor=actor, upload=upload, errors=errors)
    plan.duplicates = _find_db_duplicates(actor=actor, groups=plan.groups, dup_mode=dup_mode, errors=errors)
    return _finish(plan, errors, dup_mode)


def _chunks(values, size=LOOKUP_CHUNK):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _numbers(g: Group) -> tuple[str, list[str]]:
    """The customer's phone and its contacts' numbers, as customer_create passes them to duplicates_find."""
    customer_phone = g.customer.get("phone", "")
    contact_phones = [str(c.get(k) or "") for _row, c in g.contact_list() for k in ("mobile", "phone")]
    return customer_phone, [p for p in contact_phones if p]


def _candidate_groups(groups: list[Group]) -> list[Group]:
    """Groups that may match an existing customer, found with a few IN queries per chunk of customers.

    duplicates_find is the authority on what counts as a duplicate, but calling
    it for every row of a 100,000-row file would cost 100,000 queries; this narrows
    the calls down to the rows that share a name, number or code with the database.
    """
    out = []
    for chunk in _chunks(groups):
        keys = []
        for g in chunk:
            customer_phone, contact_phones = _numbers(g)
            numbers = {d for p in (customer_phone, *contact_phones) if len(d := normalize_phone(p)) >= 7}
            keys.append((g, numbers, normalize_credit_code(g.customer.get("credit_code", ""))))
        names = [g.name_norm for g in chunk if g.name_norm]
        phones = list(set().union(*(n for _g, n, _c in keys)))
        codes = list({c for _g, _n, c in keys if c})
        hit_names = set(Customer.objects.filter(name_normalized__in=names).values_list("name_normalized", flat=True))
        hit_phones, hit_codes = set(), set()
        if phones:
            hit_phones |= set(Customer.objects.filter(phone_normalized__in=phones)
                              .values_list("phone_normalized", flat=True))
            hit_phones |= set(Contact.objects.filter(phone_normalized__in=phones)
                              .values_list("phone_normalized", flat=True))
        if codes:
            hit_codes = set(Customer.objects.filter(credit_code__in=codes).values_list("credit_code", flat=True))
        out += [g for g, n, c in keys if g.name_norm in hit_names or n & hit_phones or c in hit_codes]
    return out


def _find_db_duplicates(*, actor: User, groups: list[Group], dup_mode: str, errors: _Errors) -> list[dict]:
    out = []
    claimed: dict[int, int] = {}  # existing customer id → file row that updates it
    upload = errors.upload
    for g in _candidate_groups(groups):
        customer = g.customer
        customer_phone, contact_phones = _numbers(g)
        matches = duplicates_find(name=customer["name"], phone=customer_phone,
                                  credit_code=customer.get("credit_code", ""), phones=contact_phones)
        if not matches:
            continue
        matched = sorted({f for m in matches for f in m["matched"]})
        owners = sorted({m["owner"] for m in matches})
        entry = {
            "row": g.first_row,
            "name": customer["name"],
            "matched": [upload.header_of(f"customer.{f}") for f in matched],
            "owner": "、".join(owners),
            "action": "skip",
        }
        out.append(entry)
        if dup_mode != ImportJob.DupMode.UPDATE:
            g.action = "skip"
            continue
        if len(matches) > 1:
            errors.add(g.first_row, "customer.name", _("与%(n)s个已有客户重复（负责人：%(owners)s），无法确定更新哪一个") % {
                "n": len(matches), "owners": entry["owner"]})
            entry["action"] = "error"
            continue
        existing = Customer.objects.get(pk=matches[0]["id"])
        if not customer_can_write(user=actor, customer=existing):
            # Only the owner's name: the customer's details belong to someone else (K2).
            errors.add(g.first_row, "customer.name", _("该客户已存在，负责人为%(owner)s，你无权更新") % {
                "owner": matches[0]["owner"]})
            entry["action"] = "error"
            continue
        if existing.pk in claimed:
            errors.add(g.first_row, "customer.name", _("与第%(row)s行对应同一个已有客户，无法同时更新") % {
                "row": claimed[existing.pk]})
            entry["action"] = "error"
            continue
        claimed[existing.pk] = g.first_row
        g.action, g.existing_id, entry["action"] = "update", existing.pk, "update"
    return out


def _recheck_owners(*, actor: User, plan: Plan, errors: _Errors) -> None:
    """Owners validated before the write lock must still be active users the importer can see."""
    visible = set(user_list(user=actor).values_list("pk", flat=True))
    for g in plan.groups:
        if g.owner_id not in visible and g.owner_id != actor.pk:
            owner = plan.owners.get(g.owner_id)
            errors.add(g.owner_row or g.first_row, "owner", _("用户“%(username)s”不存在、已停用或不在你的可见范围内") % {
                "username": owner.username if owner else g.owner_id})


# ---------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------


class QueueUnavailable(ServiceError):
    """The task queue (Redis, or the Huey store) could not be reached; the job can be started again later."""

    def __init__(self, job: ImportJob):
        self.job = job
        super().__init__(_("任务队列暂时无法连接，任务没有开始；请稍后重试"))


def import_job_create(*, actor: User, filename: str, data: bytes, dup_mode: str = "skip") -> ImportJob:
    """Store the upload and queue its dry run (parse, validate every row) in the worker. Writes no customers.

    Raises ImportFileError for what is wrong without parsing (type, size, an .xlsx package's bounds):
    then no job is stored. A file that fails while parsing gives a failed job with the message.
    Raises QueueUnavailable (the job is stored, interrupted, and can be started again).
    """
    if not can_import(actor):
        raise Forbidden(_("你的角色不能导入客户"))
    if dup_mode not in ImportJob.DupMode.values:
        raise ValidationFailed({"dup_mode": _("无效的重复处理方式")})
    check_upload(filename, data)
    with transaction.atomic():
        job = ImportJob.objects.create(
            created_by=actor, filename=filename[:255], file_data=data, dup_mode=dup_mode,
            status=ImportJob.Status.VALIDATING, queued_at=timezone.now(),
        )
        audit.record(actor=actor, obj=job, action="create", changes={
            "filename": [None, job.filename], "dup_mode": [None, dup_mode], "size": [None, len(data)],
        })
    progress_set(job.pk, 0, 0)
    _enqueue(job, ImportJob.Status.VALIDATING, back_to=ImportJob.Status.INTERRUPTED)
    job.refresh_from_db()
    return job


def import_job_validate(*, job_id: int) -> None:
    """The dry run, in the worker: parse and validate the stored file, store the report (or the file's error)."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.VALIDATING,
                                       heartbeat_at__isnull=True).update(heartbeat_at=now, queued_at=None)
    if not claimed:  # a duplicate delivery, or the job was interrupted or purged meanwhile
        return
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    error, report = "", None
    with _lease(job.pk):
        try:
            upload = open_upload(job.filename, bytes(job.file_data))
            upload.on_progress = lambda rows: progress_set(job.pk, rows, 0)
            plan = build_plan(actor=job.created_by, upload=upload, dup_mode=job.dup_mode)
            report = plan.report
            del plan
        except ImportFileError as exc:
            error = str(exc)
        except Exception:
            logger.exception("dry run of import job %s failed", job.pk)
            error = _("校验文件时发生内部错误")
    with transaction.atomic():
        if report is not None:
            fields = {"status": ImportJob.Status.VALIDATED, "report": report, "total_rows": report["rows"]}
        else:
            fields = {"status": ImportJob.Status.FAILED, "error": error, "finished_at": timezone.now()}
        if ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.VALIDATING).update(heartbeat_at=None, **fields):
            audit.record(actor=job.created_by, obj=job, action="validate", changes={
                "status": [ImportJob.Status.VALIDATING, fields["status"]],
                "errors": [None, report["error_count"] if report else error]})


def import_job_start(*, actor: User, job: ImportJob) -> ImportJob:
    """Queue a validated job, or start an interrupted one again; the work runs in the Huey worker.

    An interrupted import re-runs from the start: its first attempt was rolled back as a whole.
    An interrupted dry run is queued again. Raises QueueUnavailable when the queue cannot be reached
    (the job keeps its status, so starting can be retried).
    """
    if job.created_by_id != actor.pk:
        raise NotFound("import job")
    if not can_import(actor):
        raise Forbidden(_("你的角色不能导入客户"))
    import_job_check_stale(job)
    with transaction.atomic():
        current = ImportJob.objects.defer("file_data").get(pk=job.pk)
        status = current.status
        dry_run_done = "rows" in (current.report or {})
        if status == ImportJob.Status.INTERRUPTED and not dry_run_done:
            target = ImportJob.Status.VALIDATING
        elif status in (ImportJob.Status.VALIDATED, ImportJob.Status.INTERRUPTED):
            target = ImportJob.Status.QUEUED
        else:
            raise ValidationFailed({"status": _("该导入任务已经开始或已结束")})
        if target == ImportJob.Status.QUEUED and current.report.get("error_count"):
            raise ValidationFailed({"file": _("文件中有错误，请修改后重新上传")})
        if not ImportJob.objects.filter(pk=job.pk).exclude(file_data=b"").exists():
            raise ValidationFailed({"file": _("上传的文件已按保留期限删除，请重新上传")})
        updated = ImportJob.objects.filter(pk=job.pk, status=status).update(
            status=target, queued_at=timezone.now(), heartbeat_at=None, error="", finished_at=None)
        if not updated:
            raise ValidationFailed({"status": _("该导入任务已经开始或已结束")})
        audit.record(actor=actor, obj=job, action="start" if status == ImportJob.Status.VALIDATED else "restart",
                     changes={"status": [status, target]})
    job.refresh_from_db()
    progress_set(job.pk, 0, job.total_rows)
    _enqueue(job, target, back_to=status)
    job.refresh_from_db()
    return job


def _enqueue(job: ImportJob, status: str, *, back_to: str) -> None:
    """Queue the job's task after its status committed (immediate mode runs it right here).

    If the queue cannot be reached, the job goes back to `back_to` with the reason and QueueUnavailable
    is raised: nothing was queued, so nothing will run, and "start" can simply be tried again.
    """
    from . import tasks

    task = tasks.import_job_validate_task if status == ImportJob.Status.VALIDATING else tasks.import_job_run_task
    try:
        task(job.pk)
        return
    except Exception:
        logger.exception("could not enqueue import job %s", job.pk)
    error = QueueUnavailable(job)
    with transaction.atomic():
        fields = {"status": back_to, "queued_at": None, "error": str(error)}
        if back_to == ImportJob.Status.INTERRUPTED:
            fields["finished_at"] = timezone.now()
        if ImportJob.objects.filter(pk=job.pk, status=status, heartbeat_at__isnull=True).update(**fields):
            audit.record(actor=job.created_by, obj=job, action="enqueue_failed",
                         changes={"status": [status, back_to], "error": [None, str(error)]})
    job.refresh_from_db()
    raise error


class ImportAborted(Exception):
    def __init__(self, errors: list[dict], report: dict | None = None, count: int | None = None):
        self.errors = errors
        self.report = report
        self.count = len(errors) if count is None else count
        super().__init__(f"{self.count} row errors")


def _progress_key(job_id: int) -> str:
    return f"tuijin:excel:import:{job_id}:progress"


def _cache_set(key: str, value) -> None:
    # The cache is Redis when REDIS_URL is set: progress and heartbeats are best effort, never a 500.
    try:
        cache.set(key, value, PROGRESS_TIMEOUT)
    except Exception:
        logger.warning("cache unavailable, %s not written", key, exc_info=True)


def _cache_get(key: str):
    try:
        return cache.get(key)
    except Exception:
        logger.warning("cache unavailable, %s not read", key, exc_info=True)
        return None


def progress_set(job_id: int, done: int, total: int) -> None:
    _cache_set(_progress_key(job_id), {"done": done, "total": total})


def progress_get(job: ImportJob) -> dict:
    """Rows processed / total; a finished job is 100% whatever the cache says.

    During the dry run the total is not known yet: `done` counts the rows read so far.
    """
    total = job.total_rows or 0
    data = _cache_get(_progress_key(job.pk)) or {}
    if job.status == ImportJob.Status.DONE:
        done = total
    elif job.status == ImportJob.Status.VALIDATING:
        return {"done": int(data.get("done", 0)), "total": 0, "percent": 0}
    else:
        done = min(int(data.get("done", 0)), total)
    percent = 100 if total == 0 and job.status == ImportJob.Status.DONE else (done * 100 // total if total else 0)
    return {"done": done, "total": total, "percent": percent}


# ---------------------------------------------------------------------------
# Lease: heartbeats of a running task, and the sweep of stuck jobs
# ---------------------------------------------------------------------------

_ACTIVE = (ImportJob.Status.VALIDATING, ImportJob.Status.QUEUED, ImportJob.Status.RUNNING)


def _heartbeat_key(job_id: int) -> str:
    return f"tuijin:excel:import:{job_id}:heartbeat"


class _Lease:
    writing = False  # set while the import's own transaction holds SQLite's write lock


def _heartbeat(job_id: int, lease: _Lease) -> None:
    now = timezone.now()
    _cache_set(_heartbeat_key(job_id), now.timestamp())
    if lease.writing and connection.vendor == "sqlite":
        return  # the row cannot be written now; the cache key carries the heartbeat until the commit
    try:
        ImportJob.objects.filter(pk=job_id, status__in=_ACTIVE).update(heartbeat_at=now)
    except DatabaseError:
        logger.warning("could not renew the heartbeat of import job %s", job_id, exc_info=True)


@contextmanager
def _lease(job_id: int):
    """Renew the job's heartbeat from a thread while the task runs (a long query blocks no heartbeat)."""
    lease, stop = _Lease(), threading.Event()
    interval = max(0.5, settings.TUIJIN_IMPORT_HEARTBEAT_TIMEOUT / 4)

    def beat():
        try:
            while not stop.wait(interval):
                _heartbeat(job_id, lease)
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=beat, name=f"import-{job_id}-heartbeat", daemon=True)
    _cache_set(_heartbeat_key(job_id), timezone.now().timestamp())
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        # Not waiting long: the thread may be inside a database call that waits for a lock (it is a
        # daemon and exits after that call; the job's status no longer counts as active anyway).
        thread.join(timeout=1)
        try:
            cache.delete(_heartbeat_key(job_id))  # an ended task must not look alive
        except Exception:
            logger.warning("cache unavailable, heartbeat of import job %s not cleared", job_id, exc_info=True)


def _stale_q(now) -> Q:
    beat_cut = now - timedelta(seconds=settings.TUIJIN_IMPORT_HEARTBEAT_TIMEOUT)
    queue_cut = now - timedelta(seconds=settings.TUIJIN_IMPORT_QUEUE_TIMEOUT)
    running = Q(status__in=[ImportJob.Status.VALIDATING, ImportJob.Status.RUNNING], heartbeat_at__lt=beat_cut)
    # Rows from before heartbeats existed: running, never renewed.
    legacy = Q(status=ImportJob.Status.RUNNING, heartbeat_at__isnull=True) & (
        Q(started_at__lt=beat_cut) | Q(started_at__isnull=True))
    waiting = Q(status__in=[ImportJob.Status.VALIDATING, ImportJob.Status.QUEUED], heartbeat_at__isnull=True) & (
        Q(queued_at__lt=queue_cut) | Q(queued_at__isnull=True, created_at__lt=queue_cut))
    return running | legacy | waiting


def _alive_in_cache(job_id: int, now) -> bool:
    beat = _cache_get(_heartbeat_key(job_id))
    return beat is not None and now.timestamp() - float(beat) < settings.TUIJIN_IMPORT_HEARTBEAT_TIMEOUT


def import_jobs_sweep(*, now=None, job_ids=None) -> int:
    """Mark stuck jobs interrupted (their worker died, or their task was lost); returns how many.

    Each update re-checks the status and heartbeat it read, so a job that renewed its lease or
    finished meanwhile is left alone. Idempotent; runs every minute and when a job's page is viewed.
    """
    now = now or timezone.now()
    candidates = ImportJob.objects.filter(_stale_q(now)).only("id", "status", "heartbeat_at", "filename",
                                                                "created_by_id")
    if job_ids is not None:
        candidates = candidates.filter(pk__in=job_ids)
    stale = [j for j in candidates if not _alive_in_cache(j.pk, now)]
    if not stale:
        return 0
    messages = {
        ImportJob.Status.RUNNING: _("导入中断（后台进程停止或失去响应），没有写入任何数据；可以重新开始"),
        ImportJob.Status.VALIDATING: _("文件校验中断（后台进程停止或失去响应）；可以重新开始"),
        ImportJob.Status.QUEUED: _("任务在队列中等待超时，没有写入任何数据；可以重新开始"),
    }
    count, entries = 0, []
    with transaction.atomic():
        for job in stale:
            message = messages[job.status]
            if job.status == ImportJob.Status.VALIDATING and job.heartbeat_at is None:
                message = messages[ImportJob.Status.QUEUED]
            if ImportJob.objects.filter(pk=job.pk, status=job.status, heartbeat_at=job.heartbeat_at).update(
                status=ImportJob.Status.INTERRUPTED, error=message, finished_at=now, heartbeat_at=None,
                queued_at=None,
            ):
                count += 1
                entries.append((job, "interrupted", {"status": [job.status, ImportJob.Status.INTERRUPTED],
                                                     "error": [None, message]}, None, None, None))
        if entries:
            audit.record_many(actor=None, entries=entries)
    return count


def import_job_check_stale(job: ImportJob) -> ImportJob:
    """On viewing a job: if its lease ran out, mark it interrupted now. Polls of a healthy job only read."""
    if job.status not in _ACTIVE:
        return job
    now = timezone.now()
    if not ImportJob.objects.filter(_stale_q(now), pk=job.pk).exists() or _alive_in_cache(job.pk, now):
        return job
    try:
        import_jobs_sweep(now=now, job_ids=[job.pk])
    except DatabaseError:  # SQLite's write lock is busy; the periodic sweep will get it
        logger.warning("could not mark import job %s interrupted", job.pk, exc_info=True)
        return job
    job.refresh_from_db()
    return job


def _late_errors(g: Group, contacts: list[tuple[int, dict]], exc: Exception, upload: Upload) -> list[dict]:
    """A service refused a row while writing: point at the row and column like the dry run does."""
    errs = _Errors(upload)
    if isinstance(exc, DuplicateFound):
        owners = "、".join(sorted({m["owner"] for m in exc.matches}))
        errs.add(g.first_row, "customer.name", _("与已有客户重复（负责人：%(owner)s）") % {"owner": owners})
    elif isinstance(exc, ValidationFailed):
        for key, messages in exc.errors.items():
            row, col = g.first_row, f"customer.{key}"
            if key.startswith("contacts["):
                index = int(key[len("contacts["): key.index("]")])
                row = contacts[index][0] if index < len(contacts) else g.first_row
                col = "contact." + key.split(".", 1)[-1]
            errs.add(row, col if col in BY_KEY else None, " ".join(str(m) for m in messages))
    else:
        errs.add(g.first_row, None, str(exc))
    return errs.items


def _apply_group(*, actor: User, g: Group, owners: dict[int, User], upload: Upload) -> None:
    contacts = g.contact_list(primary_first=g.action == "create")
    try:
        if g.action == "create":
            customer_services.customer_create(
                actor=actor, owner=owners.get(g.owner_id, actor), contacts=[c for _row, c in contacts], **g.customer
            )
            return
        customer = Customer.objects.get(pk=g.existing_id)
        fields = {k: v for k, v in g.customer.items() if v not in ("", [], None)}
        customer = customer_update(actor=actor, customer=customer, **fields)
        existing = {normalize_name(c.name): c for c in customer.contacts.all()}
        for _row, data in contacts:
            match = existing.get(normalize_name(data["name"]))
            if match is None:
                existing[normalize_name(data["name"])] = contact_create(actor=actor, customer=customer, **data)
            else:
                contact_update(actor=actor, contact=match,
                               **{k: v for k, v in data.items() if v and k != "is_primary"})
    except (ValidationFailed, Forbidden) as exc:
        raise ImportAborted(_late_errors(g, contacts, exc, upload))


# Files with at least this many new customers are written in batches (see _create_batch).
BULK_MIN_CUSTOMERS = 500
BULK_BATCH = 1000


_PLAIN = (str, int, bool)


def _created(obj, fields) -> dict:
    """Same result as audit.diff({}, audit.snapshot(obj, fields)), ~3x cheaper.

    Runs for 200,000 objects in a 100,000-row import; plain values (all of a new
    customer's or contact's audited fields) skip to_jsonable's type checks.
    """
    out = {}
    for name, attname in _attnames(type(obj), tuple(fields)):
        value = getattr(obj, attname)
        if value is not None:
            out[name] = [None, value if type(value) in _PLAIN else audit.to_jsonable(value)]
    return out


@functools.cache
def _attnames(model, fields: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(name, model._meta.get_field(name).attname) for name in fields]


def _create_batch(*, actor: User, groups: list[Group]) -> None:
    """Create customers and contacts with a few bulk INSERTs and one audit chain extension.

    Why not customer_create per row: measured on SQLite, 10,000 rows took 77 s that way
    (its per-row duplicate query scans contacts, so the cost grows with the table), and
    the import's transaction holds SQLite's write lock all that time, so other users'
    saves time out. Here the rows were validated (validate_customer_data /
    validate_contact_data) before the transaction and checked for duplicates
    (duplicates_find) inside it, and the audit events carry exactly the fields
    customer_create and contact creation record. If customer_create ever gains side
    effects (notifications, assignment rules), they must be added here too.
    """
    customers = []
    for g in groups:
        customer = Customer(owner_id=g.owner_id, **g.customer)
        customer_services._denormalize(customer)
        customers.append(customer)
    Customer.objects.bulk_create(customers)
    contacts: list[list[Contact]] = []
    for g, customer in zip(groups, customers, strict=True):
        own = []
        for _row, data in g.contact_list(primary_first=True):
            contact = Contact(customer=customer, **data)
            contact.phone_normalized = normalize_phone(contact.mobile or contact.phone)
            own.append(contact)
        contacts.append(own)
    Contact.objects.bulk_create([c for own in contacts for c in own])
    entries = []
    for customer, own in zip(customers, contacts, strict=True):
        entries.append((customer, "create", _created(customer, customer_services.CUSTOMER_AUDIT_FIELDS),
                        None, None, None))
        for contact in own:
            changes = _created(contact, customer_services.CONTACT_FIELDS)
            changes["customer"] = [None, customer.pk]
            entries.append((contact, "create", changes, None, None, None))
    audit.record_many(actor=actor, entries=entries)


def _write_plan(*, actor: User, plan: Plan, upload: Upload, progress) -> None:
    creates = [g for g in plan.groups if g.action == "create"]
    bulk = len(creates) >= BULK_MIN_CUSTOMERS
    if bulk:
        for i in range(0, len(creates), BULK_BATCH):
            batch = creates[i : i + BULK_BATCH]
            _create_batch(actor=actor, groups=batch)
            progress(sum(g.n_rows for g in batch))
    for g in plan.groups:
        if g.action == "skip" or (bulk and g.action == "create"):
            if g.action == "skip":
                progress(g.n_rows)
            continue
        _apply_group(actor=actor, g=g, owners=plan.owners, upload=upload)
        progress(g.n_rows)


def import_job_run(*, job_id: int) -> ImportJob:
    """Re-validate and write the whole file in one transaction; called by the Huey task.

    Reading and validating the rows needs no lock, so it happens before the
    transaction; under the write lock only what the database can have changed
    since then is checked again (owners still visible and active, duplicates),
    then everything is written.
    """
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    now = timezone.now()
    started = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now, heartbeat_at=now, queued_at=None
    )
    if not started:  # a duplicate delivery of the task, or the job was never started
        return job
    job.status, job.started_at = ImportJob.Status.RUNNING, now
    with _lease(job.pk) as lease:
        return _run(job, lease)


def _run(job: ImportJob, lease: _Lease) -> ImportJob:
    actor = job.created_by
    total = job.total_rows
    progress_set(job.pk, 0, total)
    try:
        upload = open_upload(job.filename, bytes(job.file_data))
        errors = _Errors(upload)
        plan = _validate_rows(actor=actor, upload=upload, errors=errors)
        lease.writing = True
        with transaction.atomic():
            if not can_import(actor):
                raise Forbidden(_("你的角色不能导入客户"))
            _recheck_owners(actor=actor, plan=plan, errors=errors)
            plan.duplicates = _find_db_duplicates(actor=actor, groups=plan.groups, dup_mode=job.dup_mode,
                                                  errors=errors)
            plan = _finish(plan, errors, job.dup_mode)
            if plan.error_count:
                raise ImportAborted(plan.errors, plan.report, plan.error_count)
            state = {"done": 0, "mark": 0, "at": time.monotonic()}
            step = max(1, total // 100)

            def progress(rows: int) -> None:
                # About 100 cache writes per import, or one a second, whichever is fewer.
                state["done"] += rows
                if state["done"] >= state["mark"] or time.monotonic() - state["at"] > 1:
                    progress_set(job.pk, state["done"], total)
                    state["mark"], state["at"] = state["done"] + step, time.monotonic()

            _write_plan(actor=actor, plan=plan, upload=upload, progress=progress)
            counts = plan.report
            job.status = ImportJob.Status.DONE
            job.created_count, job.updated_count, job.skipped_count = counts["create"], counts["update"], counts["skip"]
            job.total_rows = plan.rows
            job.report = plan.report
            job.finished_at = timezone.now()
            # Only if still ours: a job marked interrupted meanwhile may already run again, so this
            # attempt rolls back instead of importing the file twice.
            if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(
                status=job.status, created_count=job.created_count, updated_count=job.updated_count,
                skipped_count=job.skipped_count, total_rows=job.total_rows, report=job.report,
                finished_at=job.finished_at, heartbeat_at=None,
            ):
                raise ImportAborted([], None, 0)
            audit.record(actor=actor, obj=job, action="import", changes={
                "status": [ImportJob.Status.RUNNING, ImportJob.Status.DONE],
                "created": [None, job.created_count], "updated": [None, job.updated_count],
                "skipped": [None, job.skipped_count],
            })
        progress_set(job.pk, job.total_rows, job.total_rows)
        return job
    except ImportAborted as exc:
        if not exc.count and not exc.errors:  # lost the lease (see above): leave the job to its new owner
            logger.warning("import job %s was interrupted while it ran; its writes were rolled back", job.pk)
            job.refresh_from_db()
            return job
        report = dict(exc.report or job.report)
        report["errors"] = exc.errors[:MAX_REPORTED_ERRORS]
        report["error_count"] = exc.count
        return _fail(job, _("导入已取消，没有写入任何数据：%(n)s处错误") % {"n": exc.count}, report)
    except (ImportFileError, Forbidden) as exc:
        return _fail(job, str(exc))
    except Exception:
        logger.exception("import job %s failed", job.pk)
        return _fail(job, _("导入时发生内部错误，没有写入任何数据"))


def _fail(job: ImportJob, message: str, report: dict | None = None) -> ImportJob:
    fields = {"status": ImportJob.Status.FAILED, "error": message, "finished_at": timezone.now(),
              "created_count": 0, "updated_count": 0, "skipped_count": 0, "heartbeat_at": None}
    if report is not None:
        fields["report"] = report
    with transaction.atomic():
        if not ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.RUNNING).update(**fields):
            job.refresh_from_db()  # interrupted meanwhile (and maybe started again): not ours to fail
            return job
        audit.record(actor=job.created_by, obj=job, action="import_failed",
                     changes={"status": [ImportJob.Status.RUNNING, ImportJob.Status.FAILED], "error": [None, message]})
    job.refresh_from_db()
    return job


# ---------------------------------------------------------------------------
# Retention of uploaded files
# ---------------------------------------------------------------------------


def import_files_purge(*, now=None) -> int:
    """Delete the stored upload of every job uploaded N days ago, whatever its state.

    Stuck jobs are swept first (so a job whose worker died is interrupted, not "running"); a job still
    running with a live lease keeps its file until it ends. The job row and its report stay (they are
    the record of what was imported); only the file, which may hold thousands of customers' contact
    details, goes. A job that could still run (validated, queued, interrupted) is marked failed,
    since it cannot run without its file. Returns the number of files deleted. Idempotent: a purged
    job has an empty file and is not selected again.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.TUIJIN_IMPORT_FILE_RETENTION_DAYS)
    import_jobs_sweep(now=now)
    message = _("上传的文件已按保留期限删除")
    purged = 0
    with transaction.atomic():
        jobs = list(
            ImportJob.objects.select_for_update()
            .filter(created_at__lt=cutoff)
            .exclude(status__in=[ImportJob.Status.RUNNING, ImportJob.Status.VALIDATING])
            .exclude(file_data=b"")
            .defer("file_data", "report")
        )
        entries = []
        for job in jobs:
            fields = {"file_data": b""}
            changes = {"file": [job.filename, None]}
            if job.status not in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
                fields.update(status=ImportJob.Status.FAILED, error=message, finished_at=now, queued_at=None)
                changes["status"] = [job.status, ImportJob.Status.FAILED]
            purged += ImportJob.objects.filter(pk=job.pk, status=job.status).update(**fields)
            entries.append((job, "file_purged", changes, None, None, None))
        if entries:
            audit.record_many(actor=None, entries=entries)
    return purged
