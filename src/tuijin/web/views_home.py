"""The start page (工作台), one layout per role; every figure links to the list of records behind it.

All figures come from the visibility selectors plus grouped aggregates, so the
number of queries does not grow with the number of records.
"""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Count, F, Q, Sum
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from tuijin.core.pages import start_of_day
from tuijin.customers.selectors import customer_list
from tuijin.followups.selectors import activity_counts_by_owner, activity_list
from tuijin.org.models import User
from tuijin.org.selectors import is_company_wide, user_list
from tuijin.pipeline.models import Stage
from tuijin.pipeline.selectors import (
    open_by_customer_region,
    open_pipeline_rollup,
    opportunity_list,
    won_by_owner,
)

STALE_DAYS = 14


def _url(name: str, **params) -> str:
    params = {k: v for k, v in params.items() if v not in (None, "")}
    return reverse(name) + ("?" + urlencode(params) if params else "")


@login_required
def home(request):
    user = request.user
    if user.role in User.CROSS_ROLES and not user.is_superuser:
        ctx = _cross_role(user)
    elif is_company_wide(user) or user.role == User.Role.MANAGER:
        ctx = _team(user, company_wide=is_company_wide(user))
    else:
        ctx = _rep(user)
    return render(request, "web/home.html", ctx)


def _rep(user) -> dict:
    today = timezone.localdate()
    week_start = start_of_day(today - dt.timedelta(days=today.weekday()))
    cutoff = timezone.now() - dt.timedelta(days=STALE_DAYS)
    open_totals = opportunity_list(user=user, scope="mine", status="open").aggregate(n=Count("id"), total=Sum("amount"))
    stale_qs = customer_list(user=user, scope="mine").filter(
        Q(last_contact_at__lt=cutoff) | Q(last_contact_at__isnull=True)
    )
    return {
        "layout": "rep",
        "open_count": open_totals["n"] or 0,
        "open_amount": open_totals["total"] or 0,
        "open_url": _url("opportunities", scope="mine", status="open"),
        "week_activities": activity_list(user=user, scope="mine", since=week_start).count(),
        "week_url": _url("activities", scope="mine", since=week_start.date().isoformat()),
        "stale_customers": list(stale_qs.order_by(F("last_contact_at").asc(nulls_first=True), "id")[:20]),
        "stale_days": STALE_DAYS,
        "stale_url": _url("customers", scope="mine", stale=STALE_DAYS),
        "recent_opportunities": list(opportunity_list(user=user, scope="mine")[:10]),
    }


def _stage_label(row) -> str:
    en = (get_language() or "").startswith("en")
    return (row["stage__name_en"] if en and row["stage__name_en"] else row["stage__name"]) or "—"


def _team(user, *, company_wide: bool) -> dict:
    today = timezone.localdate()
    month_start = today.replace(day=1)
    week_ago = today - dt.timedelta(days=6)
    rollup = open_pipeline_rollup(user=user)
    stages = {s.pk: s for s in Stage.objects.filter(pk__in={r["stage_id"] for r in rollup})}
    by_stage_map: dict[int, dict] = {}
    open_by_owner: dict[int, dict] = {}
    for r in rollup:
        for key, bucket in ((r["stage_id"], by_stage_map), (r["owner_id"], open_by_owner)):
            row = bucket.setdefault(key, {"n": 0, "total": 0})
            row["n"] += r["n"]
            row["total"] += r["total"] or 0
    by_stage = [
        {"stage_id": pk, "stage__name": stages[pk].name, "stage__name_en": stages[pk].name_en, **row}
        for pk, row in sorted(by_stage_map.items(), key=lambda kv: (stages[kv[0]].pipeline_id, stages[kv[0]].order))
    ]
    stage_chart = {
        "labels": [_stage_label(r) for r in by_stage],
        "values": [float(r["total"] or 0) for r in by_stage],
        "counts": [r["n"] for r in by_stage],
        "links": [_url("opportunities", status="open", stage=r["stage_id"]) for r in by_stage],
        "series": _("金额"),
    }
    won_by = won_by_owner(user=user, since=start_of_day(month_start))
    acts_by_owner = activity_counts_by_owner(user=user, since=start_of_day(week_ago))
    people = []
    for person in user_list(user=user).filter(role__in=[User.Role.REP, User.Role.MANAGER]).order_by("org_unit__path", "username"):
        o, w = open_by_owner.get(person.pk, {}), won_by.get(person.pk, {})
        people.append({
            "user": person,
            "open_count": o.get("n", 0),
            "open_amount": o.get("total") or 0,
            "open_url": _url("opportunities", owner_id=person.pk, status="open"),
            "won_amount": w.get("total") or 0,
            "won_url": _url("opportunities", owner_id=person.pk, status="won", closed_from=month_start.isoformat()),
            "activities": acts_by_owner.get(person.pk, 0),
            "activities_url": _url("activities", owner_id=person.pk, since=week_ago.isoformat()),
        })
    ctx = {
        "layout": "company" if company_wide else "team",
        "stage_chart": stage_chart,
        "people": people,
        "open_total": sum(float(r["total"] or 0) for r in by_stage),
        "open_count": sum(r["n"] for r in by_stage),
        "open_url": _url("opportunities", status="open"),
        "month_start": month_start,
    }
    if company_wide:
        by_region = open_by_customer_region(user=user)
        ctx["region_chart"] = {
            "labels": [r["customer__region"] or _("未填写") for r in by_region],
            "values": [float(r["total"] or 0) for r in by_region],
            "counts": [r["n"] for r in by_region],
            "links": [_url("opportunities", status="open", region=r["customer__region"] or "-") for r in by_region],
            "series": _("金额"),
        }
    ctx["charts_json"] = json.dumps(
        {k: ctx[k] for k in ("stage_chart", "region_chart") if k in ctx}, ensure_ascii=False
    )
    return ctx


def _cross_role(user) -> dict:
    shared = customer_list(user=user, scope="shared")
    return {
        "layout": "cross",
        "shared_customers": list(shared[:50]),
        "shared_count": shared.count(),
        "shared_url": _url("customers", scope="shared"),
    }
