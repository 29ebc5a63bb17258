"""Writes for customer grading (SPEC G3): grade rules (admins only) and the grade recomputation.

`grade_recompute` is what every trigger calls — customer and opportunity
services (for the one customer they changed), the nightly Huey task and a
rule change (for all customers). It computes metrics with aggregate queries,
writes only the rows whose grade or reasons changed (bulk), and records one
change-trail event per customer whose grade changed (record_many, object type
"customers.customer_grade" with the customer's id).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.org.models import User

from . import grading
from .models import Customer, GradeRule

# Grade changes are computed, not edits of the customer's data: they go to the trail under their own
# object type (object id = the customer's id), so a customer's edit history stays the user's edits.
GRADE_OBJECT_TYPE = "customers.customer_grade"
RULE_FIELDS = ["code", "name", "name_en", "priority", "conditions", "is_active"]


def can_edit_rules(user: User) -> bool:
    return bool(user and user.is_authenticated and (user.is_superuser or user.role == User.Role.ADMIN))


def _validate_rule(data: dict, *, partial: bool, rule: GradeRule | None = None) -> dict:
    errors: dict[str, list[str] | str] = {}
    clean: dict = {}
    if not partial or "code" in data:
        code = str(data.get("code") or "").strip()
        if not code or len(code) > 32 or not all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in code):
            errors["code"] = _("等级代码必填，只能包含字母、数字、下划线和连字符（最多32位）")
        elif GradeRule.objects.filter(code=code).exclude(pk=rule.pk if rule else None).exists():
            errors["code"] = _("等级代码已存在")
        clean["code"] = code
    if not partial or "name" in data:
        name = str(data.get("name") or "").strip()
        if not name or len(name) > 64:
            errors["name"] = _("等级名称必填，最多64字")
        clean["name"] = name
    if "name_en" in data:
        clean["name_en"] = str(data.get("name_en") or "").strip()[:64]
    if not partial or "priority" in data:
        try:
            priority = int(data.get("priority", 100))
            if priority < 0 or priority > 100000:
                raise ValueError
            clean["priority"] = priority
        except (TypeError, ValueError):
            errors["priority"] = _("优先级必须是 0–100000 的整数（越小越先匹配）")
    if "is_active" in data:
        clean["is_active"] = bool(data["is_active"])
    if not partial or "conditions" in data:
        try:
            clean["conditions"] = grading.validate_conditions(data.get("conditions"))
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationFailed(errors)
    return clean


@transaction.atomic
def grade_rule_create(*, actor: User, **data) -> GradeRule:
    if not can_edit_rules(actor):
        raise Forbidden(_("只有管理员可以修改分级规则"))
    clean = _validate_rule(data, partial=False)
    rule = GradeRule.objects.create(**clean)
    audit.record(actor=actor, obj=rule, action="create", changes=audit.diff({}, audit.snapshot(rule, RULE_FIELDS)))
    grade_recompute(actor=actor)
    return rule


@transaction.atomic
def grade_rule_update(*, actor: User, rule: GradeRule, **data) -> GradeRule:
    if not can_edit_rules(actor):
        raise Forbidden(_("只有管理员可以修改分级规则"))
    current = GradeRule.objects.select_for_update().get(pk=rule.pk)
    clean = _validate_rule(data, partial=True, rule=current)
    before = audit.snapshot(current, RULE_FIELDS)
    for k, v in clean.items():
        setattr(current, k, v)
    changes = audit.diff(before, audit.snapshot(current, RULE_FIELDS))
    if not changes:
        return current
    current.save()
    audit.record(actor=actor, obj=current, action="update", changes=changes)
    grade_recompute(actor=actor)
    return current


@transaction.atomic
def grade_rule_delete(*, actor: User, rule: GradeRule) -> None:
    if not can_edit_rules(actor):
        raise Forbidden(_("只有管理员可以修改分级规则"))
    before = audit.snapshot(rule, RULE_FIELDS)
    audit.record(actor=actor, obj=rule, action="delete", changes=audit.diff(before, {}))
    rule.delete()
    grade_recompute(actor=actor)


@transaction.atomic
def grade_recompute(
    *, actor: User | None = None, customer_ids: Iterable[int] | None = None, now: dt.datetime | None = None,
) -> dict[str, int]:
    """Re-grade all customers (or `customer_ids`); returns {"evaluated", "changed", "regraded"}.

    Idempotent: a second run with the same data writes nothing.
    """
    now = now or timezone.now()
    rules = grading.active_rules()
    metrics = grading.customer_metrics(customer_ids=customer_ids, now=now)
    current = Customer.objects.order_by()
    if customer_ids is not None:
        current = current.filter(pk__in=list(metrics))
    rows = {pk: (name, grade, reasons) for pk, name, grade, reasons in
            current.values_list("pk", "name", "grade", "grade_reasons")}
    changed: list[Customer] = []
    entries = []
    for pk, m in metrics.items():
        name, old_grade, old_reasons = rows[pk]
        grade, reasons = grading.grade_for(rules, m)
        if grade == old_grade and reasons == old_reasons:
            continue
        changed.append(Customer(pk=pk, grade=grade, grade_reasons=reasons))
        if grade != old_grade:
            entries.append((None, "grade_change", {"grade": [old_grade, grade]},
                            GRADE_OBJECT_TYPE, pk, name))
    if changed:
        # Only the computed columns: no version bump (not a user edit) and no updated_at change
        # (a nightly run must not reorder "recently updated" lists).
        Customer.objects.bulk_update(changed, ["grade", "grade_reasons"], batch_size=500)
    if entries:
        audit.record_many(actor=actor, entries=entries)
    return {"evaluated": len(metrics), "changed": len(changed), "regraded": len(entries)}


_deferred: contextvars.ContextVar[set[int] | None] = contextvars.ContextVar("grading_deferred", default=None)


def grade_recompute_for(*, actor: User | None, customer_ids: Iterable[int]) -> None:
    """Hook for the customer/opportunity services: re-grade the customers they just changed."""
    ids = [pk for pk in customer_ids if pk]
    pending = _deferred.get()
    if pending is not None:
        pending.update(ids)
        return
    if ids:
        grade_recompute(actor=actor, customer_ids=ids)


@contextlib.contextmanager
def grading_deferred(*, actor: User | None = None):
    """Collect re-grading requests and run them once on exit (bulk loads: demo, imports).

    Grading per change costs a few queries; a bulk load of thousands of changes
    re-grades each customer once instead of once per change.
    """
    token = _deferred.set(set())
    try:
        yield
        ids = _deferred.get()
    finally:
        _deferred.reset(token)
    if ids:
        grade_recompute(actor=actor, customer_ids=sorted(ids))
