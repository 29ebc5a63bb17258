"""Writes of goals: periods, objectives, key results, target allocation, deviation reports (SPEC G1, G2, G7).

Every service validates first (ValidationFailed naming each field, nothing
written), runs in one transaction and records the change trail.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core.audit import record, record_many, snapshot
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.org.models import OrgUnit, User

from . import metrics
from .attenuation import check_children
from .models import GoalReport, KeyResult, MetricKind, Objective, Period, Target
from .selectors import can_allocate, can_manage_goals

TARGET_FIELDS = ["key_result", "parent", "org_unit", "user", "value", "baseline", "depth"]
MAX_VALUE = Decimal("99999999999999")


def parse_amount(raw, *, allow_blank: bool = False) -> tuple[Decimal | None, str | None]:
    """(value, error message): numbers only, not negative, finite."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return (None, None) if allow_blank else (None, _("请填写数值"))
    if isinstance(raw, bool):
        return None, _("请输入数字")
    try:
        value = Decimal(str(raw).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None, _("请输入数字")
    if not value.is_finite():
        return None, _("请输入数字")
    if value < 0:
        return None, _("不能为负数")
    if value > MAX_VALUE:
        return None, _("数值过大")
    return metrics.q2(value), None


def _company_unit() -> OrgUnit | None:
    return OrgUnit.objects.filter(parent__isnull=True).order_by("path").first()


def metric_kinds_seed() -> int:
    """(Re)create the built-in metric kinds, as the data migration does (e.g. after a database flush)."""
    import importlib

    kinds = importlib.import_module("tuijin.goals.migrations.0002_seed_metric_kinds").KINDS
    for order, (key, name, name_en, unit, additive, description) in enumerate(kinds, start=1):
        MetricKind.objects.update_or_create(key=key, defaults=dict(
            name=name, name_en=name_en, unit=unit, additive=additive, description=description, order=order))
    return len(kinds)


# --------------------------------------------------------------------------- periods

def period_bounds(kind: str, day: dt.date) -> tuple[dt.date, dt.date]:
    if kind == Period.Kind.MONTH:
        return metrics.month_bounds(day)
    if kind == Period.Kind.QUARTER:
        return metrics.quarter_bounds(day)
    return dt.date(day.year, 1, 1), dt.date(day.year, 12, 31)


def period_default_name(kind: str, start: dt.date) -> str:
    if kind == Period.Kind.MONTH:
        return f"{start.year}-{start.month:02d}"
    if kind == Period.Kind.QUARTER:
        return f"{start.year} Q{(start.month - 1) // 3 + 1}"
    return str(start.year)


def _as_date(value) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


@transaction.atomic
def period_create(*, actor, kind: str, start, end=None, name: str = "") -> Period:
    """A period; the same (kind, start, end) again returns the existing one.

    `end` defaults to the end of the month/quarter/year starting at `start`.
    Periods of one kind must not overlap (a "month" from the 15th to the 14th
    next to calendar months would double-count).
    """
    errors: dict[str, str] = {}
    if kind not in Period.Kind.values:
        errors["kind"] = _("周期类型必须是 month / quarter / year")
    start_d = _as_date(start)
    if start_d is None:
        errors["start"] = _("请输入有效日期")
    end_d = _as_date(end) if end not in (None, "") else None
    if end not in (None, "") and end_d is None:
        errors["end"] = _("请输入有效日期")
    if actor is not None and not can_manage_goals(actor):
        raise Forbidden(_("只有销售总监、VP 或管理员可以设定目标周期"))
    if errors:
        raise ValidationFailed(errors)
    if end_d is None:
        start_d, end_d = period_bounds(kind, start_d)
    if end_d <= start_d:
        raise ValidationFailed({"end": _("结束日期必须晚于开始日期")})
    existing = Period.objects.filter(kind=kind, start=start_d, end=end_d).first()
    if existing:
        return existing
    clash = Period.objects.filter(kind=kind, start__lte=end_d, end__gte=start_d).first()
    if clash:
        raise ValidationFailed({"start": _("与已有的%(kind)s周期“%(name)s”（%(s)s 至 %(e)s）重叠") % {
            "kind": clash.get_kind_display(), "name": clash.name, "s": clash.start, "e": clash.end}})
    period = Period.objects.create(kind=kind, start=start_d, end=end_d,
                                   name=(name or period_default_name(kind, start_d))[:64])
    record(actor=actor, obj=period, action="create", changes={
        k: [None, v] for k, v in snapshot(period, ["kind", "start", "end", "name"]).items()})
    return period


# --------------------------------------------------------------------------- objectives and key results

@transaction.atomic
def objective_create(*, actor, period: Period, title: str, description: str = "",
                     key_results: list[dict] | None = None) -> Objective:
    """A company objective for a period, optionally with its key results in the same call."""
    if actor is not None and not can_manage_goals(actor):
        raise Forbidden(_("只有销售总监、VP 或管理员可以创建公司目标"))
    errors: dict[str, str] = {}
    title = (title or "").strip()
    if not title:
        errors["title"] = _("请填写目标")
    elif len(title) > 200:
        errors["title"] = _("目标不能超过 200 个字")
    if not isinstance(period, Period):
        errors["period"] = _("请选择周期")
    company = _company_unit()
    if company is None:
        errors["org_unit"] = _("还没有组织架构")
    if errors:
        raise ValidationFailed(errors)
    objective = Objective.objects.create(period=period, org_unit=company, title=title,
                                         description=description or "", created_by=actor)
    record(actor=actor, obj=objective, action="create", changes={
        k: [None, v] for k, v in snapshot(objective, ["period", "org_unit", "title", "description"]).items()})
    for i, kr in enumerate(key_results or []):
        try:
            key_result_create(actor=actor, objective=objective, metric=kr.get("metric"), title=kr.get("title", ""),
                              target=kr.get("target"))
        except ValidationFailed as exc:
            raise ValidationFailed({f"key_results[{i}].{k}": v for k, v in exc.errors.items()})
    return objective


def _metric_of(metric) -> MetricKind | None:
    if isinstance(metric, MetricKind):
        return metric
    if metric in (None, ""):
        return None
    q = MetricKind.objects.filter(is_active=True)
    if isinstance(metric, int) or (isinstance(metric, str) and metric.isdigit()):
        return q.filter(pk=int(metric)).first()
    return q.filter(key=str(metric)).first()


def target_baselines(metric_key: str, period: Period, scopes: list[tuple[OrgUnit, User | None]]) -> list[Decimal]:
    """Baselines for several scopes with one grouped query (the previous comparable period)."""
    start, end = metrics.previous_period(period.start, period.end)
    metric = metrics.get_metric(metric_key)
    parts = metric.per_owner(start, end, None)
    unit_paths = {u.pk: u.path for u, _user in scopes}
    owners = dict(User.objects.filter(pk__in=list(parts)).values_list("pk", "org_unit__path"))
    out = []
    for unit, user in scopes:
        if user is not None:
            out.append(metric.combine([parts[user.pk]] if user.pk in parts else []))
        else:
            path = unit_paths[unit.pk]
            out.append(metric.combine([p for owner, p in parts.items() if (owners.get(owner) or "").startswith(path)]))
    return out


@transaction.atomic
def key_result_create(*, actor, objective: Objective, metric, target, title: str = "") -> KeyResult:
    """A key result and its company-level target (the root of the cascade)."""
    if actor is not None and not can_manage_goals(actor):
        raise Forbidden(_("只有销售总监、VP 或管理员可以创建关键结果"))
    errors: dict[str, str] = {}
    kind = _metric_of(metric)
    if kind is None:
        errors["metric"] = _("未知的指标类型")
    elif kind.key not in metrics.METRICS:
        errors["metric"] = _("该指标类型没有计算方法")
    value, err = parse_amount(target)
    if err:
        errors["target"] = err
    title = (title or "").strip()[:200]
    if kind is not None and not errors.get("metric"):
        period = objective.period
        clash = (
            KeyResult.objects.filter(
                metric=kind, objective__org_unit=objective.org_unit, objective__period__kind=period.kind,
                objective__period__start__lte=period.end, objective__period__end__gte=period.start,
            ).select_related("objective__period").first()
        )
        if clash:
            errors["metric"] = _("同一组织在重叠的周期“%(period)s”已有该指标的关键结果：%(title)s") % {
                "period": clash.objective.period.name, "title": clash.title}
    if errors:
        raise ValidationFailed(errors)
    kr = KeyResult.objects.create(objective=objective, metric=kind, title=title or kind.name)
    (baseline,) = target_baselines(kind.key, objective.period, [(objective.org_unit, None)])
    root = Target.objects.create(key_result=kr, org_unit=objective.org_unit, value=value, baseline=baseline, depth=0)
    record_many(actor=actor, entries=[
        (kr, "create", {k: [None, v] for k, v in snapshot(kr, ["objective", "metric", "title"]).items()},
         None, None, None),
        (root, "create", {k: [None, v] for k, v in snapshot(root, TARGET_FIELDS).items()}, None, None, None),
    ])
    return kr


@dataclass
class AllocationResult:
    parent: Target
    targets: list[Target]
    warnings: list[dict] = field(default_factory=list)


def _parse_children(parent: Target, children: list[dict]):
    """Validate every row; returns [(unit, user, value)] or raises naming children[i].field."""
    errors: dict[str, str] = {}
    if parent.user_id:
        raise ValidationFailed({"parent": _("个人目标不能再分解")})
    if not isinstance(children, (list, tuple)) or not children:
        raise ValidationFailed({"children": _("请至少填写一个下级目标")})
    unit_ids, user_ids = set(), set()
    for row in children:
        if isinstance(row, dict):
            if row.get("unit") not in (None, ""):
                unit_ids.add(row.get("unit"))
            if row.get("user") not in (None, ""):
                user_ids.add(row.get("user"))
    units = {str(u.pk): u for u in OrgUnit.objects.filter(pk__in=[i for i in unit_ids if str(i).isdigit()])}
    users = {str(u.pk): u for u in User.objects.filter(pk__in=[i for i in user_ids if str(i).isdigit()])
             .select_related("org_unit")}
    # Ancestors of the parent in this cascade: a child that is one of them would make a cycle.
    ancestors_units, ancestor_users, node, seen = set(), set(), parent, set()
    while node is not None:
        if node.pk in seen:
            raise ValidationFailed({"parent": _("目标的上级关系存在循环")})
        seen.add(node.pk)
        if node.user_id:
            ancestor_users.add(node.user_id)
        else:
            ancestors_units.add(node.org_unit_id)
        node = node.parent
    rows, seen_keys = [], set()
    for i, row in enumerate(children):
        where = f"children[{i}]"
        if not isinstance(row, dict):
            errors[where] = _("格式错误")
            continue
        value, err = parse_amount(row.get("value"))
        if err:
            errors[f"{where}.value"] = err
        has_unit, has_user = row.get("unit") not in (None, ""), row.get("user") not in (None, "")
        if has_unit == has_user:
            errors[f"{where}.unit"] = _("请选择一个下级组织或一名销售")
            continue
        if has_unit:
            unit = units.get(str(row["unit"]))
            if unit is None:
                errors[f"{where}.unit"] = _("组织不存在")
                continue
            if unit.pk in ancestors_units or parent.org_unit.path.startswith(unit.path):
                errors[f"{where}.unit"] = _("不能把目标分给自己或上级组织（循环上级）")
                continue
            if unit.parent_id != parent.org_unit_id:
                errors[f"{where}.unit"] = _("%(unit)s 不是 %(parent)s 的直接下级") % {
                    "unit": unit.name, "parent": parent.org_unit.name}
                continue
            key = ("unit", unit.pk)
            user = None
        else:
            user = users.get(str(row["user"]))
            if user is None or not user.is_active:
                errors[f"{where}.user"] = _("用户不存在")
                continue
            if user.pk in ancestor_users:
                errors[f"{where}.user"] = _("循环上级")
                continue
            if user.org_unit_id != parent.org_unit_id:
                errors[f"{where}.user"] = _("%(user)s 不属于 %(unit)s") % {
                    "user": user.label, "unit": parent.org_unit.name}
                continue
            unit, key = user.org_unit, ("user", user.pk)
        if key in seen_keys:
            errors[f"{where}.{key[0]}"] = _("重复的下级")
            continue
        seen_keys.add(key)
        rows.append((unit, user, value))
    if errors:
        raise ValidationFailed(errors)
    return rows


@transaction.atomic
def target_allocate(*, actor, parent: Target, children: list[dict]) -> AllocationResult:
    """Set the targets of a parent's children (direct child units or reps of the parent's unit) in one call.

    children: [{"unit": id, "value": n} | {"user": id, "value": n}]. Listed
    children are created or updated; others stay as they are. Returns the
    attenuation warnings of the parent after saving (children sum below the
    parent, child growth below the parent's growth).
    """
    parent = Target.objects.select_for_update(of=("self",)).select_related(
        "org_unit", "user", "key_result__metric", "key_result__objective__period", "parent").get(pk=parent.pk)
    if actor is not None and not can_allocate(actor, parent):
        raise Forbidden(_("你不能分解这个目标"))
    rows = _parse_children(parent, children)
    kr = parent.key_result
    existing = {
        (t.user_id or None, t.org_unit_id if not t.user_id else None): t
        for t in Target.objects.select_for_update(of=("self",)).filter(key_result=kr).select_related("org_unit", "user")
    }
    errors = {}
    for i, (unit, user, _value) in enumerate(rows):
        current = existing.get((user.pk, None) if user else (None, unit.pk))
        if current is not None and current.parent_id != parent.pk:
            errors[f"children[{i}].{'user' if user else 'unit'}"] = _("已在其他上级目标下分配")
    if errors:
        raise ValidationFailed(errors)
    baselines = target_baselines(kr.metric.key, kr.objective.period, [(u, usr) for u, usr, _v in rows])
    saved, entries = [], []
    for (unit, user, value), baseline in zip(rows, baselines, strict=True):
        current = existing.get((user.pk, None) if user else (None, unit.pk))
        if current is None:
            t = Target(key_result=kr, parent=parent, org_unit=unit, user=user, value=value, baseline=baseline,
                       depth=parent.depth + 1)
            try:
                with transaction.atomic():
                    t.save()
            except IntegrityError:
                raise ValidationFailed({"children": _("该下级目标已存在，请刷新后重试")})
            entries.append((t, "create", {k: [None, v] for k, v in snapshot(t, TARGET_FIELDS).items()},
                            None, None, None))
        else:
            t = current
            before = snapshot(t, TARGET_FIELDS)
            t.value, t.baseline = value, baseline
            t.save(update_fields=["value", "baseline", "updated_at"])
            changes = {k: [before[k], v] for k, v in snapshot(t, TARGET_FIELDS).items() if before[k] != v}
            if changes:
                entries.append((t, "update", changes, None, None, None))
        saved.append(t)
    if entries:
        record_many(actor=actor, entries=entries)
    all_children = list(Target.objects.filter(parent=parent).select_related("org_unit", "user"))
    warnings = check_children(parent, all_children, additive=kr.metric.additive)
    return AllocationResult(parent=parent, targets=saved, warnings=warnings)


@transaction.atomic
def target_set_value(*, actor, target: Target, value) -> Target:
    """Change one target's value (the company target of a key result, or any node)."""
    target = Target.objects.select_for_update(of=("self",)).select_related("org_unit", "parent").get(pk=target.pk)
    if actor is not None and not (can_manage_goals(actor) or (target.parent and can_allocate(actor, target.parent))):
        raise Forbidden(_("你不能修改这个目标"))
    parsed, err = parse_amount(value)
    if err:
        raise ValidationFailed({"value": err})
    before = snapshot(target, TARGET_FIELDS)
    target.value = parsed
    target.save(update_fields=["value", "updated_at"])
    changes = {k: [before[k], v] for k, v in snapshot(target, TARGET_FIELDS).items() if before[k] != v}
    if changes:
        record(actor=actor, obj=target, action="update", changes=changes)
    return target


# --------------------------------------------------------------------------- monthly deviation report

def report_day() -> int:
    from django.conf import settings

    return int(getattr(settings, "TUIJIN_GOAL_REPORT_DAY", 25))


# A report covers at most a year (start to the day before the same date a year later): a century-long
# period was a full scan of every deal and a notification to every director, on demand by any manager.
MAX_REPORT_MONTHS = 12


@transaction.atomic
def report_generate(*, actor, start, end=None, as_of=None, scheduled: bool = False) -> tuple[GoalReport, bool]:
    """The 目标偏差分析报告 for a period (default: the month of `start`); (report, created).

    One report per period: asking again returns the stored one unchanged, so
    the scheduled job can run any number of times. Only the scheduled monthly
    report (`scheduled=True`, goals.tasks) notifies directors and managers; a
    report generated on demand is not broadcast.
    """
    from .params import DATE_MAX, DATE_MIN
    from .report import compute_report

    start_d = _as_date(start)
    errors = {}
    if start_d is None:
        errors["start"] = _("请输入有效日期")
    end_d = _as_date(end) if end not in (None, "") else None
    if end not in (None, "") and end_d is None:
        errors["end"] = _("请输入有效日期")
    out_of_range = _("日期须在 %(min)s 到 %(max)s 之间") % {"min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()}
    for field_name, day in (("start", start_d), ("end", end_d)):
        if day is not None and not (DATE_MIN <= day <= DATE_MAX):
            errors[field_name] = out_of_range
    if errors:
        raise ValidationFailed(errors)
    if end_d is None:
        start_d, end_d = metrics.month_bounds(start_d)
    if end_d < start_d:
        raise ValidationFailed({"end": _("结束日期必须晚于开始日期")})
    longest = metrics.add_months(start_d, MAX_REPORT_MONTHS) - dt.timedelta(days=1)
    if end_d > longest:
        raise ValidationFailed({"end": _("报告周期最长一年（最晚到 %(date)s）") % {"date": longest.isoformat()}})
    if actor is not None and not (can_manage_goals(actor) or actor.role == User.Role.MANAGER):
        raise Forbidden(_("只有销售经理、总监、VP 或管理员可以生成报告"))
    existing = GoalReport.objects.filter(period_start=start_d, period_end=end_d).first()
    if existing:
        return existing, False
    as_of_d = min(_as_date(as_of) or timezone.localdate(), end_d)
    data = compute_report(start=start_d, end=end_d, as_of=as_of_d)
    title = _("目标偏差分析报告") + f" {start_d:%Y-%m-%d} ~ {end_d:%Y-%m-%d}"
    try:
        with transaction.atomic():
            report = GoalReport.objects.create(period_start=start_d, period_end=end_d, as_of=as_of_d, title=title,
                                               data=data, generated_by=actor)
    except IntegrityError:
        # A second worker generated it at the same moment: theirs is the report.
        return GoalReport.objects.get(period_start=start_d, period_end=end_d), False
    record(actor=actor, obj=report, action="create", changes={
        "period_start": [None, str(start_d)], "period_end": [None, str(end_d)], "as_of": [None, str(as_of_d)],
        "rows": [None, len(data.get("rows", []))]})
    if scheduled:
        _report_notify(report)
    return report, True


def _report_notify(report: GoalReport) -> None:
    from django.urls import reverse

    from tuijin.notify.services import notify

    directors = list(User.objects.filter(is_active=True, role__in=[User.Role.DIRECTOR, User.Role.VP]))
    unit_ids = {row["unit_id"] for row in report.data.get("rows", []) if row.get("unit_id") and not row.get("user_id")}
    managers = list(User.objects.filter(is_active=True, role=User.Role.MANAGER, org_unit_id__in=unit_ids))
    notify(
        recipients=directors + managers,
        kind="goal_report",
        title=report.title,
        body=_("本期目标 %(target)s，实际 %(actual)s，缺口 %(gap)s。") % {
            "target": report.data.get("total", {}).get("target", "0"),
            "actual": report.data.get("total", {}).get("actual", "0"),
            "gap": report.data.get("total", {}).get("gap", "0")},
        link=reverse("goals:report_detail", args=[report.pk]),
        dedupe_key=f"goal-report:{report.period_start}:{report.period_end}",
    )
