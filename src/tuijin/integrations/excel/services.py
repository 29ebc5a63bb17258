"""Importing customers with contacts from a spreadsheet, all or nothing (SPEC P4, K2, K7).

The flow is upload → dry run (`import_job_create`: parse, validate every row,
find duplicates, store the report) → start (`import_job_start`: queue a Huey
task) → run (`import_job_run`: re-parse and re-validate inside ONE
transaction, then write through the customers services so the change trail is
the same as for hand-made records). Any failing row, even one discovered only
while writing, rolls the whole import back.

`xlsx_response` (the export side) lives in exporting.py and is re-exported here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, NotFound, ValidationFailed
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
from .exporting import xlsx_response  # noqa: F401  (public API of this module)
from .models import ImportJob
from .parsing import ImportFileError, ParsedFile, parse_upload

logger = logging.getLogger(__name__)

# The report keeps at most this many row errors; past that the file is clearly the wrong one.
MAX_REPORTED_ERRORS = 2000
PROGRESS_TIMEOUT = 24 * 3600


def can_import(user: User) -> bool:
    """Importing creates customers, so the rule is customers.services' own create rule."""
    return bool(user and user.is_authenticated) and customer_services._can_create(user)


# ---------------------------------------------------------------------------
# Dry run: build a plan from the parsed rows
# ---------------------------------------------------------------------------


@dataclass
class Group:
    """One customer in the file: its first row plus continuation rows that add contacts."""

    first_row: int
    name_norm: str
    customer: dict
    field_rows: dict[str, int]  # customer field (or "owner") → row that set it
    owner: User
    contacts: list[tuple[int, dict]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    action: str = "create"  # create / update / skip
    existing_id: int | None = None


@dataclass
class Plan:
    groups: list[Group]
    errors: list[dict]
    duplicates: list[dict]
    report: dict


class _Errors:
    def __init__(self, parsed: ParsedFile):
        self.parsed = parsed
        self.items: list[dict] = []
        self.rows: set[int] = set()

    def add(self, row: int, key: str | None, message: str) -> None:
        self.rows.add(row)
        column = self.parsed.header_of(key) if key else ""
        self.items.append({"row": row, "column": column, "message": str(message)})

    def add_validation(self, row: int, prefix: str, exc: ValidationFailed) -> None:
        for fld, messages in exc.errors.items():
            key = f"{prefix}.{fld}"
            self.add(row, key if key in BY_KEY else None, " ".join(str(m) for m in messages))


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


def build_plan(*, actor: User, parsed: ParsedFile, dup_mode: str) -> Plan:
    """Validate every row without writing; the plan says what the import would do."""
    errors = _Errors(parsed)
    owners = {u.username: u for u in user_list(user=actor)}
    groups: dict[str, Group] = {}
    phone_owner: dict[str, int] = {}  # normalised phone → first row of the group that has it
    code_owner: dict[str, int] = {}
    n_contacts = 0

    for row, record in parsed.rows:
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
            group = Group(first_row=row, name_norm=norm, customer=customer,
                          field_rows={k: row for k in customer}, owner=owner or actor)
            if username:
                group.field_rows["owner"] = row
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
            # A continuation row may leave customer columns empty, but must not contradict them.
            for key, value in customer.items():
                if key == "name" or value in ("", []):
                    continue
                if group.customer.get(key) in (None, "", []):
                    group.customer[key] = value
                    group.field_rows[key] = row
                elif group.customer[key] != value:
                    errors.add(row, f"customer.{key}", _("与第%(row)s行同名客户的值不一致") % {
                        "row": group.field_rows.get(key, group.first_row)})
            if username and owner is not None:
                if "owner" in group.field_rows and group.owner.pk != owner.pk:
                    errors.add(row, "owner", _("与第%(row)s行同名客户的负责人不一致") % {
                        "row": group.field_rows["owner"]})
                elif "owner" not in group.field_rows:
                    group.owner, group.field_rows["owner"] = owner, row
        group.rows.append(row)
        if contact is not None:
            group.contacts.append((row, contact))
            n_contacts += 1

    duplicates = _find_db_duplicates(actor=actor, groups=list(groups.values()), dup_mode=dup_mode,
                                     errors=errors, parsed=parsed)
    for g in groups.values():
        if g.action == "create" and g.contacts:
            # The first contact listed for a new customer becomes its primary contact.
            g.contacts[0][1].setdefault("is_primary", True)

    items = sorted(errors.items, key=lambda e: e["row"])
    counts = {a: sum(1 for g in groups.values() if g.action == a) for a in ("create", "update", "skip")}
    report = {
        "rows": len(parsed.rows),
        "good_rows": len(parsed.rows) - len(errors.rows),
        "bad_rows": len(errors.rows),
        "customers": len(groups),
        "contacts": n_contacts,
        **counts,
        "dup_mode": dup_mode,
        "error_count": len(items),
        "errors": items[:MAX_REPORTED_ERRORS],
        "duplicates": duplicates[:MAX_REPORTED_ERRORS],
        "ignored_headers": parsed.ignored_headers,
    }
    return Plan(groups=list(groups.values()), errors=items, duplicates=duplicates, report=report)


def _chunks(values, size=500):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


def _candidate_groups(groups: list[Group]) -> list[Group]:
    """Groups that may match an existing customer, found with a few IN queries.

    duplicates_find is the authority on what counts as a duplicate, but calling
    it for every row of a 10,000-row file would cost 10,000 queries; this narrows
    the calls down to the rows that share a name, phone or code with the database.
    """
    names = {g.name_norm for g in groups if g.name_norm}
    phones = {p for g in groups if len(p := normalize_phone(g.customer.get("phone", ""))) >= 7}
    codes = {c for g in groups if (c := normalize_credit_code(g.customer.get("credit_code", "")))}
    hit_names, hit_phones, hit_codes = set(), set(), set()
    for chunk in _chunks(names):
        hit_names |= set(Customer.objects.filter(name_normalized__in=chunk).values_list("name_normalized", flat=True))
    for chunk in _chunks(phones):
        hit_phones |= set(Customer.objects.filter(phone_normalized__in=chunk).values_list("phone_normalized", flat=True))
        hit_phones |= set(Contact.objects.filter(phone_normalized__in=chunk).values_list("phone_normalized", flat=True))
    for chunk in _chunks(codes):
        hit_codes |= set(Customer.objects.filter(credit_code__in=chunk).values_list("credit_code", flat=True))
    return [
        g for g in groups
        if g.name_norm in hit_names
        or normalize_phone(g.customer.get("phone", "")) in hit_phones
        or normalize_credit_code(g.customer.get("credit_code", "")) in hit_codes
    ]


def _find_db_duplicates(*, actor: User, groups: list[Group], dup_mode: str, errors: _Errors,
                        parsed: ParsedFile) -> list[dict]:
    out = []
    claimed: dict[int, int] = {}  # existing customer id → file row that updates it
    for g in _candidate_groups(groups):
        matches = duplicates_find(
            name=g.customer["name"], phone=g.customer.get("phone", ""), credit_code=g.customer.get("credit_code", "")
        )
        if not matches:
            continue
        matched = sorted({f for m in matches for f in m["matched"]})
        owners = sorted({m["owner"] for m in matches})
        entry = {
            "row": g.first_row,
            "name": g.customer["name"],
            "matched": [parsed.header_of(f"customer.{f}") for f in matched],
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


# ---------------------------------------------------------------------------
# Jobs
# ---------------------------------------------------------------------------


def import_job_create(*, actor: User, filename: str, data: bytes, dup_mode: str = "skip") -> ImportJob:
    """Dry run: parse and validate the file, store it with its report. Writes no customers.

    Raises ImportFileError when the file as a whole is unusable (then no job is stored).
    """
    if not can_import(actor):
        raise Forbidden(_("你的角色不能导入客户"))
    if dup_mode not in ImportJob.DupMode.values:
        raise ValidationFailed({"dup_mode": _("无效的重复处理方式")})
    parsed = parse_upload(filename, data)
    plan = build_plan(actor=actor, parsed=parsed, dup_mode=dup_mode)
    with transaction.atomic():
        job = ImportJob.objects.create(
            created_by=actor, filename=filename[:255], file_data=data, dup_mode=dup_mode,
            report=plan.report, total_rows=len(parsed.rows),
        )
        audit.record(actor=actor, obj=job, action="create", changes={
            "filename": [None, job.filename], "dup_mode": [None, dup_mode], "total_rows": [None, job.total_rows],
            "errors": [None, plan.report["error_count"]],
        })
    return job


def import_job_start(*, actor: User, job: ImportJob) -> ImportJob:
    """Queue a validated job; the import itself runs in the Huey worker."""
    if job.created_by_id != actor.pk:
        raise NotFound("import job")
    if not can_import(actor):
        raise Forbidden(_("你的角色不能导入客户"))
    with transaction.atomic():
        updated = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.VALIDATED).update(
            status=ImportJob.Status.QUEUED
        )
        if not updated:
            raise ValidationFailed({"status": _("该导入任务已经开始或已结束")})
        if job.report.get("error_count"):
            raise ValidationFailed({"file": _("文件中有错误，请修改后重新上传")})
        audit.record(actor=actor, obj=job, action="start",
                     changes={"status": [ImportJob.Status.VALIDATED, ImportJob.Status.QUEUED]})
    job.refresh_from_db()
    progress_set(job.pk, 0, job.total_rows)
    # Enqueued after commit so the worker sees status=queued (immediate mode runs it right here).
    from .tasks import import_job_run_task

    import_job_run_task(job.pk)
    job.refresh_from_db()
    return job


class ImportAborted(Exception):
    def __init__(self, errors: list[dict], report: dict | None = None):
        self.errors = errors
        self.report = report
        super().__init__(f"{len(errors)} row errors")


def _progress_key(job_id: int) -> str:
    return f"tuijin:excel:import:{job_id}:progress"


def progress_set(job_id: int, done: int, total: int) -> None:
    cache.set(_progress_key(job_id), {"done": done, "total": total}, PROGRESS_TIMEOUT)


def progress_get(job: ImportJob) -> dict:
    """Rows processed / total; a finished job is 100% whatever the cache says."""
    total = job.total_rows or 0
    if job.status == ImportJob.Status.DONE:
        done = total
    else:
        data = cache.get(_progress_key(job.pk)) or {}
        done = min(int(data.get("done", 0)), total)
    percent = 100 if total == 0 and job.status == ImportJob.Status.DONE else (done * 100 // total if total else 0)
    return {"done": done, "total": total, "percent": percent}


def _late_errors(g: Group, exc: Exception, parsed: ParsedFile) -> list[dict]:
    """A service refused a row while writing: point at the row and column like the dry run does."""
    errs = _Errors(parsed)
    if isinstance(exc, DuplicateFound):
        owners = "、".join(sorted({m["owner"] for m in exc.matches}))
        errs.add(g.first_row, "customer.name", _("与已有客户重复（负责人：%(owner)s）") % {"owner": owners})
    elif isinstance(exc, ValidationFailed):
        for key, messages in exc.errors.items():
            row, col = g.first_row, f"customer.{key}"
            if key.startswith("contacts["):
                index = int(key[len("contacts["): key.index("]")])
                row = g.contacts[index][0] if index < len(g.contacts) else g.first_row
                col = "contact." + key.split(".", 1)[-1]
            errs.add(row, col if col in BY_KEY else None, " ".join(str(m) for m in messages))
    else:
        errs.add(g.first_row, None, str(exc))
    return errs.items


def _apply_group(*, actor: User, g: Group) -> None:
    if g.action == "create":
        customer_services.customer_create(
            actor=actor, owner=g.owner, contacts=[c for _row, c in g.contacts], **g.customer
        )
        return
    customer = Customer.objects.get(pk=g.existing_id)
    fields = {k: v for k, v in g.customer.items() if v not in ("", [], None)}
    customer = customer_update(actor=actor, customer=customer, **fields)
    existing = {normalize_name(c.name): c for c in customer.contacts.all()}
    for _row, data in g.contacts:
        match = existing.get(normalize_name(data["name"]))
        if match is None:
            existing[normalize_name(data["name"])] = contact_create(actor=actor, customer=customer, **data)
        else:
            contact_update(actor=actor, contact=match, **{k: v for k, v in data.items() if v and k != "is_primary"})


# Files with at least this many new customers are written in batches (see _create_batch).
BULK_MIN_CUSTOMERS = 500
BULK_BATCH = 500


def _create_batch(*, actor: User, groups: list[Group]) -> None:
    """Create customers and contacts with a few bulk INSERTs and one audit chain extension.

    Why not customer_create per row: measured on SQLite, 10,000 rows took 77 s that way
    (its per-row duplicate query scans contacts, so the cost grows with the table), and
    the import's transaction holds SQLite's write lock all that time, so other users'
    saves time out. Here the rows were validated (validate_customer_data /
    validate_contact_data) and checked for duplicates (duplicates_find) by build_plan
    inside the same transaction, and the audit events carry exactly the fields
    customer_create and contact creation record. If customer_create ever gains side
    effects (notifications, assignment rules), they must be added here too.
    """
    customers = []
    for g in groups:
        customer = Customer(owner=g.owner, **g.customer)
        customer_services._denormalize(customer)
        customers.append(customer)
    Customer.objects.bulk_create(customers)
    contacts: list[list[Contact]] = []
    for g, customer in zip(groups, customers, strict=True):
        own = []
        for _row, data in g.contacts:
            contact = Contact(customer=customer, **data)
            contact.phone_normalized = normalize_phone(contact.mobile or contact.phone)
            own.append(contact)
        contacts.append(own)
    Contact.objects.bulk_create([c for own in contacts for c in own])
    entries = []
    for customer, own in zip(customers, contacts, strict=True):
        entries.append((customer, "create", audit.diff(
            {}, audit.snapshot(customer, customer_services.CUSTOMER_AUDIT_FIELDS)), None, None, None))
        for contact in own:
            entries.append((contact, "create", audit.diff(
                {}, {**audit.snapshot(contact, customer_services.CONTACT_FIELDS), "customer": customer.pk}),
                None, None, None))
    audit.record_many(actor=actor, entries=entries)


def _write_plan(*, actor: User, plan: Plan, parsed: ParsedFile, progress) -> None:
    creates = [g for g in plan.groups if g.action == "create"]
    bulk = len(creates) >= BULK_MIN_CUSTOMERS
    if bulk:
        for i in range(0, len(creates), BULK_BATCH):
            batch = creates[i : i + BULK_BATCH]
            _create_batch(actor=actor, groups=batch)
            progress(sum(len(g.rows) for g in batch))
    for g in plan.groups:
        if g.action == "skip" or (bulk and g.action == "create"):
            if g.action == "skip":
                progress(len(g.rows))
            continue
        try:
            _apply_group(actor=actor, g=g)
        except (ValidationFailed, Forbidden) as exc:
            raise ImportAborted(_late_errors(g, exc, parsed))
        progress(len(g.rows))


def import_job_run(*, job_id: int) -> ImportJob:
    """Re-validate and write the whole file in one transaction; called by the Huey task."""
    job = ImportJob.objects.select_related("created_by").get(pk=job_id)
    now = timezone.now()
    started = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now
    )
    if not started:  # a duplicate delivery of the task, or the job was never started
        return job
    job.status, job.started_at = ImportJob.Status.RUNNING, now
    actor = job.created_by
    total = job.total_rows
    progress_set(job.pk, 0, total)
    try:
        # Parsing needs no database, so it happens before the transaction takes the write lock.
        parsed = parse_upload(job.filename, bytes(job.file_data))
        with transaction.atomic():
            if not can_import(actor):
                raise Forbidden(_("你的角色不能导入客户"))
            # The database may have changed since the dry run: validate again under the write lock.
            plan = build_plan(actor=actor, parsed=parsed, dup_mode=job.dup_mode)
            if plan.errors:
                raise ImportAborted(plan.errors, plan.report)
            state = {"done": 0, "mark": 0, "at": time.monotonic()}
            step = max(1, total // 100)

            def progress(rows: int) -> None:
                # About 100 cache writes per import, or one a second, whichever is fewer.
                state["done"] += rows
                if state["done"] >= state["mark"] or time.monotonic() - state["at"] > 1:
                    progress_set(job.pk, state["done"], total)
                    state["mark"], state["at"] = state["done"] + step, time.monotonic()

            _write_plan(actor=actor, plan=plan, parsed=parsed, progress=progress)
            counts = plan.report
            job.status = ImportJob.Status.DONE
            job.created_count, job.updated_count, job.skipped_count = counts["create"], counts["update"], counts["skip"]
            job.total_rows = len(parsed.rows)
            job.report = plan.report
            job.finished_at = timezone.now()
            job.save()
            audit.record(actor=actor, obj=job, action="import", changes={
                "status": [ImportJob.Status.RUNNING, ImportJob.Status.DONE],
                "created": [None, job.created_count], "updated": [None, job.updated_count],
                "skipped": [None, job.skipped_count],
            })
        progress_set(job.pk, job.total_rows, job.total_rows)
        return job
    except ImportAborted as exc:
        report = dict(exc.report or job.report)
        report["errors"] = exc.errors[:MAX_REPORTED_ERRORS]
        report["error_count"] = len(exc.errors)
        return _fail(job, _("导入已取消，没有写入任何数据：%(n)s处错误") % {"n": len(exc.errors)}, report)
    except (ImportFileError, Forbidden) as exc:
        return _fail(job, str(exc))
    except Exception:
        logger.exception("import job %s failed", job.pk)
        return _fail(job, _("导入时发生内部错误，没有写入任何数据"))


def _fail(job: ImportJob, message: str, report: dict | None = None) -> ImportJob:
    fields = {"status": ImportJob.Status.FAILED, "error": message, "finished_at": timezone.now(),
              "created_count": 0, "updated_count": 0, "skipped_count": 0}
    if report is not None:
        fields["report"] = report
    with transaction.atomic():
        ImportJob.objects.filter(pk=job.pk).update(**fields)
        audit.record(actor=job.created_by, obj=job, action="import_failed",
                     changes={"status": [ImportJob.Status.RUNNING, ImportJob.Status.FAILED], "error": [None, message]})
    job.refresh_from_db()
    return job
