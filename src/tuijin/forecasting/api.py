"""API of daily reports, forecast lines, corrections and forecast accuracy (SPEC R1–R4), under /api/forecasts.

Changing a submitted report answers 423 Locked; invisible reports are 404;
bad input is 422 naming the line and field (loc ["body", "lines[2]", "amount"]).
"""

from __future__ import annotations

import datetime as dt
import decimal

from django.utils import timezone
from ninja import Query, Router, Schema

from tuijin.core.apiutils import HistoryOut, Money, PageMeta, history_out, paginate
from tuijin.core.audit import history_for
from tuijin.core.limits import bounded_list, short, text

from . import selectors, services
from .accuracy import GROUPS, Accuracy
from .models import CorrectionRequest, ForecastLine

router = Router(tags=["forecasting"])

Amount = short(32) | int | float  # validated by the service, so a bad amount names its line and field
# Request-body bounds (core.limits, docs/api.md): strings by their model fields, lists by MAX_ITEMS.
SignDate = short(32)
Confidence = text(ForecastLine, "confidence")
OutlierReason = text(ForecastLine, "outlier_reason")
Summary = short(5000)  # services.report_* refuse longer summaries too
EvidenceIds = bounded_list(int, "ids")


class UserRef(Schema):
    id: int
    username: str
    display_name: str

    @staticmethod
    def resolve_display_name(obj):
        return obj.label


class EvidenceOut(Schema):
    activity_id: int
    occurred_at: dt.datetime
    kind: str
    subject: str
    conclusion: str

    @staticmethod
    def resolve_occurred_at(obj):
        return obj.activity.occurred_at

    @staticmethod
    def resolve_kind(obj):
        return obj.activity.kind

    @staticmethod
    def resolve_subject(obj):
        return obj.activity.subject

    @staticmethod
    def resolve_conclusion(obj):
        return obj.activity.conclusion


class OpportunityRef(Schema):
    id: int
    name: str
    customer_id: int
    customer_name: str

    @staticmethod
    def resolve_customer_name(obj):
        return obj.customer.name


class LineOut(Schema):
    id: int
    position: int
    opportunity: OpportunityRef
    amount: Money
    expected_sign_date: dt.date
    confidence: str
    baseline_basis: str
    baseline_mean: Money | None
    baseline_count: int
    deviation: decimal.Decimal | None
    is_outlier: bool
    outlier_reason: str
    original_amount: Money | None
    original_expected_sign_date: dt.date | None
    original_confidence: str
    corrected_at: dt.datetime | None
    evidence: list[EvidenceOut]

    @staticmethod
    def resolve_evidence(obj):
        return list(obj.evidence.all())


class ReportOut(Schema):
    id: int
    rep: UserRef
    date: dt.date
    summary: str
    status: str
    submitted_at: dt.datetime | None
    version: int
    line_count: int
    line_total: Money | None

    @staticmethod
    def resolve_line_count(obj):
        return getattr(obj, "line_count", 0) or 0

    @staticmethod
    def resolve_line_total(obj):
        return getattr(obj, "line_total", None)


class ReportPage(PageMeta):
    items: list[ReportOut]


class CorrectionItemOut(Schema):
    line_id: int
    old_amount: Money
    old_expected_sign_date: dt.date
    old_confidence: str
    new_amount: Money | None
    new_expected_sign_date: dt.date | None
    new_confidence: str


class CorrectionOut(Schema):
    id: int
    report_id: int
    requested_by: UserRef
    reason: str
    status: str
    manager_approver: UserRef | None
    manager_approved_at: dt.datetime | None
    finance_approver: UserRef | None
    finance_approved_at: dt.datetime | None
    rejected_by: UserRef | None
    rejected_at: dt.datetime | None
    rejection_reason: str
    applied_at: dt.datetime | None
    created_at: dt.datetime
    items: list[CorrectionItemOut]

    @staticmethod
    def resolve_items(obj):
        return list(obj.items.all())


class CorrectionPage(PageMeta):
    items: list[CorrectionOut]


class ActivityRef(Schema):
    id: int
    customer_id: int
    kind: str
    occurred_at: dt.datetime
    subject: str
    conclusion: str


class ReportDetail(ReportOut):
    lines: list[LineOut]
    corrections: list[CorrectionOut]
    activities_today: list[ActivityRef]

    @staticmethod
    def resolve_lines(obj):
        return list(obj.lines.all())

    @staticmethod
    def resolve_corrections(obj):
        return list(obj.corrections.all())

    @staticmethod
    def resolve_activities_today(obj):
        return list(selectors.activities_of_day(report=obj))

    @staticmethod
    def resolve_line_count(obj):
        return len(obj.lines.all())

    @staticmethod
    def resolve_line_total(obj):
        return sum((ln.amount for ln in obj.lines.all()), decimal.Decimal("0.00"))


class LineIn(Schema):
    opportunity_id: int | None = None
    amount: Amount | None = None
    expected_sign_date: SignDate | None = None
    confidence: Confidence = ""
    evidence_ids: EvidenceIds = []
    outlier_reason: OutlierReason = ""


class LinePatch(Schema):
    amount: Amount | None = None
    expected_sign_date: SignDate | None = None
    confidence: Confidence | None = None
    evidence_ids: EvidenceIds | None = None
    outlier_reason: OutlierReason | None = None


class DailyReportIn(Schema):
    date: dt.date | None = None
    summary: Summary = ""
    lines: bounded_list(LineIn, "lines") = []


class ReportPatch(Schema):
    summary: Summary
    version: int | None = None


class SubmitIn(Schema):
    version: int | None = None


class CorrectionItemIn(Schema):
    line_id: int
    amount: Amount | None = None
    expected_sign_date: SignDate | None = None
    confidence: Confidence | None = None


class CorrectionIn(Schema):
    reason: text(CorrectionRequest, "reason")
    items: bounded_list(CorrectionItemIn, "lines")


class RejectIn(Schema):
    reason: text(CorrectionRequest, "rejection_reason")


class ReportFilters(Schema):
    rep_id: int | None = None
    date: dt.date | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    status: str = ""
    scope: str = ""
    page: int = 1
    page_size: int = 20


class MissingOut(Schema):
    rep: UserRef
    has_draft: bool


class MissingPage(Schema):
    date: dt.date
    working_day: bool
    items: list[MissingOut]
    count: int


class AccuracyRow(Schema):
    group: str
    key: int | None
    label: str
    period: str
    start: dt.date
    forecast: Money
    actual: Money
    won_all: Money
    deviation: decimal.Decimal | None
    line_count: int
    hit_count: int
    missed_count: int
    won_count: int
    records: dict[str, str]


class AccuracySeries(Schema):
    period: str
    start: dt.date
    forecast: Money
    actual: Money
    won_all: Money
    deviation: decimal.Decimal | None
    records: str


class AccuracyOut(Schema):
    period: str
    group: str
    rows: list[AccuracyRow]
    series: list[AccuracySeries]


class AccuracyFilters(Schema):
    period: str = "week"
    group: str = "rep"
    start: dt.date | None = None
    end: dt.date | None = None


class RecordFilters(Schema):
    period: str = "week"
    start: dt.date
    group: str = "rep"
    key: int | None = None
    which: str = "forecast"


class RecordLine(Schema):
    kind: str
    line_id: int | None
    report_id: int | None
    rep_id: int
    opportunity_id: int
    opportunity_name: str
    customer_name: str
    amount: Money
    expected_sign_date: dt.date | None
    confidence: str
    closed_at: dt.datetime | None
    opportunity_url: str


class RecordPage(Schema):
    items: list[RecordLine]
    count: int


def _line_dicts(lines) -> list[dict]:
    return [{k: getattr(ln, k) for k in ("opportunity_id", "amount", "expected_sign_date", "confidence",
                                          "evidence_ids", "outlier_reason")} for ln in lines]


@router.get("/forecasts/reports", response=ReportPage)
def report_list(request, filters: Query[ReportFilters]):
    f = filters.dict()
    page, page_size = f.pop("page"), f.pop("page_size")
    return paginate(selectors.report_list(user=request.user, **f), page, page_size)


@router.post("/forecasts/reports", response={201: ReportDetail})
def report_create(request, payload: DailyReportIn):
    report = services.report_create(actor=request.user, date=payload.date, summary=payload.summary,
                                    lines=_line_dicts(payload.lines))
    return selectors.report_get(user=request.user, pk=report.pk)


@router.get("/forecasts/reports/{report_id}", response=ReportDetail)
def report_get(request, report_id: int):
    return selectors.report_get(user=request.user, pk=report_id)


@router.patch("/forecasts/reports/{report_id}", response=ReportDetail)
def report_patch(request, report_id: int, payload: ReportPatch):
    report = selectors.report_get(user=request.user, pk=report_id)
    services.report_update(actor=request.user, report=report, summary=payload.summary, version=payload.version)
    return selectors.report_get(user=request.user, pk=report_id)


@router.post("/forecasts/reports/{report_id}/submit", response=ReportDetail)
def report_submit(request, report_id: int, payload: SubmitIn):
    report = selectors.report_get(user=request.user, pk=report_id)
    services.report_submit(actor=request.user, report=report, version=payload.version)
    return selectors.report_get(user=request.user, pk=report_id)


@router.get("/forecasts/reports/{report_id}/history", response=HistoryOut)
def report_history(request, report_id: int):
    return history_out(history_for(selectors.report_get(user=request.user, pk=report_id)))


@router.get("/forecasts/reports/{report_id}/evidence-candidates", response=list[ActivityRef])
def evidence_candidates(request, report_id: int, opportunity_id: int):
    """Activities the report's author may cite on a line about this opportunity (author only: 403 for
    others who see the report, 404 for a report you cannot see; 422 for an opportunity that is missing,
    invisible, someone else's or closed — one answer for all of them)."""
    report = selectors.report_get(user=request.user, pk=report_id)
    return list(selectors.evidence_candidates(user=request.user, report=report, opportunity_id=opportunity_id))


@router.post("/forecasts/reports/{report_id}/lines", response={201: LineOut})
def line_add(request, report_id: int, payload: LineIn):
    report = selectors.report_get(user=request.user, pk=report_id)
    line = services.line_add(actor=request.user, report=report, **payload.dict())
    return _line(request, line.pk)


def _line(request, pk) -> ForecastLine:
    return (ForecastLine.objects.filter(report__in=selectors.report_visible_qs(user=request.user))
            .select_related("opportunity__customer").prefetch_related("evidence__activity").get(pk=pk))


@router.patch("/forecasts/lines/{line_id}", response=LineOut)
def line_patch(request, line_id: int, payload: LinePatch):
    line = selectors.line_get(user=request.user, pk=line_id)
    services.line_update(actor=request.user, line=line, **payload.dict(exclude_unset=True))
    return _line(request, line_id)


@router.delete("/forecasts/lines/{line_id}", response={204: None})
def line_delete(request, line_id: int):
    line = selectors.line_get(user=request.user, pk=line_id)
    services.line_remove(actor=request.user, line=line)
    return None


@router.get("/forecasts/missing", response=MissingPage)
def missing(request, date: dt.date | None = None):
    """Reps (visible to you) who have not submitted a report for the day (default today)."""
    day = date or timezone.localdate()
    items = selectors.missing_filers(user=request.user, day=day)
    return {"date": day, "working_day": selectors.is_working_day(day), "items": items, "count": len(items)}


@router.post("/forecasts/reports/{report_id}/corrections", response={201: CorrectionOut})
def correction_create(request, report_id: int, payload: CorrectionIn):
    report = selectors.report_get(user=request.user, pk=report_id)
    req = services.correction_request_create(actor=request.user, report=report, reason=payload.reason,
                                             items=[i.dict() for i in payload.items])
    return selectors.correction_get(user=request.user, pk=req.pk)


@router.get("/forecasts/corrections", response=CorrectionPage)
def correction_list(request, status: str = "", awaiting_me: bool = False, page: int = 1, page_size: int = 20):
    qs = selectors.correction_list(user=request.user, status=status, awaiting_me=awaiting_me)
    return paginate(qs.prefetch_related("items"), page, page_size)


@router.get("/forecasts/corrections/{correction_id}", response=CorrectionOut)
def correction_get(request, correction_id: int):
    return selectors.correction_get(user=request.user, pk=correction_id)


@router.post("/forecasts/corrections/{correction_id}/approve", response=CorrectionOut)
def correction_approve(request, correction_id: int):
    c = selectors.correction_get(user=request.user, pk=correction_id)
    services.correction_approve(actor=request.user, correction=c)
    return selectors.correction_get(user=request.user, pk=correction_id)


@router.post("/forecasts/corrections/{correction_id}/reject", response=CorrectionOut)
def correction_reject(request, correction_id: int, payload: RejectIn):
    c = selectors.correction_get(user=request.user, pk=correction_id)
    services.correction_reject(actor=request.user, correction=c, reason=payload.reason)
    return selectors.correction_get(user=request.user, pk=correction_id)


def _api_records_url(link: str) -> str:
    # The page link and the API endpoint take the same query string.
    return "/api/forecasts/accuracy/records?" + link.split("?", 1)[1]


@router.get("/forecasts/accuracy", response=AccuracyOut)
def accuracy(request, filters: Query[AccuracyFilters]):
    """Forecast vs actual per group and period; each figure's `records` URL lists the records behind it."""
    group = filters.group if filters.group in GROUPS else "rep"
    acc = Accuracy(user=request.user, kind=filters.period, start=filters.start, end=filters.end)
    rows = [{**r, "period": r["period"].label, "start": r["period"].start,
             "records": {k: _api_records_url(v) for k, v in r["links"].items()}} for r in acc.table(group)]
    series = [{**s, "period": s["label"], "start": s["period"].start, "records": _api_records_url(s["link"])}
              for s in acc.series()]
    return {"period": acc.kind, "group": group, "rows": rows, "series": series}


@router.get("/forecasts/accuracy/records", response=RecordPage)
def accuracy_records(request, filters: Query[RecordFilters]):
    acc = Accuracy(user=request.user, kind=filters.period, start=filters.start, end=filters.start)
    group = filters.group if filters.group in GROUPS else "rep"
    records = acc.records(start=filters.start, group=group, key=filters.key, which=filters.which)
    items = [record_row(r) for r in records]
    return {"items": items, "count": len(items)}


def record_row(r) -> dict:
    from django.urls import reverse

    if isinstance(r, ForecastLine):
        opp = r.opportunity
        return {"kind": "line", "line_id": r.pk, "report_id": r.report_id, "rep_id": r.report.rep_id,
                "opportunity_id": opp.pk, "opportunity_name": opp.name, "customer_name": opp.customer.name,
                "amount": r.amount, "expected_sign_date": r.expected_sign_date, "confidence": r.confidence,
                "closed_at": opp.closed_at, "opportunity_url": reverse("opportunity_detail", args=[opp.pk])}
    return {"kind": "won", "line_id": None, "report_id": None, "rep_id": r.owner_id, "opportunity_id": r.pk,
            "opportunity_name": r.name, "customer_name": r.customer.name, "amount": r.amount,
            "expected_sign_date": r.expected_close_date, "confidence": "", "closed_at": r.closed_at,
            "opportunity_url": reverse("opportunity_detail", args=[r.pk])}

