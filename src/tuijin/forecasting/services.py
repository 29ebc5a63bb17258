"""Writes for daily reports, forecast lines and data corrections (SPEC R1–R3).

Every function validates first and writes nothing when it raises; errors name
the line and field ("lines[2].amount"). A submitted report is locked: every
write to it raises ReportLocked, checked under a row lock so a concurrent
submit cannot let an edit slip in. Only an approved CorrectionRequest (sales
manager AND finance BP) changes a locked report's lines.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.followups.selectors import activity_visible_qs
from tuijin.notify.services import notify
from tuijin.org.models import User
from tuijin.org.selectors import manager_chain
from tuijin.pipeline.models import Opportunity, Stage

from .errors import ReportLocked
from .models import CorrectionItem, CorrectionRequest, DailyReport, ForecastEvidence, ForecastLine
from .selectors import approver_slot, day_bounds

REPORT_FIELDS = ["rep", "date", "summary", "status", "submitted_at"]
LINE_FIELDS = ["opportunity", "amount", "expected_sign_date", "confidence", "is_outlier", "outlier_reason"]
LINE_EDITABLE = {"amount", "expected_sign_date", "confidence", "evidence_ids", "outlier_reason"}
MAX_AMOUNT = decimal.Decimal("1e12")
CENT = decimal.Decimal("0.01")


def deviation_threshold() -> decimal.Decimal:
    """±share of the mean beyond which an amount is an outlier (TUIJIN_FORECAST_DEVIATION, default 0.35)."""
    return decimal.Decimal(str(getattr(settings, "TUIJIN_FORECAST_DEVIATION", "0.35")))


def backfill_days() -> int:
    """How many days back a rep may still file a missed report (TUIJIN_REPORT_BACKFILL_DAYS, default 7)."""
    return int(getattr(settings, "TUIJIN_REPORT_BACKFILL_DAYS", 7))


# --- outlier model (R2-2) -------------------------------------------------------------------------------

def outlier_baseline(opportunity: Opportunity) -> tuple[str, decimal.Decimal | None, int]:
    """(basis, mean, count) of the history an amount is compared with.

    Mean of the customer's own won deals; without any, the mean of won deals of
    customers in the same segment (same industry and size band, both known);
    without either, no check.
    """
    won = Opportunity.objects.filter(stage__kind=Stage.Kind.WON).exclude(pk=opportunity.pk)
    row = won.filter(customer_id=opportunity.customer_id).aggregate(total=Sum("amount"), n=Count("id"))
    if row["n"]:
        return _baseline(ForecastLine.Basis.CUSTOMER, row)
    customer = opportunity.customer
    if customer.industry and customer.size_band:
        row = won.filter(customer__industry=customer.industry, customer__size_band=customer.size_band).aggregate(
            total=Sum("amount"), n=Count("id"))
        if row["n"]:
            return _baseline(ForecastLine.Basis.SEGMENT, row)
    return ForecastLine.Basis.NONE, None, 0


def _baseline(basis: str, row: dict) -> tuple[str, decimal.Decimal | None, int]:
    mean = (decimal.Decimal(row["total"] or 0) / row["n"]).quantize(CENT)
    if mean <= 0:
        # A mean of zero gives no scale to compare with.
        return ForecastLine.Basis.NONE, None, 0
    return basis, mean, row["n"]


def outlier_check(amount: decimal.Decimal, mean: decimal.Decimal | None) -> tuple[decimal.Decimal | None, bool]:
    """(signed deviation from the mean, is it beyond the threshold). Exactly the threshold passes."""
    if mean is None or mean <= 0:
        return None, False
    deviation = (amount - mean) / mean
    # Compare without division so 35% of the mean is exactly 35%, not 0.3499999.
    return deviation.quantize(decimal.Decimal("0.0001")), abs(amount - mean) > deviation_threshold() * mean


def _apply_outlier(line: ForecastLine, opportunity: Opportunity) -> None:
    basis, mean, count = outlier_baseline(opportunity)
    line.baseline_basis, line.baseline_mean, line.baseline_count = basis, mean, count
    line.deviation, line.is_outlier = outlier_check(line.amount, mean)


# --- parsing --------------------------------------------------------------------------------------------

def _parse_amount(value, key: str, errors: dict) -> decimal.Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        errors[key] = _("请填写预计签约金额")
        return None
    if isinstance(value, bool):
        errors[key] = _("金额必须是数字")
        return None
    try:
        amount = decimal.Decimal(str(value).replace(",", "").replace("¥", "").strip())
    except (decimal.InvalidOperation, ValueError):
        errors[key] = _("金额必须是数字")
        return None
    if not amount.is_finite():
        errors[key] = _("金额必须是数字")
    elif amount <= 0:
        errors[key] = _("金额必须大于0") if amount == 0 else _("金额不能为负数")
    elif amount >= MAX_AMOUNT:
        errors[key] = _("金额过大")
    else:
        return amount.quantize(CENT)
    return None


def _parse_date(value, key: str, errors: dict, *, not_before: dt.date | None = None) -> dt.date | None:
    if value in (None, ""):
        errors[key] = _("请填写预计签约日期")
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if not isinstance(value, dt.date):
        try:
            value = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            errors[key] = _("日期格式应为 YYYY-MM-DD")
            return None
    if not_before and value < not_before:
        errors[key] = _("预计签约日期不能早于日报日期（%(day)s）") % {"day": not_before.isoformat()}
        return None
    return value


def _parse_confidence(value, key: str, errors: dict) -> str | None:
    if value not in ForecastLine.Confidence.values:
        errors[key] = _("把握程度无效（可选：%(choices)s）") % {"choices": ", ".join(ForecastLine.Confidence.values)}
        return None
    return value


def _parse_ids(value, key: str, errors: dict) -> list[int]:
    if value in (None, ""):
        return []
    if isinstance(value, (str, int)):
        value = [value]
    try:
        return list(dict.fromkeys(int(v) for v in value))
    except (TypeError, ValueError):
        errors[key] = _("跟进记录编号无效")
        return []


def _opportunity_for(rep: User, opportunity_id, key: str, errors: dict) -> Opportunity | None:
    try:
        opp = Opportunity.objects.select_related("customer", "stage").get(pk=int(opportunity_id))
    except (Opportunity.DoesNotExist, TypeError, ValueError):
        opp = None
    # One message for missing and someone else's, so the error does not reveal other reps' deals.
    if opp is None or opp.owner_id != rep.pk:
        errors[key] = _("商机不存在或不是你负责的商机")
        return None
    if opp.stage.kind != Stage.Kind.OPEN:
        errors[key] = _("商机「%(name)s」已关闭（%(stage)s），不能再预测") % {"name": opp.name, "stage": opp.stage}
        return None
    return opp


def _evidence_errors(*, report: DailyReport, customer_id: int, activities: Iterable, until: dt.datetime) -> list[str]:
    """Why each activity cannot back a line about this customer (empty when all qualify)."""
    problems = []
    for a in activities:
        label = _("跟进记录#%(id)s") % {"id": a.pk}
        if a.customer_id != customer_id:
            problems.append(_("%(label)s属于其他客户，不能作为该商机的依据") % {"label": label})
        elif not (a.conclusion or "").strip():
            problems.append(_("%(label)s没有关键结论") % {"label": label})
        elif a.occurred_at >= until:
            problems.append(_("%(label)s的时间（%(at)s）晚于日报，不能作为依据") % {
                "label": label, "at": timezone.localtime(a.occurred_at).strftime("%Y-%m-%d %H:%M")})
    return problems


def _evidence_until(report: DailyReport, now: dt.datetime | None = None) -> dt.datetime:
    """Evidence must predate both the submission and the end of the report's day."""
    return min(day_bounds(report.date)[1], now or timezone.now())


def _load_evidence(report: DailyReport, ids: list[int], key: str, errors: dict, customer_id: int | None) -> list:
    if not ids:
        return []
    found = {a.pk: a for a in activity_visible_qs(user=report.rep).filter(pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        errors[key] = _("跟进记录不存在：%(ids)s") % {"ids": ", ".join(f"#{i}" for i in missing)}
        return []
    activities = [found[i] for i in ids]
    if customer_id is not None:
        problems = _evidence_errors(report=report, customer_id=customer_id, activities=activities,
                                    until=_evidence_until(report))
        if problems:
            errors[key] = problems
            return []
    return activities


def _clean_line(report: DailyReport, data: dict, index: int, errors: dict, *, taken: set[int]) -> dict:
    """Validate a new line's data; errors go under lines[index].<field>."""
    p = f"lines[{index}]."
    clean = {"opportunity": _opportunity_for(report.rep, data.get("opportunity_id"), p + "opportunity_id", errors)}
    opp = clean["opportunity"]
    if opp is not None and opp.pk in taken:
        errors[p + "opportunity_id"] = _("该商机已在本日报中预测过")
    clean["amount"] = _parse_amount(data.get("amount"), p + "amount", errors)
    clean["expected_sign_date"] = _parse_date(data.get("expected_sign_date"), p + "expected_sign_date", errors,
                                              not_before=report.date)
    clean["confidence"] = _parse_confidence(data.get("confidence"), p + "confidence", errors)
    ids = _parse_ids(data.get("evidence_ids"), p + "evidence_ids", errors)
    clean["evidence"] = _load_evidence(report, ids, p + "evidence_ids", errors, opp.customer_id if opp else None)
    clean["outlier_reason"] = str(data.get("outlier_reason") or "").strip()
    if len(clean["outlier_reason"]) > 500:
        errors[p + "outlier_reason"] = _("最多500字")
    return clean


# --- reports --------------------------------------------------------------------------------------------

def _locked_report(report: DailyReport, actor: User) -> DailyReport:
    """The report row under lock; only its rep may change it, and only while it is a draft."""
    if actor.pk != report.rep_id:
        raise Forbidden(_("只有日报填写人本人可以修改日报"))
    current = DailyReport.objects.select_for_update().get(pk=report.pk)
    if current.status == DailyReport.Status.SUBMITTED:
        raise ReportLocked()
    return current


def _create_line(report: DailyReport, clean: dict, position: int, actor: User, now) -> ForecastLine:
    line = ForecastLine(report=report, position=position, opportunity=clean["opportunity"], amount=clean["amount"],
                        expected_sign_date=clean["expected_sign_date"], confidence=clean["confidence"],
                        outlier_reason=clean["outlier_reason"])
    _apply_outlier(line, clean["opportunity"])
    if line.outlier_reason:
        line.outlier_acknowledged_at = now
    line.save()
    ForecastEvidence.objects.bulk_create([ForecastEvidence(line=line, activity=a) for a in clean["evidence"]])
    return line


def _line_changes(line: ForecastLine, before: dict | None, evidence_before: list[int] | None = None,
                  evidence_after: list[int] | None = None) -> dict:
    after = audit.snapshot(line, LINE_FIELDS)
    changes = audit.diff(before or {}, after)
    if evidence_before != evidence_after:
        changes["evidence"] = [evidence_before, evidence_after]
    changes["line"] = [line.pk, line.pk] if before else [None, line.pk]
    return changes


@transaction.atomic
def report_create(*, actor: User, date: dt.date | str | None = None, summary: str = "",
                  lines: Iterable[dict] = ()) -> DailyReport:
    """Start the actor's report for a day (default today) as a draft, optionally with lines."""
    if actor.role not in User.SALES_ROLES:
        raise Forbidden(_("只有销售人员填写销售日报"))
    errors: dict = {}
    today = timezone.localdate()
    if date in (None, ""):
        day = today
    else:
        try:
            day = date if isinstance(date, dt.date) else dt.date.fromisoformat(str(date))
        except ValueError:
            day = None
            errors["date"] = _("日期格式应为 YYYY-MM-DD")
    if day is not None:
        if day > today:
            errors["date"] = _("不能填写未来日期的日报")
        elif day < today - dt.timedelta(days=backfill_days()):
            errors["date"] = _("最多只能补交%(n)s天内的日报") % {"n": backfill_days()}
        elif DailyReport.objects.filter(rep=actor, date=day).exists():
            errors["date"] = _("%(day)s的日报已存在，请打开它继续填写") % {"day": day.isoformat()}
    summary = (summary or "").strip()
    if len(summary) > 5000:
        errors["summary"] = _("最多5000字")
    if errors:
        raise ValidationFailed(errors)
    draft = DailyReport(rep=actor, date=day, summary=summary)  # unsaved: used for validating lines
    cleaned, taken = [], set()
    for i, data in enumerate(lines or []):
        clean = _clean_line(draft, data, i, errors, taken=taken)
        if clean["opportunity"] is not None:
            taken.add(clean["opportunity"].pk)
        cleaned.append(clean)
    if errors:
        raise ValidationFailed(errors)
    try:
        with transaction.atomic():
            draft.save()
    except IntegrityError:
        # Two tabs creating the same day's report at once: the unique constraint decides.
        raise ValidationFailed({"date": _("%(day)s的日报已存在，请打开它继续填写") % {"day": day.isoformat()}})
    now = timezone.now()
    entries = [(draft, "create", audit.diff({}, audit.snapshot(draft, REPORT_FIELDS)), None, None, None)]
    for i, clean in enumerate(cleaned):
        line = _create_line(draft, clean, i, actor, now)
        entries.append((draft, "line_add", _line_changes(line, None, None, [a.pk for a in clean["evidence"]]),
                        None, None, None))
    audit.record_many(actor=actor, entries=entries)
    return draft


@transaction.atomic
def report_update(*, actor: User, report: DailyReport, summary: str, version: int | None = None) -> DailyReport:
    current = _locked_report(report, actor)
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    summary = (summary or "").strip()
    if len(summary) > 5000:
        raise ValidationFailed({"summary": _("最多5000字")})
    before = audit.snapshot(current, REPORT_FIELDS)
    current.summary = summary
    changes = audit.diff(before, audit.snapshot(current, REPORT_FIELDS))
    if not changes:
        return current
    current.version = F("version") + 1
    current.save()
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="update", changes=changes)
    return current


@transaction.atomic
def line_add(*, actor: User, report: DailyReport, opportunity_id, amount, expected_sign_date, confidence,
             evidence_ids=(), outlier_reason: str = "") -> ForecastLine:
    """Add a forecast line to a draft; the outlier check runs now and again on submit."""
    current = _locked_report(report, actor)
    existing = list(current.lines.values_list("opportunity_id", flat=True))
    errors: dict = {}
    clean = _clean_line(current, {
        "opportunity_id": opportunity_id, "amount": amount, "expected_sign_date": expected_sign_date,
        "confidence": confidence, "evidence_ids": evidence_ids, "outlier_reason": outlier_reason,
    }, len(existing), errors, taken=set(existing))
    if errors:
        raise ValidationFailed(errors)
    position = (current.lines.aggregate(m=Max("position"))["m"] or 0) + 1 if existing else 0
    line = _create_line(current, clean, position, actor, timezone.now())
    DailyReport.objects.filter(pk=current.pk).update(version=F("version") + 1, updated_at=timezone.now())
    audit.record(actor=actor, obj=current, action="line_add",
                 changes=_line_changes(line, None, None, [a.pk for a in clean["evidence"]]))
    return line


def _line_index(line: ForecastLine) -> int:
    return list(ForecastLine.objects.filter(report_id=line.report_id).order_by("position", "id")
                .values_list("pk", flat=True)).index(line.pk)


@transaction.atomic
def line_update(*, actor: User, line: ForecastLine, **data) -> ForecastLine:
    """Change a draft line: amount, expected date, confidence, evidence, outlier acknowledgement."""
    unknown = set(data) - LINE_EDITABLE
    if unknown:
        raise ValidationFailed({k: _("不能修改该字段") for k in sorted(unknown)})
    report = _locked_report(line.report, actor)
    current = ForecastLine.objects.select_related("opportunity__customer").get(pk=line.pk)
    p = f"lines[{_line_index(current)}]."
    errors: dict = {}
    before = audit.snapshot(current, LINE_FIELDS)
    evidence_before = sorted(current.evidence.values_list("activity_id", flat=True))
    amount_changed = False
    if "amount" in data:
        amount = _parse_amount(data["amount"], p + "amount", errors)
        amount_changed = amount is not None and amount != current.amount
        current.amount = amount if amount is not None else current.amount
    if "expected_sign_date" in data:
        day = _parse_date(data["expected_sign_date"], p + "expected_sign_date", errors, not_before=report.date)
        current.expected_sign_date = day or current.expected_sign_date
    if "confidence" in data:
        current.confidence = _parse_confidence(data["confidence"], p + "confidence", errors) or current.confidence
    evidence = None
    if "evidence_ids" in data:
        ids = _parse_ids(data["evidence_ids"], p + "evidence_ids", errors)
        evidence = _load_evidence(report, ids, p + "evidence_ids", errors, current.opportunity.customer_id)
    reason = None
    if "outlier_reason" in data:
        reason = str(data["outlier_reason"] or "").strip()
        if len(reason) > 500:
            errors[p + "outlier_reason"] = _("最多500字")
    if errors:
        raise ValidationFailed(errors)
    if amount_changed:
        # An acknowledgement explained the old amount; a new amount needs its own.
        current.outlier_reason, current.outlier_acknowledged_at = "", None
    if reason is not None:
        current.outlier_reason = reason
        current.outlier_acknowledged_at = timezone.now() if reason else None
    _apply_outlier(current, current.opportunity)
    current.save()
    evidence_after = evidence_before
    if evidence is not None:
        current.evidence.all().delete()
        ForecastEvidence.objects.bulk_create([ForecastEvidence(line=current, activity=a) for a in evidence])
        evidence_after = sorted(a.pk for a in evidence)
    changes = _line_changes(current, before, evidence_before, evidence_after)
    if set(changes) - {"line"}:
        DailyReport.objects.filter(pk=report.pk).update(version=F("version") + 1, updated_at=timezone.now())
        audit.record(actor=actor, obj=report, action="line_update", changes=changes)
    return current


@transaction.atomic
def line_remove(*, actor: User, line: ForecastLine) -> None:
    report = _locked_report(line.report, actor)
    before = audit.snapshot(line, LINE_FIELDS)
    line_id = line.pk
    ForecastLine.objects.filter(pk=line_id).delete()
    DailyReport.objects.filter(pk=report.pk).update(version=F("version") + 1, updated_at=timezone.now())
    changes = audit.diff(before, {})
    changes["line"] = [line_id, None]
    audit.record(actor=actor, obj=report, action="line_remove", changes=changes)


@transaction.atomic
def report_submit(*, actor: User, report: DailyReport, version: int | None = None) -> DailyReport:
    """Check every line (evidence, open own opportunity, date, outlier acknowledged), then lock the report."""
    current = _locked_report(report, actor)
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    now = timezone.now()
    until = _evidence_until(current, now)
    errors: dict = {}
    if not current.summary.strip():
        errors["summary"] = _("请填写今日总结")
    lines = list(
        current.lines.select_related("opportunity", "opportunity__customer", "opportunity__stage")
        .prefetch_related("evidence__activity").order_by("position", "id")
    )
    for i, line in enumerate(lines):
        p = f"lines[{i}]."
        opp = line.opportunity
        name = opp.name
        if opp.owner_id != current.rep_id:
            errors[p + "opportunity_id"] = _("第%(n)s行：商机「%(name)s」已不是你负责的商机") % {"n": i + 1, "name": name}
        elif opp.stage.kind != Stage.Kind.OPEN:
            errors[p + "opportunity_id"] = _("第%(n)s行：商机「%(name)s」已关闭，请删除此行") % {"n": i + 1, "name": name}
        if line.expected_sign_date < current.date:
            errors[p + "expected_sign_date"] = _("第%(n)s行：预计签约日期早于日报日期") % {"n": i + 1}
        activities = [e.activity for e in line.evidence.all()]
        if not activities:
            errors[p + "evidence_ids"] = _(
                "第%(n)s行（%(name)s）：没有关联沟通记录；请至少关联一条该客户在日报之前、带关键结论的跟进记录"
            ) % {"n": i + 1, "name": name}
        else:
            problems = _evidence_errors(report=current, customer_id=opp.customer_id, activities=activities,
                                        until=until)
            if problems:
                errors[p + "evidence_ids"] = [_("第%(n)s行：") % {"n": i + 1} + m for m in problems]
        _apply_outlier(line, opp)
        if line.is_outlier and not line.outlier_reason:
            errors[p + "outlier_reason"] = _(
                "第%(n)s行（%(name)s）：金额¥%(amount)s偏离历史均值¥%(mean)s达%(pct)s，超过±%(limit)s，请填写原因确认"
            ) % {"n": i + 1, "name": name, "amount": f"{line.amount:,.2f}", "mean": f"{line.baseline_mean:,.2f}",
                 "pct": f"{line.deviation * 100:+.1f}%", "limit": f"{deviation_threshold() * 100:.0f}%"}
    if errors:
        raise ValidationFailed(errors)
    if lines:
        ForecastLine.objects.bulk_update(lines, ["baseline_basis", "baseline_mean", "baseline_count", "deviation",
                                                 "is_outlier"])
    before = audit.snapshot(current, REPORT_FIELDS)
    current.status = DailyReport.Status.SUBMITTED
    current.submitted_at = now
    changes = audit.diff(before, audit.snapshot(current, REPORT_FIELDS))
    changes["lines"] = [None, [
        {"line": ln.pk, "opportunity": ln.opportunity_id, "amount": ln.amount, "confidence": ln.confidence,
         "expected_sign_date": ln.expected_sign_date, "is_outlier": ln.is_outlier,
         "outlier_reason": ln.outlier_reason, "evidence": sorted(e.activity_id for e in ln.evidence.all())}
        for ln in lines
    ]]
    current.version = F("version") + 1
    current.save()
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="submit", changes=changes)
    return current


# --- corrections (R3) -----------------------------------------------------------------------------------

def _report_url(report: DailyReport) -> str:
    return reverse("forecasting:report_detail", args=[report.pk])


@transaction.atomic
def correction_request_create(*, actor: User, report: DailyReport, reason: str,
                              items: Iterable[dict]) -> CorrectionRequest:
    """The rep asks to change lines of their submitted report: [{line_id, amount?, expected_sign_date?,
    confidence?}] and a reason. Nothing changes until the manager and a finance BP approve."""
    if actor.pk != report.rep_id:
        raise Forbidden(_("只有日报填写人本人可以发起数据修正申请"))
    current = DailyReport.objects.select_for_update().get(pk=report.pk)
    errors: dict = {}
    if current.status != DailyReport.Status.SUBMITTED:
        errors["report"] = _("草稿日报可以直接修改，无需修正申请")
    elif CorrectionRequest.objects.filter(report=current, status=CorrectionRequest.Status.PENDING).exists():
        errors["report"] = _("该日报已有待审批的修正申请，请等待审批结果")
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = _("请填写修正原因")
    elif len(reason) > 500:
        errors["reason"] = _("最多500字")
    lines = {ln.pk: ln for ln in current.lines.select_related("opportunity__customer")}
    items = list(items or [])
    if not items:
        errors["items"] = _("请至少选择一行要修正的预测")
    planned, seen = [], set()
    for i, item in enumerate(items):
        p = f"items[{i}]."
        try:
            line = lines.get(int(item.get("line_id")))
        except (TypeError, ValueError):
            line = None
        if line is None:
            errors[p + "line_id"] = _("该预测行不属于这份日报")
            continue
        if line.pk in seen:
            errors[p + "line_id"] = _("同一预测行只能出现一次")
            continue
        seen.add(line.pk)
        new = {}
        if item.get("amount") not in (None, ""):
            new["amount"] = _parse_amount(item["amount"], p + "amount", errors)
        if item.get("expected_sign_date") not in (None, ""):
            new["expected_sign_date"] = _parse_date(item["expected_sign_date"], p + "expected_sign_date", errors,
                                                    not_before=current.date)
        if item.get("confidence") not in (None, ""):
            new["confidence"] = _parse_confidence(item["confidence"], p + "confidence", errors)
        changed = {k: v for k, v in new.items() if v is not None and v != getattr(line, k)}
        if not new:
            errors[p + "amount"] = _("请填写至少一个新值（金额、预计签约日期或把握程度）")
        elif not changed and not any(f"{p}{k}" in errors for k in new):
            errors[p + "amount"] = _("新值与当前值相同")
        planned.append((line, changed))
    if errors:
        raise ValidationFailed(errors)
    req = CorrectionRequest.objects.create(report=current, requested_by=actor, reason=reason)
    CorrectionItem.objects.bulk_create([
        CorrectionItem(request=req, line=line, old_amount=line.amount, old_expected_sign_date=line.expected_sign_date,
                       old_confidence=line.confidence, new_amount=ch.get("amount"),
                       new_expected_sign_date=ch.get("expected_sign_date"), new_confidence=ch.get("confidence", ""))
        for line, ch in planned
    ])
    proposal = {f"lines[{line.position}]": {k: [getattr(line, k), v] for k, v in ch.items()} for line, ch in planned}
    audit.record_many(actor=actor, entries=[
        (req, "create", {"report": [None, current.pk], "reason": [None, reason], "items": [None, proposal]},
         None, None, None),
        (current, "correction_request", {"correction": [None, req.pk], "reason": [None, reason]}, None, None, None),
    ])
    chain = manager_chain(current.rep)
    finance = list(User.objects.filter(role=User.Role.FINANCE, is_active=True))
    notify(
        recipients=chain[:1] + finance, kind="forecast_correction",
        title=_("%(rep)s申请修正%(day)s的日报，等待你审批") % {"rep": current.rep.label, "day": current.date},
        body=reason, link=_report_url(current), dedupe_key=f"forecast-correction:{req.pk}:requested",
    )
    return req


def _locked_pending(correction: CorrectionRequest) -> CorrectionRequest:
    current = CorrectionRequest.objects.select_for_update().select_related("report", "report__rep").get(
        pk=correction.pk)
    if current.status != CorrectionRequest.Status.PENDING:
        raise ValidationFailed({"status": _("该申请已处理（%(status)s）") % {"status": current.get_status_display()}})
    return current


def _slot_or_refuse(actor: User, correction: CorrectionRequest) -> str:
    if actor.pk == correction.requested_by_id:
        raise Forbidden(_("不能审批自己发起的申请"))
    slot = approver_slot(user=actor, correction=correction)
    if slot is None:
        raise Forbidden(_("只有该销售的上级经理或财务BP可以审批"))
    return slot


@transaction.atomic
def correction_approve(*, actor: User, correction: CorrectionRequest) -> CorrectionRequest:
    """Record the actor's approval (manager or finance); the second of the two applies the correction."""
    current = _locked_pending(correction)
    slot = _slot_or_refuse(actor, current)
    now = timezone.now()
    if getattr(current, f"{slot}_approver_id") is not None:
        label = _("销售经理") if slot == "manager" else _("财务BP")
        raise ValidationFailed({"status": _("%(who)s已审批过该申请") % {"who": label}})
    setattr(current, f"{slot}_approver", actor)
    setattr(current, f"{slot}_approved_at", now)
    current.save(update_fields=[f"{slot}_approver", f"{slot}_approved_at"])
    audit.record(actor=actor, obj=current, action=f"approve_{slot}", changes={f"{slot}_approver": [None, actor.pk]})
    if current.manager_approver_id and current.finance_approver_id:
        _apply(actor, current, now)
    return current


def _apply(actor: User, correction: CorrectionRequest, now) -> None:
    report = correction.report
    items = list(correction.items.select_related("line__opportunity__customer"))
    changes: dict = {"correction": [None, correction.pk]}
    lines = []
    for item in items:
        line = ForecastLine.objects.select_for_update().get(pk=item.line_id)
        line.opportunity = item.line.opportunity
        if line.corrected_at is None:
            # Keep what was submitted: the first correction freezes the originals.
            line.original_amount = line.amount
            line.original_expected_sign_date = line.expected_sign_date
            line.original_confidence = line.confidence
        p = f"lines[{line.position}]."
        for field, new in (("amount", item.new_amount), ("expected_sign_date", item.new_expected_sign_date),
                           ("confidence", item.new_confidence)):
            if new not in (None, "") and new != getattr(line, field):
                changes[p + field] = [getattr(line, field), new]
                setattr(line, field, new)
        _apply_outlier(line, line.opportunity)
        if line.is_outlier and not line.outlier_reason:
            line.outlier_reason = correction.reason
            line.outlier_acknowledged_at = now
        line.corrected_at = now
        lines.append(line)
    ForecastLine.objects.bulk_update(lines, [
        "amount", "expected_sign_date", "confidence", "original_amount", "original_expected_sign_date",
        "original_confidence", "corrected_at", "baseline_basis", "baseline_mean", "baseline_count", "deviation",
        "is_outlier", "outlier_reason", "outlier_acknowledged_at",
    ])
    correction.status = CorrectionRequest.Status.APPLIED
    correction.applied_at = now
    correction.save(update_fields=["status", "applied_at"])
    DailyReport.objects.filter(pk=report.pk).update(version=F("version") + 1, updated_at=now)
    audit.record_many(actor=actor, entries=[
        (correction, "apply", {"status": [CorrectionRequest.Status.PENDING.value, correction.status]},
         None, None, None),
        (report, "correction_apply", changes, None, None, None),
    ])
    notify(
        recipients=[report.rep], kind="forecast_correction_result",
        title=_("你对%(day)s日报的修正申请已生效") % {"day": report.date}, link=_report_url(report),
        dedupe_key=f"forecast-correction:{correction.pk}:applied",
    )


@transaction.atomic
def correction_reject(*, actor: User, correction: CorrectionRequest, reason: str) -> CorrectionRequest:
    """Either approver may reject, with a reason; the report keeps its values."""
    current = _locked_pending(correction)
    _slot_or_refuse(actor, current)
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed({"reason": _("驳回必须填写原因")})
    if len(reason) > 500:
        raise ValidationFailed({"reason": _("最多500字")})
    current.status = CorrectionRequest.Status.REJECTED
    current.rejected_by, current.rejected_at, current.rejection_reason = actor, timezone.now(), reason
    current.save(update_fields=["status", "rejected_by", "rejected_at", "rejection_reason"])
    audit.record_many(actor=actor, entries=[
        (current, "reject", {"status": [CorrectionRequest.Status.PENDING.value, current.status],
                             "rejection_reason": [None, reason]}, None, None, None),
        (current.report, "correction_reject", {"correction": [None, current.pk], "rejection_reason": [None, reason]},
         None, None, None),
    ])
    notify(
        recipients=[current.report.rep], kind="forecast_correction_result",
        title=_("你对%(day)s日报的修正申请被驳回") % {"day": current.report.date}, body=reason,
        link=_report_url(current.report), dedupe_key=f"forecast-correction:{current.pk}:rejected",
    )
    return current


def report_reminders_send(*, day: dt.date) -> int:
    """Remind every active rep without a submitted report for `day` (a working day); returns how many
    were newly notified. Safe to run again: one notification per rep and day."""
    from .selectors import is_working_day

    if not is_working_day(day):
        return 0
    submitted = DailyReport.objects.filter(date=day, status=DailyReport.Status.SUBMITTED).values("rep_id")
    sent = 0
    for rep in User.objects.filter(is_active=True, role=User.Role.REP).exclude(pk__in=submitted).order_by("pk"):
        sent += len(notify(
            recipients=[rep], kind="forecast_report_missing", title=_("今天（%(day)s）的销售日报还没有提交") % {
                "day": day.isoformat()},
            link=reverse("forecasting:home"), dedupe_key=f"forecast-report-missing:{rep.pk}:{day.isoformat()}",
            email=False,
        ))
    return sent
