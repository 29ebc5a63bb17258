"""Pages of daily reports (phone-first filing), corrections and forecast accuracy.

Thin: every read goes through forecasting.selectors / accuracy, every write
through forecasting.services. A locked report renders without edit controls,
and a POST against it answers 423.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from django.views.decorators.http import require_POST

from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.history import history_rows
from tuijin.core.pages import STALE_MESSAGE, date_or_none, error_page, int_or_none, paginate
from tuijin.core.params import id_param
from tuijin.core.xlsx import xlsx_response
from tuijin.org.models import User
from tuijin.org.selectors import is_company_wide, user_list

from . import selectors, services
from .accuracy import GROUPS, Accuracy, outcome
from .errors import ReportLocked
from .models import CorrectionRequest, DailyReport, ForecastLine

ONE_DECIMAL = decimal.Decimal("0.1")

ACTION_LABELS = {
    "create": _lazy("创建"), "update": _lazy("修改总结"), "line_add": _lazy("添加预测行"), "line_update": _lazy("修改预测行"),
    "line_remove": _lazy("删除预测行"), "submit": _lazy("提交并锁定"), "correction_request": _lazy("发起修正申请"),
    "correction_apply": _lazy("修正生效"), "correction_reject": _lazy("修正被驳回"),
}


def _service_error(request, exc):
    if isinstance(exc, ReportLocked):
        return error_page(request, str(exc), status=423, title=_("日报已锁定"))
    if isinstance(exc, StaleVersion):
        return error_page(request, STALE_MESSAGE, status=409)
    return error_page(request, str(exc), status=403)


@login_required
def home(request):
    user, g = request.user, request.GET
    today = timezone.localdate()
    day = date_or_none(g.get("date")) or today
    scope = g.get("scope", "") if g.get("scope") in ("mine", "team") else ""
    filters = {"rep_id": id_param(g, "rep"), "status": g.get("status", ""), "scope": scope}
    qs = selectors.report_list(user=user, **filters)
    page = paginate(request, qs)
    query = g.copy()
    query.pop("page", None)
    is_manager = user.role != User.Role.REP
    ctx = {
        "today": today, "day": day, "page": page, "filters": filters, "query": query.urlencode(),
        "mine": selectors.report_of_day(user=user, day=today) if user.role in User.SALES_ROLES else None,
        "can_file": user.role in User.SALES_ROLES,
        "is_manager": is_manager,
        "missing": selectors.missing_filers(user=user, day=day) if is_manager else [],
        "working_day": selectors.is_working_day(day),
        "awaiting": selectors.correction_list(user=user, awaiting_me=True).count(),
        "reps": list(user_list(user=user).order_by("username")) if is_manager else [],
        "statuses": DailyReport.Status.choices,
    }
    return render(request, "forecasting/home.html", ctx)


@login_required
@require_POST
def report_new(request):
    day = date_or_none(request.POST.get("date")) or timezone.localdate()
    existing = selectors.report_of_day(user=request.user, day=day)
    if existing is not None:
        return redirect("forecasting:report_detail", pk=existing.pk)
    try:
        report = services.report_create(actor=request.user, date=day, summary=request.POST.get("summary", ""))
    except ValidationFailed as exc:
        messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
        return redirect("forecasting:home")
    except Forbidden as exc:
        return error_page(request, str(exc), status=403)
    return redirect("forecasting:report_detail", pk=report.pk)


def _candidates_by_customer(user: User, report: DailyReport, customer_ids: set[int]) -> dict[int, list]:
    """Evidence candidates for several customers in one query (no query per line)."""
    if not customer_ids:
        return {}
    rows = selectors.candidates_for_customers(user=user, report=report, customer_ids=customer_ids)[:500]
    out: dict[int, list] = defaultdict(list)
    for a in rows:
        if len(out[a.customer_id]) < 30:
            out[a.customer_id].append(a)
    return out


def _history(report: DailyReport) -> list[dict]:
    """The report's trail with line fields labelled and the submitted-lines snapshot summarised."""
    labels = {f.name: f.verbose_name for f in ForecastLine._meta.fields}
    labels.update({"line": _lazy("预测行"), "evidence": _lazy("依据（跟进记录）"), "lines": _lazy("提交的预测行"),
                   "correction": _lazy("修正申请"), "rejection_reason": _lazy("驳回原因")})
    rows = history_rows(report)
    for row in rows:
        row["action"] = ACTION_LABELS.get(row["action_code"], row["action"])
        for ch in row["changes"]:
            raw = str(ch["field"])
            name = raw.split(".", 1)[-1]
            prefix = raw.split(".", 1)[0] + " " if "." in raw else ""
            if name in labels:
                ch["field"] = f"{prefix}{labels[name]}"
            if name in ("rep", str(DailyReport._meta.get_field("rep").verbose_name)):
                ch["after"] = report.rep.label
            elif name == "lines":
                ch["after"] = _("%(n)s 行") % {"n": ch["after"].count("'line'")} if ch["after"] != "—" else "—"
            for side in ("before", "after"):
                ch[side] = {"True": _("是"), "False": _("否")}.get(ch[side], ch[side])
    return rows


def _render_detail(request, report: DailyReport, *, status=200, errors=None, add_post=None, line_post=None):
    user = request.user
    errors = errors or {}
    lines = list(report.lines.all())
    can_edit = report.status == DailyReport.Status.DRAFT and report.rep_id == user.pk
    line_errors = defaultdict(list)
    general = []
    for key, msgs in errors.items():
        if key.startswith("lines["):
            idx = int_or_none(key[6:key.index("]")])
            line_errors[idx].extend(msgs)
        else:
            general.extend(msgs)
    opportunities, add_candidates, candidates = [], [], {}
    add_post = add_post or {}
    if can_edit:
        opportunities = list(selectors.open_opportunities_of(report.rep).exclude(
            pk__in=[ln.opportunity_id for ln in lines]))
        candidates = _candidates_by_customer(user, report, {ln.opportunity.customer_id for ln in lines})
        chosen = int_or_none(add_post.get("opportunity_id") or request.GET.get("opportunity"))
        chosen_opp = next((o for o in opportunities if o.pk == chosen), None)
        if chosen_opp is not None:
            add_candidates = list(selectors.evidence_candidates(user=user, report=report, opportunity_id=chosen_opp.pk))
    add_index = len(lines)
    line_rows = []
    for i, ln in enumerate(lines):
        line_rows.append({
            "line": ln, "index": i, "errors": line_errors.get(i, []),
            "evidence_ids": {e.activity_id for e in ln.evidence.all()},
            "candidates": candidates.get(ln.opportunity.customer_id, []),
            "deviation_label": f"{ln.deviation * 100:+.1f}%" if ln.deviation is not None else "",
        })
    corrections = []
    for c in report.corrections.all():
        slot = selectors.approver_slot(user=user, correction=c) if c.status == CorrectionRequest.Status.PENDING \
            else None
        done = slot and getattr(c, f"{slot}_approver_id")
        corrections.append({"c": c, "slot": None if done else slot})
    history = _history(report)
    ctx = {
        "report": report, "lines": line_rows, "can_edit": can_edit,
        "is_owner": report.rep_id == user.pk,
        "can_request_correction": (report.status == DailyReport.Status.SUBMITTED and report.rep_id == user.pk
                                   and not any(c["c"].status == "pending" for c in corrections)),
        "opportunities": opportunities, "add_candidates": add_candidates, "add_post": add_post,
        "add_selected": {int_or_none(v) for v in add_post.getlist("evidence_ids")} if add_post else set(),
        "add_errors": line_errors.get(add_index, []) if add_post else [],
        "general_errors": general, "line_post": line_post or {},
        "activities": list(selectors.activities_of_day(report=report)),
        "corrections": corrections, "history": history,
        "confidences": ForecastLine.Confidence.choices,
        "threshold_pct": services.deviation_threshold() * 100,
    }
    return render(request, "forecasting/report_detail.html", ctx, status=status)


@login_required
def report_detail(request, pk):
    return _render_detail(request, selectors.report_get(user=request.user, pk=pk))


@login_required
def evidence_options(request, pk):
    """htmx partial: the evidence checkboxes for the opportunity chosen in the add-line form.

    Author only, like the API: 404 for a report you cannot see, 403 for someone else's; an opportunity
    that is missing, invisible, not the rep's or closed renders the same empty list."""
    report = selectors.report_get(user=request.user, pk=pk)
    try:
        opp = selectors.citable_opportunity(user=request.user, report=report,
                                            opportunity_id=request.GET.get("opportunity_id"))
    except Forbidden as exc:
        return error_page(request, str(exc), status=403)
    except ValidationFailed:
        opp = None
    candidates = list(selectors.candidates_for_customers(
        user=request.user, report=report, customer_ids={opp.customer_id})[:30]) if opp else []
    return render(request, "forecasting/_evidence_options.html",
                  {"candidates": candidates, "selected": set(), "name": "evidence_ids", "chosen": opp})


def _post_action(request, pk, action):
    """Run a write on a report from a form; re-render with errors (422) or redirect on success."""
    report = selectors.report_get(user=request.user, pk=pk)
    try:
        result = action(report)
    except ValidationFailed as exc:
        fresh = selectors.report_get(user=request.user, pk=pk)
        return _render_detail(request, fresh, status=422, errors=exc.errors,
                              add_post=request.POST if request.POST.get("form") == "add" else None,
                              line_post=request.POST if request.POST.get("form") == "line" else None)
    except (ReportLocked, Forbidden, StaleVersion) as exc:
        return _service_error(request, exc)
    if isinstance(result, str):
        messages.success(request, result)
    return redirect("forecasting:report_detail", pk=pk)


@login_required
@require_POST
def report_summary(request, pk):
    return _post_action(request, pk, lambda r: (services.report_update(
        actor=request.user, report=r, summary=request.POST.get("summary", "")), _("总结已保存"))[1])


@login_required
@require_POST
def line_add(request, pk):
    p = request.POST
    return _post_action(request, pk, lambda r: (services.line_add(
        actor=request.user, report=r, opportunity_id=p.get("opportunity_id"), amount=p.get("amount"),
        expected_sign_date=p.get("expected_sign_date"), confidence=p.get("confidence"),
        evidence_ids=p.getlist("evidence_ids"), outlier_reason=p.get("outlier_reason", "")), _("预测行已添加"))[1])


def _line_of(request, report, line_id) -> ForecastLine:
    line = selectors.line_get(user=request.user, pk=line_id)
    if line.report_id != report.pk:
        raise selectors.NotFound("forecast line")
    return line


@login_required
@require_POST
def line_update(request, pk, line_id):
    p = request.POST
    fields = {}
    if p.get("form") == "ack":
        fields["outlier_reason"] = p.get("outlier_reason", "")
    else:
        for name in ("amount", "expected_sign_date", "confidence"):
            if name in p:
                fields[name] = p.get(name)
        if "evidence_present" in p:
            fields["evidence_ids"] = p.getlist("evidence_ids")
    return _post_action(request, pk, lambda r: (services.line_update(
        actor=request.user, line=_line_of(request, r, line_id), **fields), _("预测行已更新"))[1])


@login_required
@require_POST
def line_remove(request, pk, line_id):
    return _post_action(request, pk, lambda r: (services.line_remove(
        actor=request.user, line=_line_of(request, r, line_id)), _("预测行已删除"))[1])


@login_required
@require_POST
def report_submit(request, pk):
    return _post_action(request, pk, lambda r: (services.report_submit(
        actor=request.user, report=r, version=int_or_none(request.POST.get("version"))),
        _("日报已提交并锁定"))[1])


@login_required
def correction_new(request, pk):
    report = selectors.report_get(user=request.user, pk=pk)
    lines = list(report.lines.all())
    errors: dict = {}
    post = request.POST
    if request.method == "POST":
        items = []
        for ln in lines:
            if post.get(f"line_{ln.pk}"):
                items.append({"line_id": ln.pk, "amount": post.get(f"amount_{ln.pk}", ""),
                              "expected_sign_date": post.get(f"date_{ln.pk}", ""),
                              "confidence": post.get(f"confidence_{ln.pk}", "")})
        try:
            services.correction_request_create(actor=request.user, report=report, reason=post.get("reason", ""),
                                               items=items)
        except ValidationFailed as exc:
            errors = exc.errors
        except Forbidden as exc:
            return error_page(request, str(exc), status=403)
        else:
            messages.success(request, _("修正申请已提交，等待销售经理和财务BP审批"))
            return redirect("forecasting:report_detail", pk=pk)
    elif report.rep_id != request.user.pk:
        return error_page(request, _("只有日报填写人本人可以发起数据修正申请"), status=403)
    ctx = {"report": report, "lines": lines, "errors": [m for ms in errors.values() for m in ms], "post": post,
           "confidences": ForecastLine.Confidence.choices}
    return render(request, "forecasting/correction_new.html", ctx, status=422 if errors else 200)


def _decide(request, pk, action):
    correction = selectors.correction_get(user=request.user, pk=pk)
    try:
        action(correction)
    except ValidationFailed as exc:
        messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
    except Forbidden as exc:
        return error_page(request, str(exc), status=403)
    next_url = request.POST.get("next")
    if next_url == "corrections":
        return redirect("forecasting:corrections")
    return redirect("forecasting:report_detail", pk=correction.report_id)


@login_required
@require_POST
def correction_approve(request, pk):
    def act(c):
        c = services.correction_approve(actor=request.user, correction=c)
        messages.success(request, _("修正已生效") if c.status == "applied" else _("已审批，等待另一位审批人"))
    return _decide(request, pk, act)


@login_required
@require_POST
def correction_reject(request, pk):
    def act(c):
        services.correction_reject(actor=request.user, correction=c, reason=request.POST.get("reason", ""))
        messages.success(request, _("已驳回修正申请"))
    return _decide(request, pk, act)


@login_required
def corrections(request):
    awaiting = request.GET.get("awaiting", "1") == "1"
    status = request.GET.get("status", "")
    qs = selectors.correction_list(user=request.user, status=status, awaiting_me=awaiting)
    return render(request, "forecasting/corrections.html",
                  {"page": paginate(request, qs), "awaiting": awaiting, "status": status,
                   "statuses": CorrectionRequest.Status.choices})


def default_accuracy_group(user) -> str:
    """Company-wide roles start at regions (one row per region, drill down from there); a table of
    every rep over 12 weeks is 2,400 rows at 200 reps (0.7 s at scale M). Managers start at their reps."""
    return "region" if is_company_wide(user) else "rep"


def _accuracy_from_request(request) -> tuple[Accuracy, str]:
    g = request.GET
    group = g.get("group") if g.get("group") in GROUPS else default_accuracy_group(request.user)
    acc = Accuracy(user=request.user, kind=g.get("period", "week"), start=date_or_none(g.get("start")),
                   end=date_or_none(g.get("end")))
    return acc, group


@login_required
def accuracy(request):
    acc, group = _accuracy_from_request(request)
    rows = acc.table(group)
    for r in rows:
        # Formatted here, not with floatformat|intcomma in the template: a director's weekly table has
        # 200 reps × 12 weeks = 2,400 rows, and those filters were most of the page's time. Same output
        # (amounts have two decimals; the rate is rounded half up to one decimal like floatformat).
        r["forecast_fmt"], r["actual_fmt"], r["won_all_fmt"] = (
            f"{r[k]:,.2f}" for k in ("forecast", "actual", "won_all"))
        r["deviation_fmt"] = (f"{(r['deviation'] * 100).quantize(ONE_DECIMAL, rounding=decimal.ROUND_HALF_UP)}"
                              if r["deviation"] is not None else "")
    missed = acc.missed_lines(limit=200)
    if missed:
        # One reverse() per URL pattern, not two per row.
        report_url = reverse("forecasting:report_detail", args=[0]).replace("/0/", "/{}/")
        opp_url = reverse("opportunity_detail", args=[0]).replace("/0/", "/{}/")
        for m in missed:
            m["report_url"] = report_url.format(m["line"].report_id)
            m["opportunity_url"] = opp_url.format(m["line"].opportunity_id)
            m["amount_fmt"] = f"{m['line'].amount:,.2f}"
    series = acc.series()
    chart = {
        "labels": [s["label"] for s in series],
        "deviation": [float(s["deviation"] * 100) if s["deviation"] is not None else None for s in series],
        "forecast": [float(s["forecast"]) for s in series],
        "actual": [float(s["actual"]) for s in series],
        "links": [s["link"] for s in series],
    }
    ctx = {
        "acc": acc, "group": group, "rows": rows, "series": series, "missed": missed,
        "chart_json": json.dumps(chart), "query": request.GET.urlencode(),
        "groups": [("rep", _("按销售")), ("team", _("按团队")), ("region", _("按大区")), ("company", _("全部"))],
        "periods": [("week", _("按周")), ("month", _("按月"))],
        "start": acc.periods[0].start if acc.periods else None,
        "end": acc.periods[-1].end - dt.timedelta(days=1) if acc.periods else None,
    }
    return render(request, "forecasting/accuracy.html", ctx)


@login_required
def accuracy_records(request):
    g = request.GET
    start = date_or_none(g.get("start")) or timezone.localdate()
    kind = g.get("period", "week")
    acc = Accuracy(user=request.user, kind=kind, start=start, end=start)
    group = g.get("group") if g.get("group") in GROUPS else "rep"
    key = int_or_none(g.get("key"))
    which = g.get("which") if g.get("which") in ("forecast", "hit", "missed", "won") else "forecast"
    records = acc.records(start=start, group=group, key=key, which=which)
    period = acc.periods[0] if acc.periods else None
    rows = [{"r": r, "is_line": isinstance(r, ForecastLine),
             "outcome": outcome(r, period) if isinstance(r, ForecastLine) and period else ""} for r in records]
    return render(request, "forecasting/accuracy_records.html", {
        "rows": rows, "which": which, "period": period, "label": acc.label_of(group, key), "group": group,
        "total": sum((r.amount for r in records), 0),
    })


@login_required
def accuracy_export(request):
    acc, group = _accuracy_from_request(request)
    headers = [_("周期"), _("分组"), _("预测金额"), _("实际签约（预测商机）"), _("全部赢单"), _("偏差率"),
               _("预测行数"), _("命中"), _("未命中")]
    rows = ([r["period"].label, r["label"], r["forecast"], r["actual"], r["won_all"],
             float(r["deviation"]) if r["deviation"] is not None else None, r["line_count"], r["hit_count"],
             r["missed_count"]] for r in acc.table(group))
    return xlsx_response(f"forecast-accuracy-{acc.kind}-{group}", headers, rows)
