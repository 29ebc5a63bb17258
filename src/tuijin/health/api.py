"""API of the health app: lights (SPEC G6), weekly alignments and who is missing (G5), blockers.

Every figure carries the URL of the records behind it (`records`, `page`).
A rep sees only their own light and alignments; another rep's is a 404.
"""

from __future__ import annotations

import datetime as dt

from django.urls import reverse
from django.utils import timezone
from ninja import Router, Schema, Status

from tuijin.core.apiutils import Money, PageMeta
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.limits import NOTES_MAX_LENGTH, bounded_list, short, text

from . import rules, selectors, services
from .models import Blocker, WeeklyAlignment

router = Router(tags=["health"])


class HealthRepOut(Schema):
    id: int
    username: str
    display_name: str


def _rep(u) -> dict:
    return {"id": u.pk, "username": u.username, "display_name": u.label}


class HealthLightOut(Schema):
    rep: HealthRepOut
    light: str
    reasons: list[dict]
    last_progress_at: dt.datetime | None
    days_since_update: int | None
    open_deals: int
    pace_ratio: float | None
    records: str
    page: str


class HealthLightsOut(Schema):
    items: list[HealthLightOut]
    count: int
    counts: dict[str, int]


def _light_out(row: dict) -> dict:
    return {**row, "rep": _rep(row["rep"]), "pace_ratio": None if row["ratio"] is None else float(row["ratio"])}


@router.get("/health/lights", response=HealthLightsOut)
def light_list(request):
    rows = selectors.lights(user=request.user)
    return {"items": [_light_out(r) for r in rows], "count": len(rows), "counts": selectors.light_counts(rows)}


@router.post("/health/lights/evaluate", response=dict)
def light_evaluate(request):
    """Run the light evaluation now (managers and company-wide roles)."""
    if not services.can_manage(request.user):
        raise Forbidden("只有经理可以立即评估健康灯 / only managers can run the evaluation")
    return services.lights_evaluate(now=timezone.now(), actor=request.user)


@router.get("/health/lights/{rep_id}", response=HealthLightOut)
def light_get(request, rep_id: int):
    return _light_out(selectors.light_get(user=request.user, rep_id=rep_id))


class HealthAlignmentOppOut(Schema):
    id: int
    name: str
    customer: str
    stage: str
    amount: Money
    rank: int


class HealthAlignmentOut(Schema):
    id: int
    rep: HealthRepOut
    week_start: dt.date
    week: str
    opportunities: list[HealthAlignmentOppOut]
    departments: list[str]
    has_blocker: bool
    blocker_id: int | None
    blocker_title: str | None
    submitted_at: dt.datetime
    updated_at: dt.datetime
    deadline: dt.datetime
    locked: bool
    version: int


class HealthAlignmentPage(PageMeta):
    items: list[HealthAlignmentOut]


def _alignment_out(a, now) -> dict:
    deadline = rules.deadline_for(a.week_start)
    return {
        "id": a.pk, "rep": _rep(a.rep), "week_start": a.week_start, "week": f"{a.week_start:%G-W%V}",
        "opportunities": [
            {"id": i.opportunity.pk, "name": i.opportunity.name, "customer": i.opportunity.customer.name,
             "stage": str(i.opportunity.stage), "amount": i.opportunity.amount, "rank": i.rank}
            for i in a.items.all()
        ],
        "departments": a.departments, "has_blocker": a.has_blocker, "blocker_id": a.blocker_id,
        "blocker_title": a.blocker.title if a.blocker else None,
        "submitted_at": a.submitted_at, "updated_at": a.updated_at, "deadline": deadline,
        "locked": now >= deadline, "version": a.version,
    }


def _week_param(value: str):
    if not value:
        return None
    week = rules.parse_week(value)
    if week is None:
        raise ValidationFailed({"week": "无效的周 / invalid week: use 2026-11-23 or 2026-W48"})
    return week


@router.get("/health/alignments", response=HealthAlignmentPage)
def alignment_list(request, week: str = "", rep_id: int | None = None, page: int = 1, page_size: int = 50):
    from tuijin.core.apiutils import paginate

    result = paginate(selectors.alignment_list(user=request.user, week_start=_week_param(week), rep_id=rep_id),
                      page, page_size)
    now = timezone.now()
    return {"items": [_alignment_out(a, now) for a in result["items"]], "count": result["count"]}


class HealthBlockerIn(Schema):
    # Request-body bounds (core.limits, docs/api.md); the services check the finer rules (top 3 etc.).
    title: text(Blocker, "title")
    description: short(NOTES_MAX_LENGTH) = ""
    opportunity_id: int | None = None


class HealthAlignmentIn(Schema):
    week_start: short(32) = ""
    opportunity_ids: bounded_list(int, "short_list")
    departments: bounded_list(short(32), "short_list") = []
    has_blocker: bool = False
    blocker_id: int | None = None
    blocker: HealthBlockerIn | None = None
    version: int | None = None


@router.post("/health/alignments", response={200: HealthAlignmentOut, 201: HealthAlignmentOut})
def alignment_submit(request, payload: HealthAlignmentIn):
    """Submit this week's alignment (or next week's after the deadline); a resubmission updates it."""
    data = payload.dict()
    week = rules.parse_week(data["week_start"]) if data["week_start"] else rules.open_week()
    existed = week is not None and WeeklyAlignment.objects.filter(rep=request.user, week_start=week).exists()
    a = services.alignment_submit(
        actor=request.user, week_start=data["week_start"] or None, opportunity_ids=data["opportunity_ids"],
        departments=data["departments"], has_blocker=data["has_blocker"], blocker_id=data["blocker_id"],
        new_blocker=data["blocker"], version=data["version"],
    )
    return Status(200 if existed else 201,
                  _alignment_out(selectors.alignment_get(user=request.user, pk=a.pk), timezone.now()))


class HealthMissingOut(Schema):
    week_start: dt.date
    week: str
    deadline: dt.datetime
    deadline_passed: bool
    submitted: int
    missing: int
    missing_reps: list[HealthRepOut]
    records: str


@router.get("/health/alignments/missing", response=HealthMissingOut)
def alignment_missing(request, week: str = ""):
    """Who of the user's reps has not submitted for the week (default: the current week)."""
    week_start = _week_param(week) or rules.week_start_of(rules.local_today())
    status = selectors.alignment_status(user=request.user, week_start=week_start)
    return {
        "week_start": week_start, "week": f"{week_start:%G-W%V}", "deadline": status["deadline"],
        "deadline_passed": status["deadline_passed"], "submitted": status["submitted"], "missing": status["missing"],
        "missing_reps": [_rep(r["rep"]) for r in status["rows"] if r["missing"]],
        "records": f"{reverse('api:alignment_list')}?week={week_start.isoformat()}",
    }


@router.get("/health/alignments/{alignment_id}", response=HealthAlignmentOut)
def alignment_get(request, alignment_id: int):
    return _alignment_out(selectors.alignment_get(user=request.user, pk=alignment_id), timezone.now())


class HealthBlockerOut(Schema):
    id: int
    title: str
    description: str
    opportunity_id: int | None
    owner: HealthRepOut
    escalated_to: HealthRepOut | None
    status: str
    created_at: dt.datetime


def _blocker_out(b) -> dict:
    return {"id": b.pk, "title": b.title, "description": b.description, "opportunity_id": b.opportunity_id,
            "owner": _rep(b.owner), "escalated_to": _rep(b.escalated_to) if b.escalated_to else None,
            "status": b.status, "created_at": b.created_at}


@router.get("/health/blockers", response=list[HealthBlockerOut])
def blocker_list(request, status: str = ""):
    return [_blocker_out(b) for b in selectors.blocker_list(user=request.user, status=status)[:200]]


@router.post("/health/blockers", response={201: HealthBlockerOut})
def blocker_create(request, payload: HealthBlockerIn):
    b = services.blocker_create(actor=request.user, **payload.dict())
    return Status(201, _blocker_out(selectors.blocker_get(user=request.user, pk=b.pk)))
