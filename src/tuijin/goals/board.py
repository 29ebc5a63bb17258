"""The goal board (目标看板, SPEC G4): each KPI with target, actual, pace, the records behind it, next actions.

A rep's board runs a fixed number of queries (one per KPI for the figure, one
per KPI for its top records, one per suggestion list), however many records
there are. A manager's team board computes every person's KPIs with one
grouped query per key result. Callers pass a person already checked for
visibility (selectors.board_user_get).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.db.models import F, Max, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import timezone

from tuijin.customers.models import Customer
from tuijin.org.models import OrgUnit, User
from tuijin.pipeline.models import Opportunity, Stage

from . import metrics
from .metrics import add_months, bounds
from .models import Target
from .selectors import pace_of

HIGH_VALUE_GRADE = "high_value"
HIGH_VALUE_LTV = Decimal("80000")
NO_CONTACT_DAYS = 14
LIST_SIZE = 10


def stage_stall_days() -> int:
    return int(getattr(settings, "TUIJIN_GOAL_STAGE_STALL_DAYS", 30))


def figure_url(target_id: int, on_date: dt.date) -> str:
    return reverse("goals:figure_records", args=[target_id]) + f"?on={on_date.isoformat()}"


def api_figure_url(target_id: int, on_date: dt.date) -> str:
    return f"/api/goals/targets/{target_id}/records?on={on_date.isoformat()}"


def _targets_on(on_date: dt.date):
    return Target.objects.filter(
        key_result__objective__period__start__lte=on_date, key_result__objective__period__end__gte=on_date,
        key_result__metric__is_active=True,
    ).select_related("key_result__metric", "key_result__objective__period", "org_unit", "user").order_by(
        "key_result__metric__order", "key_result__objective__period__start", "key_result_id")


def scope_owners(target: Target):
    return {target.user_id} if target.user_id else metrics.unit_owner_ids(target.org_unit)


def kpi(target: Target, on_date: dt.date, actual: Decimal) -> dict:
    kr = target.key_result
    period = kr.objective.period
    metric = metrics.get_metric(kr.metric.key)
    pace = pace_of(metric=metric, target=target.value, actual=actual, start=period.start, end=period.end,
                   on_date=on_date)
    return {
        "target_id": target.pk,
        "key_result_id": kr.pk,
        "key_result": kr.title,
        "metric": kr.metric.key,
        "metric_name": str(kr.metric),
        "unit": kr.metric.unit,
        "period": period.name,
        "period_start": period.start,
        "period_end": period.end,
        "target": target.value,
        "actual": actual,
        "expected": pace["expected"],
        "ratio": pace["ratio"],
        "achievement": float(actual / target.value) if target.value else None,
        "status": "ahead" if pace["ratio"] >= 1 else ("behind" if pace["ratio"] < 0.8 else "close"),
        "records_url": figure_url(target.pk, on_date),
        "api_records_url": api_figure_url(target.pk, on_date),
    }


def for_viewer(item: dict, visible: bool) -> dict:
    """The KPI with its record links only when the viewer may open them (selectors.can_see_target)."""
    if not visible:
        item["records_url"] = item["api_records_url"] = None
    return item


def target_kpi(target: Target, on_date: dt.date) -> dict:
    period = target.key_result.objective.period
    metric = metrics.get_metric(target.key_result.metric.key)
    actual = metric.value(period.start, min(on_date, period.end), scope_owners(target))
    return kpi(target, on_date, actual)


def figure_records(target: Target, on_date: dt.date):
    """(record kind, queryset) behind a target's actual value on on_date."""
    period = target.key_result.objective.period
    metric = metrics.get_metric(target.key_result.metric.key)
    return metric.record_kind, metric.records(period.start, min(on_date, period.end), scope_owners(target))


def _ltv():
    won = Opportunity.objects.filter(customer_id=OuterRef("pk"), stage__kind=Stage.Kind.WON).order_by().values(
        "customer_id").annotate(s=Sum("amount")).values("s")
    return Coalesce(Subquery(won), Decimal("0"))


def next_actions(person: User, on_date: dt.date) -> dict:
    now = timezone.now()
    end_of_day = bounds(on_date, on_date)[1]
    contact_cutoff = min(now, end_of_day) - dt.timedelta(days=NO_CONTACT_DAYS)
    high_value = (
        Customer.objects.filter(owner=person).exclude(status=Customer.Status.CHURNED)
        .annotate(ltv=_ltv())
        .filter(Q(grade=HIGH_VALUE_GRADE) | Q(grade="", ltv__gte=HIGH_VALUE_LTV))
        .filter(Q(last_contact_at__lt=contact_cutoff) | Q(last_contact_at__isnull=True))
        .order_by(F("last_contact_at").asc(nulls_first=True), "id")[:LIST_SIZE]
    )
    stall_cutoff = min(now, end_of_day) - dt.timedelta(days=stage_stall_days())
    stalled = (
        Opportunity.objects.filter(owner=person, stage__kind=Stage.Kind.OPEN, stage_entered_at__lt=stall_cutoff)
        .select_related("customer", "stage", "owner").order_by("stage_entered_at", "id")[:LIST_SIZE]
    )
    last_won = Opportunity.objects.filter(customer_id=OuterRef("pk"), stage__kind=Stage.Kind.WON).order_by(
        ).values("customer_id").annotate(m=Max("closed_at")).values("m")
    six_ago, four_ago = bounds(add_months(on_date, -6), add_months(on_date, -4))
    repeat = (
        Customer.objects.filter(owner=person).exclude(status=Customer.Status.CHURNED)
        .annotate(last_won=Subquery(last_won))
        .filter(last_won__gte=six_ago, last_won__lt=four_ago)
        .exclude(opportunities__stage__kind=Stage.Kind.OPEN)
        .order_by("last_won", "id")[:LIST_SIZE]
    )
    return {
        "high_value_no_contact": list(high_value),
        "stalled": list(stalled),
        "repeat_candidates": list(repeat),
        "no_contact_days": NO_CONTACT_DAYS,
        "stall_days": stage_stall_days(),
    }


def rep_board(person: User, on_date: dt.date) -> dict:
    """Everything on one person's board."""
    kpis = []
    targets = list(_targets_on(on_date).filter(user=person))
    for t in targets:
        item = target_kpi(t, on_date)
        kind, qs = figure_records(t, on_date)
        if kind == "opportunity":
            qs = qs.select_related("customer", "stage", "owner").order_by("-amount", "-id")
        elif kind == "customer":
            qs = qs.order_by("-created_at", "-id")
        else:
            qs = qs.select_related("customer").order_by("-occurred_at", "-id")
        item["record_kind"] = kind
        item["records"] = list(qs[:LIST_SIZE])
        kpis.append(item)
    # The concrete list behind the revenue KPI: open deals that can still close in the period.
    revenue = next((k for k in kpis if k["metric"] == "signed_revenue"), None)
    pipeline = []
    if revenue:
        pipeline = list(
            Opportunity.objects.filter(owner=person, stage__kind=Stage.Kind.OPEN,
                                       expected_close_date__gte=on_date,
                                       expected_close_date__lte=revenue["period_end"])
            .select_related("customer", "stage", "owner").order_by("-amount", "-id")[:LIST_SIZE]
        )
    return {"person": person, "on_date": on_date, "kpis": kpis, "pipeline": pipeline,
            "actions": next_actions(person, on_date)}


def team_board(viewer_unit: OrgUnit | None, people: list[User], on_date: dt.date) -> dict:
    """Each visible person's KPIs (one grouped query per key result) and the roll-up for the unit."""
    targets = list(_targets_on(on_date).filter(Q(user__in=people) | Q(user__isnull=True, org_unit=viewer_unit)))
    by_kr: dict[int, list[Target]] = {}
    for t in targets:
        by_kr.setdefault(t.key_result_id, []).append(t)
    rows = {p.pk: {"person": p, "kpis": {}} for p in people}
    rollup = []
    columns = []
    # The unit's roll-up is combined from the same per-owner parts as the people's KPIs (one grouped query
    # per key result, not two): owners = the people plus everyone in the unit's subtree.
    subtree: set[int] = set()
    if viewer_unit is not None and any(not t.user_id for t in targets):
        subtree = set(metrics.unit_owner_ids(viewer_unit).values_list("pk", flat=True))
    owners = sorted({p.pk for p in people} | subtree)
    if len(owners) == User.objects.count():
        # Everyone (a company-wide viewer): no owner condition at all. `owner_id IN (every id)`
        # made SQLite plan the metric queries on the owner index (1.2 s at scale M).
        owners = None
    for _kr_id, ts in by_kr.items():
        kr = ts[0].key_result
        period = kr.objective.period
        metric = metrics.get_metric(kr.metric.key)
        end = min(on_date, period.end)
        parts = metric.per_owner(period.start, end, owners)
        columns.append({"key_result_id": kr.pk, "title": kr.title, "metric_name": str(kr.metric),
                        "unit": kr.metric.unit})
        for t in ts:
            if t.user_id:
                actual = metric.combine([parts[t.user_id]] if t.user_id in parts else [])
                rows[t.user_id]["kpis"][kr.pk] = kpi(t, on_date, actual)
            else:
                # Unit targets here are the viewer's unit's (see the filter above): its subtree.
                rollup.append(kpi(t, on_date, metric.combine([parts[o] for o in subtree if o in parts])))
    return {"columns": columns, "rows": list(rows.values()), "rollup": rollup, "on_date": on_date}


def team_board_for(viewer: User, unit: OrgUnit | None, on_date: dt.date) -> dict:
    """The team board a viewer allowed by permissions.can_view_team_board sees: their visible reps and
    managers (not themselves) and the roll-up of `unit` (permissions.team_board_unit)."""
    from tuijin.org.selectors import user_list

    people = list(user_list(user=viewer).filter(role__in=[User.Role.REP, User.Role.MANAGER]).exclude(pk=viewer.pk)
                  .order_by("org_unit__path", "username"))
    return team_board(unit, people, on_date)
