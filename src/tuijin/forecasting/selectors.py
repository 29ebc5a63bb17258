"""Reads of daily reports, forecast lines and corrections that respect row-level visibility.

A report is visible when its rep is in the user's visible set (own for a rep,
the org subtree for a manager, everyone for director/VP/admin). Finance BPs
see every report: they approve corrections and read forecasts company-wide.
Invisible reports are 404. Pages and the API call these same functions.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from tuijin.core.errors import NotFound
from tuijin.followups.models import Activity
from tuijin.followups.selectors import activity_visible_qs
from tuijin.org.models import User
from tuijin.org.selectors import _report_ids, visible_owner_ids

from .models import CorrectionItem, CorrectionRequest, DailyReport, ForecastEvidence, ForecastLine


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of a local calendar day as aware datetimes."""
    start = timezone.make_aware(dt.datetime.combine(day, dt.time.min))
    return start, timezone.make_aware(dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min))


def is_working_day(day: dt.date) -> bool:
    """Monday to Friday; public holidays are not modelled yet."""
    return day.weekday() < 5


def visible_rep_ids(user: User) -> set[int] | None:
    """Ids of users whose reports `user` sees; None means everyone's."""
    if user.is_authenticated and user.is_active and user.role == User.Role.FINANCE:
        return None
    return visible_owner_ids(user)


def report_visible_qs(*, user: User) -> QuerySet[DailyReport]:
    ids = visible_rep_ids(user)
    qs = DailyReport.objects.all()
    return qs if ids is None else qs.filter(rep_id__in=ids)


def report_list(
    *, user: User, rep_id: int | None = None, date: dt.date | None = None, date_from: dt.date | None = None,
    date_to: dt.date | None = None, status: str = "", scope: str = "",
) -> QuerySet[DailyReport]:
    """Visible reports, newest first, with line count and forecast total in the same query."""
    qs = report_visible_qs(user=user).select_related("rep", "rep__org_unit").annotate(
        line_count=Count("lines", distinct=True),
        line_total=Sum("lines__amount"),
    )
    if scope == "mine":
        qs = qs.filter(rep=user)
    elif scope == "team":
        qs = qs.exclude(rep=user)
    if rep_id:
        qs = qs.filter(rep_id=rep_id)
    if date:
        qs = qs.filter(date=date)
    if date_from:
        qs = qs.filter(date__gte=date_from)
    if date_to:
        qs = qs.filter(date__lte=date_to)
    if status in DailyReport.Status.values:
        qs = qs.filter(status=status)
    return qs.order_by("-date", "rep__username", "-id")


def _lines_prefetch() -> Prefetch:
    return Prefetch(
        "lines",
        queryset=ForecastLine.objects.select_related(
            "opportunity", "opportunity__customer", "opportunity__stage"
        ).prefetch_related(
            Prefetch("evidence", queryset=ForecastEvidence.objects.select_related("activity"))
        ).order_by("position", "id"),
    )


def report_get(*, user: User, pk) -> DailyReport:
    """One visible report with its lines, evidence and corrections (a fixed number of queries)."""
    try:
        return (
            report_visible_qs(user=user)
            .select_related("rep", "rep__manager")
            .prefetch_related(
                _lines_prefetch(),
                Prefetch(
                    "corrections",
                    queryset=CorrectionRequest.objects.select_related(
                        "requested_by", "manager_approver", "finance_approver", "rejected_by"
                    ).prefetch_related(
                        Prefetch("items", queryset=CorrectionItem.objects.select_related("line__opportunity"))
                    ),
                ),
            )
            .get(pk=int(pk))
        )
    except (DailyReport.DoesNotExist, ValueError, TypeError):
        raise NotFound("report")


def report_of_day(*, user: User, day: dt.date | None = None) -> DailyReport | None:
    """The user's own report for `day` (default today), if any."""
    day = day or timezone.localdate()
    return DailyReport.objects.filter(rep=user, date=day).first()


def line_get(*, user: User, pk) -> ForecastLine:
    try:
        return ForecastLine.objects.select_related("report", "opportunity").get(
            pk=int(pk), report__in=report_visible_qs(user=user)
        )
    except (ForecastLine.DoesNotExist, ValueError, TypeError):
        raise NotFound("forecast line")


def activities_of_day(*, report: DailyReport) -> QuerySet[Activity]:
    """The rep's own activities on the report's date: shown on the report, linked rather than retyped."""
    start, end = day_bounds(report.date)
    return (
        Activity.objects.filter(owner_id=report.rep_id, occurred_at__gte=start, occurred_at__lt=end)
        .select_related("customer", "opportunity")
        .order_by("occurred_at", "id")
    )


def evidence_candidates(*, report: DailyReport, customer_id: int, limit: int = 30) -> QuerySet[Activity]:
    """Activities that may back a line about this customer: visible to the rep, with a key conclusion,
    before the end of the report's date (and not in the future)."""
    _start, end = day_bounds(report.date)
    until = min(end, timezone.now())
    return (
        activity_visible_qs(user=report.rep)
        .filter(customer_id=customer_id, occurred_at__lt=until)
        .exclude(conclusion="")
        .select_related("owner")
        .order_by("-occurred_at", "-id")[:limit]
    )


def open_opportunities_of(rep: User):
    """The rep's own open opportunities: the only ones a forecast line may name."""
    from tuijin.pipeline.models import Opportunity, Stage

    return (
        Opportunity.objects.filter(owner=rep, stage__kind=Stage.Kind.OPEN)
        .select_related("customer", "stage")
        .order_by("expected_close_date", "name", "id")
    )


def missing_filers(*, user: User, day: dt.date) -> list[dict]:
    """Reps visible to `user` who have not submitted a report for `day` (a working day), with draft status."""
    if not is_working_day(day):
        return []
    ids = visible_owner_ids(user)  # not visible_rep_ids: finance reads reports but manages nobody
    reps = User.objects.filter(is_active=True, role=User.Role.REP).select_related("org_unit")
    if ids is not None:
        reps = reps.filter(pk__in=ids)
    status_of = dict(DailyReport.objects.filter(date=day, rep__in=reps).values_list("rep_id", "status"))
    out = []
    for rep in reps.order_by("org_unit__path", "username"):
        status = status_of.get(rep.pk)
        if status != DailyReport.Status.SUBMITTED:
            out.append({"rep": rep, "has_draft": status == DailyReport.Status.DRAFT})
    return out


def managed_rep_ids(user: User) -> set[int]:
    """Users for whom `user` is in the manager chain (direct manager or above)."""
    return _report_ids(user)


def approver_slot(*, user: User, correction: CorrectionRequest) -> str | None:
    """Which approval `user` may give on this correction: "manager", "finance" or None."""
    if not user.is_active or user.pk == correction.requested_by_id:
        return None
    if correction.report.rep_id in managed_rep_ids(user):
        return "manager"
    if user.role == User.Role.FINANCE:
        return "finance"
    return None


def correction_list(*, user: User, status: str = "", awaiting_me: bool = False) -> QuerySet[CorrectionRequest]:
    qs = CorrectionRequest.objects.filter(report__in=report_visible_qs(user=user)).select_related(
        "report", "report__rep", "requested_by", "manager_approver", "finance_approver", "rejected_by"
    ).annotate(item_count=Count("items"))
    if status in CorrectionRequest.Status.values:
        qs = qs.filter(status=status)
    if awaiting_me:
        cond = Q(manager_approver__isnull=True, report__rep_id__in=managed_rep_ids(user))
        if user.role == User.Role.FINANCE:
            cond |= Q(finance_approver__isnull=True)
        qs = qs.filter(cond, status=CorrectionRequest.Status.PENDING).exclude(requested_by=user)
    return qs.order_by("-created_at", "-id")


def correction_get(*, user: User, pk) -> CorrectionRequest:
    try:
        return (
            CorrectionRequest.objects.filter(report__in=report_visible_qs(user=user))
            .select_related("report", "report__rep", "requested_by", "manager_approver", "finance_approver",
                            "rejected_by")
            .prefetch_related(
                Prefetch("items", queryset=CorrectionItem.objects.select_related("line__opportunity"))
            )
            .get(pk=int(pk))
        )
    except (CorrectionRequest.DoesNotExist, ValueError, TypeError):
        raise NotFound("correction")
