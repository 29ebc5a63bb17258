"""Opportunity pages: list with filters, detail with stage-change form and trail, the Kanban board,
and the stage endpoint shared by the form and the board's drag and drop (JSON when asked for)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.history import history_rows
from tuijin.core.pages import (
    STALE_MESSAGE,
    error_page,
    int_or_none,
    is_htmx_partial,
    paginate,
    start_of_day,
    wants_json,
)
from tuijin.core.params import date_param, id_param, text_param
from tuijin.followups.selectors import activity_list
from tuijin.org.selectors import user_list
from tuijin.pipeline.models import Opportunity, Stage
from tuijin.pipeline.selectors import (
    kanban_columns,
    opportunity_can_write,
    opportunity_get,
    opportunity_list,
    pipeline_list,
)
from tuijin.pipeline.services import opportunity_move_stage

from .views_customers import scope_choices

STATUSES = [("open", Stage.Kind.OPEN.label), ("won", Stage.Kind.WON.label), ("lost", Stage.Kind.LOST.label)]


@login_required
def opportunity_list_view(request):
    user, g = request.user, request.GET
    filters = {
        "q": text_param(g, "q"),
        "scope": g.get("scope", ""),
        "stage_id": id_param(g, "stage"),
        "status": g.get("status", ""),
        "owner_id": id_param(g, "owner_id"),
        "pipeline_id": id_param(g, "pipeline"),
        "customer_id": id_param(g, "customer"),
    }
    region = g.get("region")
    closed_from = date_param(g, "closed_from")

    def rows(walk_sort_index=False):
        qs = opportunity_list(user=user, walk_sort_index=walk_sort_index, **filters)
        # Extra narrowing used by the home page's figures; applied on top of the visibility selector.
        if region:
            qs = qs.filter(customer__region="" if region == "-" else region)
        if closed_from:
            qs = qs.filter(closed_at__gte=start_of_day(closed_from))
        return qs

    page = paginate(request, rows(), when_large=lambda: rows(walk_sort_index=True))
    query = g.copy()
    query.pop("page", None)
    ctx = {"page": page, "filters": filters, "query": query.urlencode(), "region": region or "",
           "closed_from": closed_from}
    if is_htmx_partial(request):
        response = render(request, "web/opportunities/_table.html", ctx)
    else:
        ctx.update({
            "scopes": scope_choices(),
            "statuses": STATUSES,
            "pipelines": list(pipeline_list()),
            "owners": list(user_list(user=user).order_by("username")),
        })
        response = render(request, "web/opportunities/list.html", ctx)
    response["Vary"] = "HX-Request"
    return response


def _detail(request, opp, *, status: int = 200, stage_errors=None, stage_post=None):
    user = request.user
    ctx = {
        "opp": opp,
        "can_write": opportunity_can_write(user=user, opportunity=opp),
        "stages": list(opp.pipeline.stages.order_by("order")),
        "products": list(opp.products.all()),
        "activities": list(activity_list(user=user, opportunity_id=opp.pk)[:50]),
        "history": history_rows(opp),
        "loss_reasons": Opportunity.LossReason.choices,
        "stage_errors": stage_errors or [],
        "stage_post": stage_post or {},
        "selected_stage_id": int_or_none((stage_post or {}).get("stage_id")) or opp.stage_id,
    }
    return render(request, "web/opportunities/detail.html", ctx, status=status)


@login_required
def opportunity_detail(request, pk):
    return _detail(request, opportunity_get(user=request.user, pk=pk))


@login_required
@require_POST
def opportunity_stage(request, pk):
    """Move an opportunity to another stage: 200/redirect on success, 422 bad input, 409 stale, 403 read-only."""
    opp = opportunity_get(user=request.user, pk=pk)
    post = request.POST
    stage = Stage.objects.filter(pipeline_id=opp.pipeline_id, pk=int_or_none(post.get("stage_id"))).first()
    try:
        if stage is None:
            raise ValidationFailed({"stage": _("请选择该销售流程中的阶段")})
        opp = opportunity_move_stage(
            actor=request.user, opportunity=opp, stage=stage, version=int_or_none(post.get("version")),
            loss_reason=post.get("loss_reason", "") if stage.kind == Stage.Kind.LOST else "",
            loss_note=post.get("loss_note", ""),
        )
    except ValidationFailed as exc:
        status, errors = 422, [m for ms in exc.errors.values() for m in ms]
    except StaleVersion:
        status, errors = 409, [str(STALE_MESSAGE)]
    except Forbidden as exc:
        status, errors = 403, [str(exc)]
    else:
        if wants_json(request):
            return JsonResponse({"ok": True, "id": opp.pk, "version": opp.version, "stage_id": opp.stage_id,
                                 "stage": str(opp.stage)})
        messages.success(request, _("阶段已更新为：%(stage)s") % {"stage": opp.stage})
        return redirect("opportunity_detail", pk=opp.pk)
    if wants_json(request):
        current = Opportunity.objects.filter(pk=opp.pk).values("version", "stage_id").first()
        return JsonResponse({"ok": False, "errors": errors, **(current or {})}, status=status)
    if status == 403:
        return error_page(request, errors[0], status=403)
    opp = opportunity_get(user=request.user, pk=pk)
    return _detail(request, opp, status=status, stage_errors=errors, stage_post=post)


@login_required
def kanban(request):
    user, g = request.user, request.GET
    pipelines = list(pipeline_list())
    wanted = id_param(g, "pipeline")
    pipeline = next((p for p in pipelines if p.pk == wanted), None) or next(
        (p for p in pipelines if p.is_default), pipelines[0] if pipelines else None
    )
    columns = []
    if pipeline is not None:
        columns = kanban_columns(user=user, pipeline=pipeline, scope=g.get("scope", ""),
                                 owner_id=id_param(g, "owner_id"), q=text_param(g, "q"))
        now = timezone.now()
        for column in columns:
            for card in column["cards"]:
                card.days_idle = max((now - card.last_progress_at).days, 0)
    return render(request, "web/opportunities/kanban.html", {
        "pipelines": pipelines,
        "pipeline": pipeline,
        "columns": columns,
        "scopes": scope_choices(),
        "scope": g.get("scope", ""),
        "q": g.get("q", ""),
        "loss_reasons": Opportunity.LossReason.choices,
        "texts": {"failed": _("保存失败，请重试"), "stale": str(STALE_MESSAGE), "network": _("网络错误，请重试")},
    })
