"""Goal pages: objectives, key results, allocation, attenuation, boards, figure records, deviation reports.

Thin: every read goes through goals.selectors / board / report data, every
write through goals.services; errors come back next to their fields.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from decimal import Decimal

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.pages import error_page, paginate
from tuijin.customers.selectors import customer_visible_qs
from tuijin.followups.selectors import activity_visible_qs
from tuijin.org.models import OrgUnit, User
from tuijin.pipeline.selectors import opportunity_visible_qs

from . import board as board_mod
from . import params, permissions, selectors, services
from .models import MetricKind, Period, Target
from .report import CAUSES, cause_label

KR_ROWS = 6


def _on_date(request) -> dt.date:
    return params.day(request.GET.get("on"), field="on") or selectors.today()


def friendly_params(view):
    """A bad query parameter (params.BadParameter) becomes a 400 page naming the parameter, not a 500."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except params.BadParameter as exc:
            message = "；".join(f"{field}：{m}" for field, msgs in exc.errors.items() for m in msgs)
            return error_page(request, message, status=400, title=_("参数有误"))

    return wrapper


def pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def _forbidden(request, exc):
    return error_page(request, str(exc) or _("没有权限"), status=403, title=_("没有权限"))


def visible_records(user, kind: str, qs):
    """Intersect records behind a figure with what the user may see (P3)."""
    if kind == "opportunity":
        return opportunity_visible_qs(user=user).filter(pk__in=qs.values("pk")).select_related(
            "customer", "owner", "stage").order_by("-amount", "-id")
    if kind == "customer":
        return customer_visible_qs(user=user).filter(pk__in=qs.values("pk")).select_related("owner").order_by(
            "-created_at", "-id")
    return activity_visible_qs(user=user).filter(pk__in=qs.values("pk")).select_related(
        "customer", "owner").order_by("-occurred_at", "-id")


# --------------------------------------------------------------------------- home, objectives

@login_required
@friendly_params
def home(request):
    on = _on_date(request)
    user = request.user
    objectives = list(selectors.objective_list(user=user, on_date=on))
    krs = [kr for o in objectives for kr in o.key_results.all()]
    roots = {t.key_result_id: t for t in Target.objects.filter(key_result__in=krs, parent__isnull=True)
             .select_related("key_result__metric", "key_result__objective__period", "org_unit", "user")}
    figures = {kr_id: board_mod.for_viewer(board_mod.target_kpi(t, on), selectors.can_see_target(user, t))
               for kr_id, t in roots.items()}
    rows = [{"objective": o, "krs": [{"kr": kr, "kpi": figures.get(kr.pk)} for kr in o.key_results.all()]}
            for o in objectives]
    return render(request, "goals/home.html", {
        "rows": rows, "on": on, "can_manage": selectors.can_manage_goals(user),
        "is_manager": user.role == User.Role.MANAGER or selectors.can_manage_goals(user),
        "reports": list(selectors.report_list(user=user)[:5]),
        "upcoming": list(selectors.objective_list(user=user).filter(period__start__gt=on)[:5]),
        "past": list(selectors.objective_list(user=user).filter(period__end__lt=on)[:5]),
    })


def _objective_form_data(post) -> tuple[dict, list[dict]]:
    data = {k: post.get(k, "").strip() for k in ("kind", "start", "title", "description")}
    krs = []
    for i in range(KR_ROWS):
        metric, target = post.get(f"kr-{i}-metric", "").strip(), post.get(f"kr-{i}-target", "").strip()
        title = post.get(f"kr-{i}-title", "").strip()
        if metric or target or title:
            krs.append({"metric": metric, "target": target, "title": title, "row": i})
    return data, krs


@login_required
@require_http_methods(["GET", "POST"])
def objective_new(request):
    if not selectors.can_manage_goals(request.user):
        return _forbidden(request, _("只有销售总监、VP 或管理员可以创建公司目标"))
    today = selectors.today()
    data = {"kind": "quarter", "start": services.period_bounds("quarter", today)[0].isoformat(), "title": "",
            "description": ""}
    krs: list[dict] = []
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        data, krs = _objective_form_data(request.POST)
        try:
            from django.db import transaction

            with transaction.atomic():
                period = services.period_create(actor=request.user, kind=data["kind"], start=data["start"])
                objective = services.objective_create(
                    actor=request.user, period=period, title=data["title"], description=data["description"],
                    key_results=[{k: v for k, v in kr.items() if k != "row"} for kr in krs])
        except Forbidden as exc:
            return _forbidden(request, exc)
        except ValidationFailed as exc:
            errors = exc.errors
        else:
            messages.success(request, _("目标已创建，请继续分解到各组织"))
            return redirect("goals:objective_detail", objective.pk)
    # Map key_results[i].field back to the form row it came from.
    row_errors: dict[str, list[str]] = {}
    for key, msgs in errors.items():
        if key.startswith("key_results["):
            idx = int(key[len("key_results["):key.index("]")])
            field = key.split(".", 1)[1] if "." in key else "metric"
            row = krs[idx]["row"] if idx < len(krs) else idx
            row_errors[f"kr-{row}-{field}"] = msgs
    kr_rows = []
    by_row = {kr["row"]: kr for kr in krs}
    for i in range(KR_ROWS):
        kr = by_row.get(i, {})
        kr_rows.append({"i": i, "metric": kr.get("metric", ""), "target": kr.get("target", ""),
                        "title": kr.get("title", ""),
                        "errors": row_errors.get(f"kr-{i}-metric", []) + row_errors.get(f"kr-{i}-target", [])
                        + row_errors.get(f"kr-{i}-title", [])})
    return render(request, "goals/objective_form.html", {
        "data": data, "errors": {k: v for k, v in errors.items() if not k.startswith("key_results[")},
        "kr_rows": kr_rows, "metrics": MetricKind.objects.filter(is_active=True), "kinds": Period.Kind.choices,
    }, status=422 if errors else 200)


@login_required
@friendly_params
def objective_detail(request, pk):
    objective = selectors.objective_get(user=request.user, pk=pk)
    on = _on_date(request)
    krs = list(objective.key_results.all())
    roots = {t.key_result_id: t for t in Target.objects.filter(key_result__in=krs, parent__isnull=True)
             .select_related("key_result__metric", "key_result__objective__period", "org_unit", "user")}
    return render(request, "goals/objective_detail.html", {
        "objective": objective, "on": on, "can_manage": selectors.can_manage_goals(request.user),
        "krs": [{"kr": kr, "kpi": board_mod.for_viewer(board_mod.target_kpi(roots[kr.pk], on),
                                                       selectors.can_see_target(request.user, roots[kr.pk]))
                 if kr.pk in roots else None} for kr in krs],
        "metrics": MetricKind.objects.filter(is_active=True),
    })


@login_required
@require_POST
def key_result_new(request, pk):
    objective = selectors.objective_get(user=request.user, pk=pk)
    try:
        services.key_result_create(actor=request.user, objective=objective, metric=request.POST.get("metric"),
                                   target=request.POST.get("target"), title=request.POST.get("title", ""))
    except Forbidden as exc:
        return _forbidden(request, exc)
    except ValidationFailed as exc:
        for field, msgs in exc.errors.items():
            for m in msgs:
                messages.error(request, f"{field}: {m}")
    else:
        messages.success(request, _("关键结果已添加"))
    return redirect("goals:objective_detail", objective.pk)


# --------------------------------------------------------------------------- cascade, allocation

@login_required
def cascade_view(request, pk):
    kr = selectors.key_result_get(user=request.user, pk=pk)
    data = selectors.cascade(user=request.user, key_result=kr)
    for row in data["rows"]:
        row["can_allocate"] = row["target"].user_id is None and selectors.can_allocate(request.user, row["target"])
        row["growth_pct"], row["parent_growth_pct"] = pct(row["growth"]), pct(row["parent_growth"])
    chart = {
        "labels": [("\u3000" * r["level"]) + r["scope"] for r in data["rows"]],
        "growth": [None if r["growth"] is None else round(r["growth"] * 100, 1) for r in data["rows"]],
        "parent": [None if r["parent_growth"] is None else round(r["parent_growth"] * 100, 1) for r in data["rows"]],
        "flagged": [any(f["kind"] == "growth_drop" for f in r["flags"]) for r in data["rows"]],
        "series": _("增长率%"), "parent_series": _("上级增长率%"),
    }
    return render(request, "goals/cascade.html", {
        "kr": kr, "rows": data["rows"], "flags": data["flags"], "chart_json": json.dumps(chart),
        "unit": kr.metric.unit,
    })


def _allocation_candidates(parent: Target):
    units = list(OrgUnit.objects.filter(parent=parent.org_unit).order_by("path"))
    reps = list(User.objects.filter(org_unit=parent.org_unit, is_active=True,
                                    role__in=[User.Role.REP, User.Role.MANAGER]).order_by("username"))
    existing = {(t.user_id, None if t.user_id else t.org_unit_id): t for t in parent.children.all()}
    rows = [{"kind": "unit", "id": u.pk, "label": u.name, "current": existing.get((None, u.pk))} for u in units]
    rows += [{"kind": "user", "id": u.pk, "label": u.label, "current": existing.get((u.pk, None))} for u in reps]
    return rows


@login_required
@require_http_methods(["GET", "POST"])
def allocate(request, pk):
    parent = selectors.target_get(user=request.user, pk=pk)
    if not selectors.can_allocate(request.user, parent) or parent.user_id:
        return _forbidden(request, _("你不能分解这个目标"))
    candidates = _allocation_candidates(parent)
    errors: dict[str, list[str]] = {}
    values = {f"{c['kind']}-{c['id']}": (str(c["current"].value) if c["current"] else "") for c in candidates}
    if request.method == "POST":
        children, row_keys = [], []
        for c in candidates:
            key = f"{c['kind']}-{c['id']}"
            raw = request.POST.get(key, "").strip()
            values[key] = raw
            if raw:
                children.append({c["kind"]: c["id"], "value": raw})
                row_keys.append(key)
        try:
            result = services.target_allocate(actor=request.user, parent=parent, children=children)
        except Forbidden as exc:
            return _forbidden(request, exc)
        except ValidationFailed as exc:
            for field, msgs in exc.errors.items():
                if field.startswith("children["):
                    idx = int(field[len("children["):field.index("]")])
                    errors.setdefault(row_keys[idx] if idx < len(row_keys) else "__all__", []).extend(msgs)
                else:
                    errors.setdefault("__all__", []).extend(msgs)
        else:
            messages.success(request, _("目标分解已保存"))
            for w in result.warnings:
                messages.warning(request, _("目标衰减：") + w["message"])
            return redirect("goals:cascade", parent.key_result_id)
    for c in candidates:
        key = f"{c['kind']}-{c['id']}"
        c["key"], c["value"], c["errors"] = key, values[key], errors.get(key, [])
    return render(request, "goals/allocate.html", {
        "parent": parent, "kr": parent.key_result, "candidates": candidates,
        "form_errors": errors.get("__all__", []), "growth_pct": pct(parent.growth),
    }, status=422 if errors else 200)


# --------------------------------------------------------------------------- boards and figures

@login_required
def my_board(request):
    return board_view(request, request.user.pk)


@login_required
@friendly_params
def board_view(request, user_id):
    person = selectors.board_user_get(user=request.user, pk=user_id)
    on = _on_date(request)
    data = board_mod.rep_board(person, on)
    chart = {"labels": [k["metric_name"] for k in data["kpis"]],
             "achievement": [round((k["achievement"] or 0) * 100, 1) for k in data["kpis"]],
             "pace": [round(k["ratio"] * 100, 1) for k in data["kpis"]],
             "links": [k["records_url"] for k in data["kpis"]],
             "achievement_series": _("完成率%"), "pace_series": _("进度达成%")}
    return render(request, "goals/board.html", {**data, "chart_json": json.dumps(chart, cls=DjangoJSONEncoder),
                                                "is_self": person.pk == request.user.pk})


@login_required
@friendly_params
def team_board_view(request):
    user = request.user
    unit = permissions.team_board_unit(user)
    if not permissions.can_view_team_board(user, unit):
        return _forbidden(request, _("团队目标看板仅对销售经理、总监、VP 和管理员开放"))
    on = _on_date(request)
    data = board_mod.team_board_for(user, unit, on)
    for row in data["rows"]:
        row["cells"] = [row["kpis"].get(col["key_result_id"]) for col in data["columns"]]
    return render(request, "goals/team.html", {**data, "unit": unit})


@login_required
@friendly_params
def figure_records(request, pk):
    target = selectors.target_get(user=request.user, pk=pk)
    on = _on_date(request)
    kind, qs = board_mod.figure_records(target, on)
    page = paginate(request, visible_records(request.user, kind, qs))
    return render(request, "goals/records.html", {
        "title": f"{target.scope_label} · {target.key_result.metric} · {target.key_result.objective.period}",
        "kind": kind, "page": page, "kpi": board_mod.target_kpi(target, on), "target": target, "on": on,
    })


# --------------------------------------------------------------------------- reports

@login_required
@require_http_methods(["GET", "POST"])
def reports(request):
    if request.method == "POST":
        start = request.POST.get("month", "")
        start = f"{start}-01" if len(start) == 7 else start
        try:
            report, created = services.report_generate(actor=request.user, start=start)
        except Forbidden as exc:
            return _forbidden(request, exc)
        except ValidationFailed as exc:
            messages.error(request, "; ".join(m for ms in exc.errors.values() for m in ms))
            return redirect("goals:reports")
        if not created:
            messages.info(request, _("该周期的报告已存在"))
        return redirect("goals:report_detail", report.pk)
    user = request.user
    return render(request, "goals/reports.html", {
        "reports": list(selectors.report_list(user=user)[:60]),
        "can_generate": selectors.can_manage_goals(user) or user.role == User.Role.MANAGER,
        "default_month": selectors.today().strftime("%Y-%m"),
    })


def visible_report_rows(user, report) -> list[dict]:
    from tuijin.org.selectors import visible_owner_ids

    ids = visible_owner_ids(user)
    manager_path = user.org_unit.path if (user.role == User.Role.MANAGER and user.org_unit_id) else None
    out = []
    for i, row in enumerate(report.data.get("rows", [])):
        if ids is None or (row["user_id"] and row["user_id"] in ids) or (
                not row["user_id"] and manager_path and row["path"].startswith(manager_path)):
            out.append({**row, "index": i})
    return out


def report_rows_for_display(user, report) -> list[dict]:
    rows = visible_report_rows(user, report)
    base = reverse("goals:report_records", args=[report.pk])
    for row in rows:
        row["cause_cells"] = [{
            "key": key, "label": label, "amount": Decimal(row["causes"][key]["amount"]),
            "count": row["causes"][key]["count"], "url": f"{base}?row={row['index']}&cause={key}",
        } for key, label in CAUSES]
        row["actual_url"] = f"{base}?row={row['index']}&cause=actual"
        for k in ("target", "actual", "gap", "unexplained"):
            row[f"{k}_d"] = Decimal(row[k])
    return rows


@login_required
def report_detail(request, pk):
    report = selectors.report_get(user=request.user, pk=pk)
    rows = report_rows_for_display(request.user, report)
    chart = {"labels": [str(label) for _k, label in CAUSES] + [_("未解释")],
             "values": [], "links": []}
    top = rows[0] if rows else None
    if top:
        chart["values"] = [float(c["amount"]) for c in top["cause_cells"]] + [float(top["unexplained_d"])]
        chart["links"] = [c["url"] for c in top["cause_cells"]] + [""]
        chart["title"] = top["name"]
    return render(request, "goals/report_detail.html", {
        "report": report, "rows": rows, "causes": CAUSES, "chart_json": json.dumps(chart),
    })


def report_record_ids(user, report, row_index, cause) -> list[int]:
    rows = {r["index"]: r for r in visible_report_rows(user, report)}
    try:
        row = rows[int(row_index)]
    except (KeyError, TypeError, ValueError):
        from tuijin.core.errors import NotFound

        raise NotFound("report row")
    by_owner = report.data.get("record_ids", {}).get(cause, {})
    return [pk for owner in row["owner_ids"] for pk in by_owner.get(str(owner), [])]


@login_required
def report_records(request, pk):
    report = selectors.report_get(user=request.user, pk=pk)
    cause = request.GET.get("cause", "actual")
    ids = report_record_ids(request.user, report, request.GET.get("row"), cause)
    qs = opportunity_visible_qs(user=request.user).filter(pk__in=ids).select_related(
        "customer", "owner", "stage").order_by("-amount", "-id")
    row = report.data["rows"][int(request.GET["row"])]
    label = _("实际签约") if cause == "actual" else cause_label(cause)
    return render(request, "goals/records.html", {
        "title": f"{report.title} · {row['name']} · {label}", "kind": "opportunity",
        "page": paginate(request, qs), "report": report,
    })


@login_required
def report_xlsx(request, pk):
    from .exports import report_xlsx_response

    report = selectors.report_get(user=request.user, pk=pk)
    return report_xlsx_response(report, report_rows_for_display(request.user, report))


@login_required
def report_pdf(request, pk):
    from .exports import report_pdf_bytes

    report = selectors.report_get(user=request.user, pk=pk)
    pdf = report_pdf_bytes(report, report_rows_for_display(request.user, report))
    resp = HttpResponse(pdf, content_type="application/pdf")
    resp["Content-Disposition"] = f'attachment; filename="goal-report-{report.period_start:%Y-%m}.pdf"'
    return resp
