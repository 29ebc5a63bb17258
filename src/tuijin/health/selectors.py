"""Reads of health lights and weekly alignments, limited to what the user may see (SPEC G5, G6, P3).

Tracked people are active users with the rep role. A rep sees only
themself, a manager the reps of their subtree (org.selectors.visible_owner_ids),
director/VP/admin everyone. Another rep's light or alignment is a 404.
Lights are computed for many reps at once: one aggregate query over
opportunities plus the pace adapter (health.rules.paces).
"""

from __future__ import annotations

import datetime as dt
import decimal

from django.db.models import Count, Max, Prefetch, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from tuijin.core.errors import NotFound
from tuijin.org.models import User
from tuijin.org.selectors import visible_owner_ids
from tuijin.pipeline.models import Opportunity, Stage

from . import rules
from .models import AlignmentOpportunity, Blocker, HealthSettings, WeeklyAlignment

GREEN, YELLOW, RED = "green", "yellow", "red"


def health_settings() -> HealthSettings:
    """The configured rules, or the defaults when nobody saved any (not written on read)."""
    return HealthSettings.objects.filter(pk=1).first() or HealthSettings(pk=1)


def tracked_reps(*, user: User) -> QuerySet[User]:
    """Reps whose light and alignment `user` may see."""
    qs = User.objects.filter(is_active=True, role=User.Role.REP).select_related("manager", "org_unit")
    ids = visible_owner_ids(user)
    if ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.order_by("org_unit__path", "username")


def rep_get(*, user: User, pk) -> User:
    try:
        return tracked_reps(user=user).get(pk=int(pk))
    except (User.DoesNotExist, ValueError, TypeError):
        raise NotFound("rep")


def compute_lights(*, reps: list[User], now: dt.datetime | None = None,
                   config: HealthSettings | None = None) -> list[dict]:
    """One light per rep: {rep, light, reasons, last_progress_at, days_since_update, open_deals, pace, ratio, ...}.

    red: the rep has no open opportunity, or none of the rep's opportunities
    progressed (last_progress_at) within `stale_days` days — exactly
    `stale_days` days counts as stale — or the pace ratio is below `red_below`;
    yellow: pace ratio below `yellow_below`; green otherwise (also without a target).
    """
    now = now or timezone.now()
    config = config or health_settings()
    stats = {
        row["owner_id"]: row
        for row in Opportunity.objects.filter(owner__in=[r.pk for r in reps]).order_by().values("owner_id").annotate(
            last=Max("last_progress_at"), open_deals=Count("id", filter=Q(stage__kind=Stage.Kind.OPEN)),
        )
    }
    pace_by_rep = rules.paces(reps=reps, on_date=rules.local_today(now))
    stale_cutoff = now - dt.timedelta(days=config.stale_days)
    yellow_below = decimal.Decimal(str(config.yellow_below))
    red_below = None if config.red_below is None else decimal.Decimal(str(config.red_below))
    out = []
    for rep in reps:
        row = stats.get(rep.pk, {})
        last, open_deals = row.get("last"), row.get("open_deals", 0)
        pace = pace_by_rep.get(rep.pk)
        ratio = rules.ratio_of(pace)
        reasons = []
        if not open_deals:
            reasons.append({"code": "no_open", "light": RED})
        if last is None or last <= stale_cutoff:
            reasons.append({"code": "stale", "light": RED, "days": None if last is None else (now - last).days,
                            "threshold": config.stale_days})
        if ratio is not None and red_below is not None and ratio < red_below:
            reasons.append({"code": "pace", "light": RED, "ratio": float(ratio), "threshold": float(red_below)})
        elif ratio is not None and ratio < yellow_below:
            reasons.append({"code": "pace", "light": YELLOW, "ratio": float(ratio), "threshold": float(yellow_below)})
        light = RED if any(r["light"] == RED for r in reasons) else YELLOW if reasons else GREEN
        out.append({
            "rep": rep, "light": light, "reasons": reasons, "last_progress_at": last,
            "days_since_update": None if last is None else (now - last).days, "open_deals": open_deals,
            "pace": pace, "ratio": ratio,
            "page": reverse("health:rep", args=[rep.pk]),
            "records": f"{reverse('api:opportunity_list')}?owner_id={rep.pk}",
        })
    return out


def lights(*, user: User, now: dt.datetime | None = None) -> list[dict]:
    return compute_lights(reps=list(tracked_reps(user=user)), now=now)


def light_get(*, user: User, rep_id, now: dt.datetime | None = None) -> dict:
    return compute_lights(reps=[rep_get(user=user, pk=rep_id)], now=now)[0]


def light_counts(rows: list[dict]) -> dict[str, int]:
    counts = {RED: 0, YELLOW: 0, GREEN: 0}
    for row in rows:
        counts[row["light"]] += 1
    return counts


def rep_opportunities(*, user: User, rep: User) -> QuerySet[Opportunity]:
    """The records behind a light: the rep's opportunities, least recently progressed open ones first."""
    from tuijin.pipeline.selectors import opportunity_list

    return opportunity_list(user=user, owner_id=rep.pk).order_by(
        "stage__kind", "last_progress_at", "id")


# --------------------------------------------------------------------------- alignments

def _alignment_qs() -> QuerySet[WeeklyAlignment]:
    return WeeklyAlignment.objects.select_related("rep", "blocker").prefetch_related(
        Prefetch("items", queryset=AlignmentOpportunity.objects.select_related(
            "opportunity", "opportunity__customer", "opportunity__stage").order_by("rank")),
    )


def alignment_list(*, user: User, week_start: dt.date | None = None, rep_id: int | None = None
                   ) -> QuerySet[WeeklyAlignment]:
    qs = _alignment_qs()
    ids = visible_owner_ids(user)
    if ids is not None:
        qs = qs.filter(rep_id__in=ids)
    if week_start:
        qs = qs.filter(week_start=week_start)
    if rep_id:
        qs = qs.filter(rep_id=rep_id)
    return qs.order_by("-week_start", "rep__username")


def alignment_get(*, user: User, pk) -> WeeklyAlignment:
    try:
        return alignment_list(user=user).get(pk=int(pk))
    except (WeeklyAlignment.DoesNotExist, ValueError, TypeError):
        raise NotFound("alignment")


def alignment_status(*, user: User, week_start: dt.date, now: dt.datetime | None = None,
                     reps: list[User] | None = None) -> dict:
    """Who of the user's reps has submitted for the week and who has not, with the deadline.

    {"week_start", "deadline", "deadline_passed", "rows": [{rep, alignment, missing}], "submitted", "missing"}
    """
    now = now or timezone.now()
    reps = reps if reps is not None else list(tracked_reps(user=user))
    deadline = rules.deadline_for(week_start)
    by_rep = {a.rep_id: a for a in _alignment_qs().filter(week_start=week_start, rep_id__in=[r.pk for r in reps])}
    passed = now >= deadline
    rows = [{"rep": r, "alignment": by_rep.get(r.pk), "missing": r.pk not in by_rep} for r in reps]
    return {
        "week_start": week_start, "deadline": deadline, "deadline_passed": passed, "rows": rows,
        "submitted": sum(1 for x in rows if not x["missing"]), "missing": sum(1 for x in rows if x["missing"]),
    }


def missing_reps(*, week_start: dt.date, user: User | None = None) -> list[User]:
    """Reps (of `user`'s subtree, or everyone) without an alignment for the week."""
    qs = User.objects.filter(is_active=True, role=User.Role.REP).select_related("manager")
    if user is not None:
        ids = visible_owner_ids(user)
        if ids is not None:
            qs = qs.filter(pk__in=ids)
    done = WeeklyAlignment.objects.filter(week_start=week_start).values("rep_id")
    return list(qs.exclude(pk__in=done).order_by("username"))


def own_open_opportunities(*, rep: User) -> QuerySet[Opportunity]:
    """What a rep may pick as a TOP3 opportunity: own and open."""
    return (Opportunity.objects.filter(owner=rep, stage__kind=Stage.Kind.OPEN)
            .select_related("customer", "stage").order_by("-amount", "id"))


def blocker_list(*, user: User, status: str = "") -> QuerySet[Blocker]:
    qs = Blocker.objects.select_related("owner", "escalated_to", "opportunity")
    ids = visible_owner_ids(user)
    if ids is not None:
        qs = qs.filter(Q(owner_id__in=ids) | Q(escalated_to=user))
    if status:
        qs = qs.filter(status=status)
    return qs


def blocker_get(*, user: User, pk) -> Blocker:
    try:
        return blocker_list(user=user).get(pk=int(pk))
    except (Blocker.DoesNotExist, ValueError, TypeError):
        raise NotFound("blocker")
