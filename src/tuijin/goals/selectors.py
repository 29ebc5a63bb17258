"""Reads of goals that depend on the user: pace, boards, cascades, figure records, reports (SPEC G1, G2, G4, G7).

Visibility follows org.selectors: a rep sees only their own board and
targets; a manager the people and units of their subtree; director, VP and
admin everything. An invisible board, target or report row is a 404.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.db.models import Q, QuerySet
from django.utils import timezone

from tuijin.core.errors import NotFound
from tuijin.org.models import OrgUnit, User
from tuijin.org.selectors import is_company_wide, visible_owner_ids

from . import metrics
from .models import GoalReport, KeyResult, Objective, Target

REVENUE = "signed_revenue"


# --------------------------------------------------------------------------- pace

def elapsed_share(start: dt.date, end: dt.date, on_date: dt.date) -> Decimal:
    """Share of the period elapsed at the end of on_date (0 before it starts, 1 after it ends)."""
    total = (end - start).days + 1
    done = min(max((on_date - start).days + 1, 0), total)
    return Decimal(done) / Decimal(total)


def pace_of(*, metric: metrics.Metric, target: Decimal, actual: Decimal, start: dt.date, end: dt.date,
            on_date: dt.date) -> dict:
    """Expected-by-today and the ratio actual / expected.

    Additive metrics (revenue, counts) are expected to grow linearly over the
    period; ratios and averages are expected at their target all along.
    """
    if metric.ratio:
        expected = metrics.q2(target)
    else:
        expected = metrics.q2(target * elapsed_share(start, end, on_date))
    ratio = float(actual / expected) if expected else 1.0
    return {"expected": expected, "ratio": ratio}


def _covering_target(user, metric_key: str, on_date: dt.date) -> Target | None:
    """The rep's target of this metric for the shortest period containing on_date."""
    candidates = (
        Target.objects.filter(
            user=user, key_result__metric__key=metric_key,
            key_result__objective__period__start__lte=on_date, key_result__objective__period__end__gte=on_date,
        )
        .select_related("key_result__objective__period")
        .order_by("key_result__objective__period__end", "-key_result__objective__period__start", "id")
    )
    best = None
    for t in candidates:
        p = t.key_result.objective.period
        if best is None or p.days < best.key_result.objective.period.days:
            best = t
    return best


def rep_pace(*, rep, on_date) -> dict | None:
    """The rep's signed-revenue pace on `on_date` (used by the health lights).

    None when the rep has no signed-revenue target for a period containing
    on_date; else target, actual (period start up to and including on_date),
    expected (target × elapsed share), ratio (actual / expected, 1.0 when
    expected is 0), period_start, period_end.
    """
    target = _covering_target(rep, REVENUE, on_date)
    if target is None:
        return None
    period = target.key_result.objective.period
    metric = metrics.get_metric(REVENUE)
    actual = metric.value(period.start, min(on_date, period.end), {rep.pk})
    pace = pace_of(metric=metric, target=target.value, actual=actual, start=period.start, end=period.end,
                   on_date=on_date)
    return {
        "target": target.value,
        "actual": actual,
        "expected": pace["expected"],
        "ratio": pace["ratio"],
        "period_start": period.start,
        "period_end": period.end,
    }


def reps_pace(*, reps, on_date) -> dict[int, dict | None]:
    """rep_pace for many reps at once: {rep id: pace or None}, one query for targets + one per distinct period."""
    rep_ids = [r.pk for r in reps]
    best: dict[int, Target] = {}
    for t in Target.objects.filter(
        user_id__in=rep_ids, key_result__metric__key=REVENUE,
        key_result__objective__period__start__lte=on_date, key_result__objective__period__end__gte=on_date,
    ).select_related("key_result__objective__period").order_by("id"):
        cur = best.get(t.user_id)
        if cur is None or t.key_result.objective.period.days < cur.key_result.objective.period.days:
            best[t.user_id] = t
    metric = metrics.get_metric(REVENUE)
    by_period: dict[tuple, list[int]] = {}
    for uid, t in best.items():
        p = t.key_result.objective.period
        by_period.setdefault((p.start, p.end), []).append(uid)
    out: dict[int, dict | None] = {pk: None for pk in rep_ids}
    for (start, end), uids in by_period.items():
        parts = metric.per_owner(start, min(on_date, end), uids)
        for uid in uids:
            t = best[uid]
            actual = metric.combine([parts[uid]] if uid in parts else [])
            pace = pace_of(metric=metric, target=t.value, actual=actual, start=start, end=end, on_date=on_date)
            out[uid] = {"target": t.value, "actual": actual, "expected": pace["expected"], "ratio": pace["ratio"],
                        "period_start": start, "period_end": end}
    return out


# --------------------------------------------------------------------------- visibility helpers

def can_manage_goals(user: User) -> bool:
    """Creating objectives and key results: director, VP, admin."""
    return user.is_authenticated and is_company_wide(user)


def can_allocate(user: User, target: Target) -> bool:
    """Company-wide roles anywhere; a manager below their own unit (cities, teams, reps)."""
    if can_manage_goals(user):
        return True
    if user.role == User.Role.MANAGER and user.org_unit_id and target.user_id is None:
        return target.org_unit.path.startswith(user.org_unit.path)
    return False


def visible_units(user: User) -> QuerySet[OrgUnit]:
    if is_company_wide(user):
        return OrgUnit.objects.all()
    if user.role == User.Role.MANAGER and user.org_unit_id:
        return OrgUnit.objects.filter(path__startswith=user.org_unit.path)
    return OrgUnit.objects.none()


def target_visible_q(user: User) -> Q | None:
    """Targets a user may see: their own, their visible people's, their units' subtree."""
    ids = visible_owner_ids(user)
    if ids is None:
        return None
    q = Q(user_id__in=ids)
    if user.role == User.Role.MANAGER and user.org_unit_id:
        q |= Q(user__isnull=True, org_unit__path__startswith=user.org_unit.path)
    return q


def can_see_target(user: User, target: Target) -> bool:
    """target_visible_q for one target already loaded (no query beyond the cached visible set).

    A figure of a target the user may not see (the company figure on a rep's objectives page) is shown
    without a link: its records endpoint would answer 404.
    """
    ids = visible_owner_ids(user)
    if ids is None:
        return True
    if target.user_id:
        return target.user_id in ids
    return bool(user.role == User.Role.MANAGER and user.org_unit_id
                and target.org_unit.path.startswith(user.org_unit.path))


def target_list(*, user: User, key_result: KeyResult | None = None) -> QuerySet[Target]:
    qs = Target.objects.select_related("org_unit", "user", "key_result__metric", "key_result__objective__period")
    q = target_visible_q(user)
    if q is not None:
        qs = qs.filter(q)
    if key_result is not None:
        qs = qs.filter(key_result=key_result)
    return qs


def target_get(*, user: User, pk) -> Target:
    try:
        return target_list(user=user).get(pk=int(pk))
    except (Target.DoesNotExist, ValueError, TypeError):
        raise NotFound("target")


def objective_list(*, user: User, on_date: dt.date | None = None) -> QuerySet[Objective]:
    """Objectives are company-level plans: every sales user may read them (their figures are filtered)."""
    qs = Objective.objects.select_related("period", "org_unit").prefetch_related("key_results__metric")
    if on_date is not None:
        qs = qs.filter(period__start__lte=on_date, period__end__gte=on_date)
    return qs.order_by("-period__start", "period__kind", "id")


def objective_get(*, user: User, pk) -> Objective:
    try:
        return objective_list(user=user).get(pk=int(pk))
    except (Objective.DoesNotExist, ValueError, TypeError):
        raise NotFound("objective")


def key_result_get(*, user: User, pk) -> KeyResult:
    try:
        return KeyResult.objects.select_related("metric", "objective__period", "objective__org_unit").get(pk=int(pk))
    except (KeyResult.DoesNotExist, ValueError, TypeError):
        raise NotFound("key result")


def board_user_get(*, user: User, pk) -> User:
    """The person whose board is asked for; 404 when not visible to `user`."""
    ids = visible_owner_ids(user)
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        raise NotFound("user")
    if ids is not None and pk not in ids:
        raise NotFound("user")
    try:
        return User.objects.select_related("org_unit").get(pk=pk, is_active=True)
    except User.DoesNotExist:
        raise NotFound("user")


def report_list(*, user: User) -> QuerySet[GoalReport]:
    """Reports are visible to every sales user; their rows are filtered by visibility when shown."""
    return GoalReport.objects.defer("data").order_by("-period_start", "-id")


def report_get(*, user: User, pk) -> GoalReport:
    try:
        return GoalReport.objects.get(pk=int(pk))
    except (GoalReport.DoesNotExist, ValueError, TypeError):
        raise NotFound("report")


def today() -> dt.date:
    return timezone.localdate()


# --------------------------------------------------------------------------- cascade and attenuation (G2)

def cascade(*, user: User, key_result: KeyResult) -> dict:
    """The key result's targets in tree order with growth and attenuation flags.

    A user sees the nodes they may see (target_visible_q) plus the ancestors of
    those nodes, so a rep sees the chain from the company down to themselves.
    Two queries for the targets whatever the size of the tree.
    """
    from .attenuation import check_children, growth

    all_targets = list(
        Target.objects.filter(key_result=key_result).select_related("org_unit", "user").order_by("depth", "id"))
    ids = visible_owner_ids(user)
    manager_path = user.org_unit.path if (user.role == User.Role.MANAGER and user.org_unit_id) else None

    def own_visible(t: Target) -> bool:
        if ids is None:
            return True
        if t.user_id:
            return t.user_id in ids
        return manager_path is not None and t.org_unit.path.startswith(manager_path)

    by_id = {t.pk: t for t in all_targets}
    visible: set[int] = set()
    for t in all_targets:
        if own_visible(t):
            node = t
            while node is not None and node.pk not in visible:
                visible.add(node.pk)
                node = by_id.get(node.parent_id)
    children: dict[int | None, list[Target]] = {}
    for t in all_targets:
        children.setdefault(t.parent_id, []).append(t)
    additive = key_result.metric.additive
    flags_by_target: dict[int, list[dict]] = {}
    for t in all_targets:
        kids = children.get(t.pk, [])
        for f in check_children(t, kids, additive=additive):
            flags_by_target.setdefault(f["target_id"], []).append(f)
    ordered: list[dict] = []

    def walk(node: Target, level: int):
        if node.pk not in visible:
            return
        kids = sorted(children.get(node.pk, []), key=lambda c: (c.user_id is not None, c.org_unit.path,
                                                               c.user.label if c.user_id else ""))
        parent = by_id.get(node.parent_id)
        ordered.append({
            "target": node,
            "id": node.pk,
            "parent_id": node.parent_id,
            "level": level,
            "scope": node.scope_label,
            "scope_kind": "rep" if node.user_id else node.org_unit.kind,
            "value": node.value,
            "baseline": node.baseline,
            "growth": growth(node.value, node.baseline),
            "parent_growth": growth(parent.value, parent.baseline) if parent else None,
            "children_sum": sum((c.value for c in children.get(node.pk, [])), Decimal("0"))
            if children.get(node.pk) else None,
            "flags": flags_by_target.get(node.pk, []),
            "own_visible": own_visible(node),  # ancestors shown for context only: no records link
        })
        for c in kids:
            walk(c, level + 1)

    for root in children.get(None, []):
        walk(root, 0)
    flagged = [f for row in ordered for f in row["flags"]]
    return {"key_result": key_result, "rows": ordered, "flags": flagged}
