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
from django.utils.translation import gettext as _

from tuijin.core.errors import Forbidden, NotFound, ValidationFailed
from tuijin.followups.models import Activity
from tuijin.followups.selectors import activity_visible_qs
from tuijin.org.models import User
from tuijin.org.selectors import report_ids, visible_owner_ids

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


def evidence_candidates(*, user: User, report: DailyReport, opportunity_id, limit: int = 30) -> QuerySet[Activity]:
    """Activities the report's author may cite on a line about `opportunity_id`: visible to the caller AND
    citable by the line (same customer, a key conclusion, before the end of the report's date and not in the
    future).

    Only the author asks for candidates to cite: anyone else who can see the report gets Forbidden (403),
    a report they cannot see is NotFound (404, from report_get). So the caller's visible set is the rep's
    and the result is the intersection of both; it is still filtered by the caller explicitly so a future
    caller other than the author cannot widen it. An opportunity_id that is missing, invisible, not the
    rep's own or not open answers one and the same ValidationFailed, so nothing is revealed about it.
    """
    opp = citable_opportunity(user=user, report=report, opportunity_id=opportunity_id)
    return candidates_for_customers(user=user, report=report, customer_ids={opp.customer_id})[:limit]


def citable_opportunity(*, user: User, report: DailyReport, opportunity_id):
    """The rep's own open opportunity `opportunity_id`, asked by the report's author (else Forbidden);
    missing, invisible, someone else's or closed all raise the same ValidationFailed."""
    if not user.is_active or user.pk != report.rep_id:
        raise Forbidden(_("只有日报填写人本人可以选择预测依据"))
    opp = open_opportunities_of(report.rep).filter(pk=_int_or_none(opportunity_id)).first()
    if opp is None:
        raise ValidationFailed({"opportunity_id": [_("商机不存在或不是你负责的商机")]})
    return opp


def candidates_for_customers(*, user: User, report: DailyReport, customer_ids) -> QuerySet[Activity]:
    """Citable activities of these customers, limited to what both `user` and the report's rep may see."""
    _start, end = day_bounds(report.date)
    until = min(end, timezone.now())
    qs = activity_visible_qs(user=user).filter(customer_id__in=customer_ids, occurred_at__lt=until)
    if user.pk != report.rep_id:
        qs = qs.filter(pk__in=activity_visible_qs(user=report.rep).values("pk"))
    return qs.exclude(conclusion="").select_related("owner", "customer").order_by("-occurred_at", "-id")


def _int_or_none(value) -> int | None:
    try:
        n = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return n if 0 < n < 2**63 else None  # beyond a 64-bit id: no such row (and no overflow in the driver)


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
    return report_ids(user)


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
