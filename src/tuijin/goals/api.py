"""API of tuijin.goals: metrics, objectives, key results, target allocation, attenuation, boards,
figure records and deviation reports (+ Excel/PDF). Every figure carries a `records` URL (SPEC P6)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Router, Schema, Status
from ninja.errors import ValidationError

from tuijin.core.apiutils import MAX_PAGE, money, validation_detail
from tuijin.core.errors import Forbidden, NotFound
from tuijin.core.limits import NOTES_MAX_LENGTH, bounded_list, short, text
from tuijin.org.models import User

from . import board as board_mod
from . import params, permissions, selectors, services
from .models import KeyResult, MetricKind, Objective, Target
from .report import CAUSES
from .views import report_record_ids, report_rows_for_display, visible_records, visible_report_rows

router = Router(tags=["goals"])


def _on(on: str | None) -> dt.date:
    try:
        return params.day(on, field="on") or selectors.today()
    except params.BadParameter as exc:
        raise ValidationError(validation_detail(exc.errors, where="query"))


class MetricOut(Schema):
    key: str
    name: str
    name_en: str
    unit: str
    additive: bool
    description: str


class KeyResultIn(Schema):
    metric: short(64)
    target: Any
    title: text(KeyResult, "title") = ""


class ObjectiveIn(Schema):
    period_kind: short(16)
    period_start: Any
    period_end: Any = None
    title: text(Objective, "title")
    description: short(NOTES_MAX_LENGTH) = ""
    key_results: bounded_list(KeyResultIn, "short_list") = []


class ChildIn(Schema):
    unit: int | None = None
    user: int | None = None
    value: Any = None


class AllocateIn(Schema):
    children: bounded_list(ChildIn, "children")


class ReportIn(Schema):
    start: Any
    end: Any = None


def _figure(value, unit: str):
    """A goal figure: money (two-decimal string, like every API amount) when the metric counts yuan."""
    return money(value) if unit == MetricKind.Unit.CNY else value


def _kpi_out(k: dict) -> dict:
    out = {key: k[key] for key in ("target_id", "key_result_id", "key_result", "metric", "metric_name", "unit",
                                   "period", "period_start", "period_end", "target", "actual", "expected",
                                   "ratio", "achievement", "status")}
    for key in ("target", "actual", "expected"):
        out[key] = _figure(out[key], k["unit"])
    out["records"] = k["api_records_url"]
    out["page"] = k["records_url"]
    return out


def _target_out(t: Target, on: dt.date | None = None, *, unit: str, linked: bool = True) -> dict:
    """A target; `records` is None when the viewer may not open them (an ancestor shown for context)."""
    return {
        "id": t.pk, "key_result_id": t.key_result_id, "parent_id": t.parent_id, "org_unit_id": t.org_unit_id,
        "org_unit": t.org_unit.name, "user_id": t.user_id, "scope": t.scope_label, "value": _figure(t.value, unit),
        "baseline": _figure(t.baseline, unit), "growth": t.growth, "depth": t.depth,
        "records": board_mod.api_figure_url(t.pk, on or selectors.today()) if linked else None,
    }


def _objective_out(o, on: dt.date, user) -> dict:
    krs = list(o.key_results.all())
    roots = {t.key_result_id: t for t in Target.objects.filter(key_result__in=krs, parent__isnull=True)
             .select_related("key_result__metric", "key_result__objective__period", "org_unit", "user")}
    return {
        "id": o.pk, "title": o.title, "description": o.description,
        "period": {"id": o.period_id, "kind": o.period.kind, "name": o.period.name, "start": o.period.start,
                   "end": o.period.end},
        "key_results": [{
            "id": kr.pk, "title": kr.title, "metric": kr.metric.key,
            "company": _kpi_out(board_mod.for_viewer(board_mod.target_kpi(roots[kr.pk], on),
                                                     selectors.can_see_target(user, roots[kr.pk])))
            if kr.pk in roots else None,
            "attenuation": f"/api/goals/key-results/{kr.pk}/attenuation",
        } for kr in krs],
    }


@router.get("/goals/metrics", response=list[MetricOut])
def metrics_list(request):
    return list(MetricKind.objects.filter(is_active=True))


@router.get("/goals/objectives")
def objectives(request, on: str | None = None, all: bool = False):
    """Objectives whose period contains `on` (default today); all=true lists every period."""
    day = _on(on)
    qs = selectors.objective_list(user=request.user, on_date=None if all else day)
    items = [_objective_out(o, day, request.user) for o in qs]
    return {"items": items, "count": len(items)}


@router.post("/goals/objectives", response={201: dict})
def objective_create(request, payload: ObjectiveIn):
    from django.db import transaction

    with transaction.atomic():
        period = services.period_create(actor=request.user, kind=payload.period_kind, start=payload.period_start,
                                        end=payload.period_end)
        o = services.objective_create(actor=request.user, period=period, title=payload.title,
                                      description=payload.description,
                                      key_results=[kr.dict() for kr in payload.key_results])
    return _objective_out(selectors.objective_get(user=request.user, pk=o.pk), selectors.today(), request.user)


@router.get("/goals/objectives/{objective_id}")
def objective_detail(request, objective_id: int, on: str | None = None):
    return _objective_out(selectors.objective_get(user=request.user, pk=objective_id), _on(on), request.user)


@router.post("/goals/objectives/{objective_id}/key-results", response={201: dict})
def key_result_create(request, objective_id: int, payload: KeyResultIn):
    o = selectors.objective_get(user=request.user, pk=objective_id)
    kr = services.key_result_create(actor=request.user, objective=o, metric=payload.metric, target=payload.target,
                                    title=payload.title)
    root = kr.targets.select_related("org_unit", "user").get(parent__isnull=True)
    return {"id": kr.pk, "title": kr.title, "metric": kr.metric.key,
            "company_target": _target_out(root, unit=kr.metric.unit,
                                          linked=selectors.can_see_target(request.user, root))}


@router.get("/goals/key-results/{kr_id}/attenuation")
def attenuation(request, kr_id: int):
    kr = selectors.key_result_get(user=request.user, pk=kr_id)
    data = selectors.cascade(user=request.user, key_result=kr)
    return {
        "key_result": {"id": kr.pk, "title": kr.title, "metric": kr.metric.key, "period": kr.objective.period.name},
        "levels": [{**_target_out(r["target"], unit=kr.metric.unit, linked=r["own_visible"]), "level": r["level"],
                    "scope_kind": r["scope_kind"],
                    "parent_growth": r["parent_growth"], "children_sum": _figure(r["children_sum"], kr.metric.unit), "flags": r["flags"]}
                   for r in data["rows"]],
        "flags": data["flags"],
    }


@router.get("/goals/targets/{target_id}")
def target_detail(request, target_id: int, on: str | None = None):
    t = selectors.target_get(user=request.user, pk=target_id)
    return {**_target_out(t, _on(on), unit=t.key_result.metric.unit),
            "figure": _kpi_out(board_mod.target_kpi(t, _on(on)))}


@router.post("/goals/targets/{target_id}/allocate")
def allocate(request, target_id: int, payload: AllocateIn):
    """Set the children of a target; the response carries the attenuation warnings of the saved allocation."""
    parent = selectors.target_get(user=request.user, pk=target_id)
    children = [{k: v for k, v in c.dict().items() if v is not None or k == "value"} for c in payload.children]
    result = services.target_allocate(actor=request.user, parent=parent, children=children)
    saved = Target.objects.filter(pk__in=[t.pk for t in result.targets]).select_related("org_unit", "user")
    unit = parent.key_result.metric.unit
    return {"parent": _target_out(result.parent, unit=unit), "targets": [_target_out(t, unit=unit) for t in saved],
            "warnings": result.warnings}


def _record_out(kind: str, r) -> dict:
    if kind == "opportunity":
        return {"id": r.pk, "kind": kind, "name": r.name, "customer_id": r.customer_id, "customer": r.customer.name,
                "owner_id": r.owner_id, "stage": r.stage.code, "amount": money(r.amount), "closed_at": r.closed_at,
                "expected_close_date": r.expected_close_date, "url": f"/api/opportunities/{r.pk}"}
    if kind == "customer":
        return {"id": r.pk, "kind": kind, "name": r.name, "owner_id": r.owner_id, "status": r.status,
                "created_at": r.created_at, "url": f"/api/customers/{r.pk}"}
    return {"id": r.pk, "kind": kind, "name": str(r), "customer_id": r.customer_id, "customer": r.customer.name,
            "owner_id": r.owner_id, "occurred_at": r.occurred_at, "url": f"/api/activities/{r.pk}"}


def _page(qs, page: int, page_size: int, kind: str) -> dict:
    page, page_size = min(max(page, 1), MAX_PAGE), min(max(page_size, 1), 200)
    count = qs.count()
    items = list(qs[(page - 1) * page_size: page * page_size])
    return {"kind": kind, "count": count, "items": [_record_out(kind, r) for r in items]}


@router.get("/goals/targets/{target_id}/records")
def target_records(request, target_id: int, on: str | None = None, page: int = 1, page_size: int = 50):
    """The records a target's actual value was computed from (visible ones)."""
    t = selectors.target_get(user=request.user, pk=target_id)
    kind, qs = board_mod.figure_records(t, _on(on))
    return _page(visible_records(request.user, kind, qs), page, page_size, kind)


def _board_out(person: User, on: dt.date) -> dict:
    data = board_mod.rep_board(person, on)
    a = data["actions"]
    return {
        "user": {"id": person.pk, "username": person.username, "display_name": person.label},
        "on": on,
        "kpis": [{**_kpi_out(k), "top_records": [_record_out(k["record_kind"], r) for r in k["records"]]}
                 for k in data["kpis"]],
        "pipeline": [_record_out("opportunity", o) for o in data["pipeline"]],
        "next_actions": {
            "high_value_no_contact": [{"id": c.pk, "name": c.name, "ltv": money(c.ltv), "last_contact_at": c.last_contact_at}
                                      for c in a["high_value_no_contact"]],
            "stalled": [_record_out("opportunity", o) | {"stage_entered_at": o.stage_entered_at} for o in a["stalled"]],
            "repeat_candidates": [{"id": c.pk, "name": c.name, "last_won": c.last_won} for c in a["repeat_candidates"]],
        },
    }


@router.get("/goals/boards/me")
def board_me(request, on: str | None = None):
    return _board_out(selectors.board_user_get(user=request.user, pk=request.user.pk), _on(on))


@router.get("/goals/boards/team")
def board_team(request, on: str | None = None):
    """Every visible person's KPIs and the roll-up of the viewer's unit (goals.permissions: 403 for reps and
    cross-role staff, as on the page)."""
    user = request.user
    unit = permissions.team_board_unit(user)
    if not permissions.can_view_team_board(user, unit):
        raise Forbidden(_("团队目标看板仅对销售经理、总监、VP 和管理员开放"))
    day = _on(on)
    data = board_mod.team_board_for(user, unit, day)
    return {
        "on": day,
        "rollup": [_kpi_out(k) for k in data["rollup"]],
        "people": [{"user": {"id": r["person"].pk, "username": r["person"].username,
                             "display_name": r["person"].label},
                    "board": f"/api/goals/boards/{r['person'].pk}",
                    "kpis": [_kpi_out(k) for k in r["kpis"].values()]} for r in data["rows"]],
    }


@router.get("/goals/boards/{user_id}")
def board_user(request, user_id: int, on: str | None = None):
    return _board_out(selectors.board_user_get(user=request.user, pk=user_id), _on(on))


def _report_summary(r) -> dict:
    return {"id": r.pk, "title": r.title, "period_start": r.period_start, "period_end": r.period_end,
            "as_of": r.as_of, "generated_at": r.generated_at,
            "excel": f"/api/goals/reports/{r.pk}/excel", "pdf": f"/api/goals/reports/{r.pk}/pdf",
            "page": reverse("goals:report_detail", args=[r.pk])}


@router.get("/goals/reports")
def reports(request):
    items = [_report_summary(r) for r in selectors.report_list(user=request.user)[:200]]
    return {"items": items, "count": len(items)}


@router.post("/goals/reports", response={200: dict, 201: dict})
def report_create(request, payload: ReportIn):
    """Generate the report of a period (default: the month of `start`); an existing one is returned (200)."""
    report, created = services.report_generate(actor=request.user, start=payload.start, end=payload.end)
    return Status(201 if created else 200, _report_detail(request, report))


def _report_detail(request, report) -> dict:
    rows = []
    base = f"/api/goals/reports/{report.pk}/records"
    for row in visible_report_rows(request.user, report):
        rows.append({
            "index": row["index"], "kind": row["kind"], "name": row["name"], "unit_id": row["unit_id"],
            "user_id": row["user_id"], "depth": row["depth"],
            "target": money(row["target"]), "actual": money(row["actual"]),
            "gap": money(row["gap"]), "unexplained": money(row["unexplained"]),
            "actual_records": f"{base}?row={row['index']}&cause=actual",
            "causes": [{"key": key, "label": str(label), "amount": money(row["causes"][key]["amount"]),
                        "raw": money(row["causes"][key]["raw"]), "count": row["causes"][key]["count"],
                        "records": f"{base}?row={row['index']}&cause={key}"} for key, label in CAUSES],
        })
    return {**_report_summary(report), "method": report.data.get("method", {}), "rows": rows}


@router.get("/goals/reports/{report_id}")
def report_detail(request, report_id: int):
    return _report_detail(request, selectors.report_get(user=request.user, pk=report_id))


@router.get("/goals/reports/{report_id}/records")
def report_records(request, report_id: int, row: int, cause: str = "actual", page: int = 1, page_size: int = 50):
    report = selectors.report_get(user=request.user, pk=report_id)
    if cause != "actual" and cause not in dict(CAUSES):
        raise NotFound("cause")
    ids = report_record_ids(request.user, report, row, cause)
    from tuijin.pipeline.selectors import opportunity_visible_qs

    qs = opportunity_visible_qs(user=request.user).filter(pk__in=ids).select_related(
        "customer", "owner", "stage").order_by("-amount", "-id")
    return _page(qs, page, page_size, "opportunity")


@router.get("/goals/reports/{report_id}/excel")
def report_excel(request, report_id: int):
    from .exports import report_xlsx_response

    report = selectors.report_get(user=request.user, pk=report_id)
    return report_xlsx_response(report, report_rows_for_display(request.user, report))


@router.get("/goals/reports/{report_id}/pdf")
def report_pdf(request, report_id: int):
    from .exports import report_pdf_bytes

    report = selectors.report_get(user=request.user, pk=report_id)
    resp = HttpResponse(report_pdf_bytes(report, report_rows_for_display(request.user, report)),
                        content_type="application/pdf")
    resp["Content-Disposition"] = f'attachment; filename="goal-report-{report.period_start:%Y-%m}.pdf"'
    return resp
