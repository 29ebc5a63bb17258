"""Pages of the health app: lights and weekly alignment (home), a rep's records, customer pools per grade,
grade-rule and light-rule administration. Thin: selectors read, services write."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.pages import error_page, int_or_none, paginate
from tuijin.customers import grading, grading_selectors, grading_services
from tuijin.customers.models import GradeRule
from tuijin.customers.selectors import customer_list

from . import rules, selectors, services
from .models import Blocker, WeeklyAlignment


def _forbidden(request, message):
    return error_page(request, message, status=403)


def _alignment_form_context(user, now, data=None, errors=None):
    """The rep's form for the open week, prefilled from what they submitted already."""
    week = rules.open_week(now)
    existing = selectors.alignment_list(user=user, week_start=week, rep_id=user.pk).first()
    if data is None:
        data = {
            "opportunity_ids": [i.opportunity_id for i in existing.items.all()] if existing else [],
            "departments": existing.departments if existing else [],
            "has_blocker": existing.has_blocker if existing else False,
            "blocker_id": existing.blocker_id if existing else None,
            "blocker_title": "", "blocker_description": "",
        }
    return {
        "week": week, "week_label": f"{week:%G-W%V}", "deadline": rules.deadline_for(week),
        "existing": existing, "form": data, "errors": errors or {},
        "choices": list(selectors.own_open_opportunities(rep=user)),
        "departments": WeeklyAlignment.Department.choices,
        "blockers": list(Blocker.objects.filter(owner=user, status=Blocker.Status.OPEN).order_by("-id")[:20]),
    }


@login_required
def home(request, *, form_data=None, form_errors=None, status=200):
    user, now = request.user, timezone.now()
    manage = services.can_manage(user)
    ctx = {"manage": manage, "now": now, "config": selectors.health_settings(),
           "can_admin": grading_services.can_edit_rules(user)}
    reps = list(selectors.tracked_reps(user=user))
    rows = selectors.compute_lights(reps=reps, now=now, config=ctx["config"])
    ctx["counts"] = selectors.light_counts(rows)
    this_week = rules.week_start_of(rules.local_today(now))
    # Managers look at this week by default (the one whose deadline matters) and can switch to the
    # week reps are filling in after this week's deadline (?week=next).
    week = rules.parse_week(request.GET.get("week", "")) or this_week
    ctx["weeks"] = [(this_week, _("本周")), (this_week + dt.timedelta(days=7), _("下周"))]
    ctx["status"] = selectors.alignment_status(user=user, week_start=week, now=now, reps=reps)
    by_rep = {r["rep"].pk: r for r in ctx["status"]["rows"]}
    for row in rows:
        row["alignment_row"] = by_rep.get(row["rep"].pk)
    ctx["rows"] = rows
    ctx["pools"] = grading_selectors.grade_pools(user=user)
    if user.role == user.Role.REP:  # only reps are expected to align weekly (see docs/health.md)
        ctx["own"] = next((r for r in rows if r["rep"].pk == user.pk), None)
        ctx["alignment"] = _alignment_form_context(user, now, form_data, form_errors)
        ctx["history"] = list(selectors.alignment_list(user=user, rep_id=user.pk)[:4])
    return render(request, "health/home.html", ctx, status=status)


@login_required
@require_POST
def alignment_submit(request):
    p = request.POST
    has_blocker = p.get("has_blocker") == "yes"
    data = {
        "opportunity_ids": [int_or_none(x) for x in p.getlist("opportunity_ids") if int_or_none(x)],
        "departments": p.getlist("departments"), "has_blocker": has_blocker,
        "blocker_id": int_or_none(p.get("blocker_id")),
        "blocker_title": p.get("blocker_title", "").strip(), "blocker_description": p.get("blocker_description", ""),
    }
    try:
        services.alignment_submit(
            actor=request.user, week_start=p.get("week_start") or None, opportunity_ids=data["opportunity_ids"],
            departments=data["departments"], has_blocker=has_blocker,
            blocker_id=data["blocker_id"] if not data["blocker_title"] else None,
            new_blocker={"title": data["blocker_title"], "description": data["blocker_description"]}
            if data["blocker_title"] else None,
            version=int_or_none(p.get("version")),
        )
    except ValidationFailed as exc:
        errors = {}
        for key, msgs in exc.errors.items():
            # "opportunity_ids[1]" → shown next to the opportunity picker.
            errors.setdefault(key.split("[")[0].split(".")[0], []).extend(msgs)
        return home(request, form_data=data, form_errors=errors, status=422)
    except StaleVersion:
        messages.error(request, _("该对齐已被修改，请刷新后重试"))
        return redirect("health:home")
    except Forbidden as exc:
        return _forbidden(request, str(exc))
    messages.success(request, _("本周目标对齐已提交"))
    return redirect("health:home")


@login_required
@require_POST
def evaluate(request):
    if not services.can_manage(request.user):
        return _forbidden(request, _("只有经理可以立即评估健康灯"))
    counts = services.lights_evaluate(now=timezone.now(), actor=request.user)
    messages.success(request, _("已评估：红灯 %(red)s，黄灯 %(yellow)s，绿灯 %(green)s；新提醒 %(notified)s 条") % counts)
    return redirect("health:home")


@login_required
def rep_detail(request, pk):
    """The records behind a light: the rep's opportunities by last progress, and their alignments."""
    rep = selectors.rep_get(user=request.user, pk=pk)
    now = timezone.now()
    light = selectors.compute_lights(reps=[rep], now=now)[0]
    opps = paginate(request, selectors.rep_opportunities(user=request.user, rep=rep), per_page=50)
    return render(request, "health/rep.html", {
        "rep": rep, "light": light, "page": opps, "now": now,
        "alignments": list(selectors.alignment_list(user=request.user, rep_id=rep.pk)[:8]),
        "blockers": list(selectors.blocker_list(user=request.user).filter(owner=rep)[:20]),
    })


@login_required
@require_POST
def blocker_resolve(request, pk):
    blocker = selectors.blocker_get(user=request.user, pk=pk)
    try:
        services.blocker_resolve(actor=request.user, blocker=blocker)
    except Forbidden as exc:
        return _forbidden(request, str(exc))
    return redirect("health:rep", pk=blocker.owner_id)


@login_required
def pools(request):
    """The user's customer pools per grade (SPEC G3): tabs with counts; the selected grade's customers."""
    user = request.user
    pool_list = grading_selectors.grade_pools(user=user)
    grade = request.GET.get("grade") or (pool_list[0]["grade"] if pool_list else "")
    page = paginate(request, customer_list(user=user, grade=grade))
    current = next((p for p in pool_list if p["grade"] == grade), None)
    return render(request, "health/pools.html", {"pools": pool_list, "grade": grade, "current": current,
                                                  "page": page})


# --------------------------------------------------------------------------- administration

def _parse_conditions(post) -> list[dict]:
    """cond-0-metric / cond-0-op / cond-0-value / cond-0-group rows; empty metric rows are skipped."""
    out = []
    for i in range(grading.MAX_CONDITIONS):
        metric = post.get(f"cond-{i}-metric", "").strip()
        if not metric:
            continue
        out.append({"metric": metric, "op": post.get(f"cond-{i}-op", "").strip(),
                    "value": post.get(f"cond-{i}-value", "").strip(), "group": post.get(f"cond-{i}-group") or 0})
    return out


@login_required
def grade_rules(request):
    if not grading_services.can_edit_rules(request.user):
        return _forbidden(request, _("只有管理员可以修改分级规则"))
    return render(request, "health/grade_rules.html", {
        "rules": grading_selectors.rule_list(), "describe": grading.describe,
    })


@login_required
def grade_rule_edit(request, pk=None):
    if not grading_services.can_edit_rules(request.user):
        return _forbidden(request, _("只有管理员可以修改分级规则"))
    rule = GradeRule.objects.filter(pk=pk).first() if pk else None
    if pk and rule is None:
        from tuijin.core.errors import NotFound

        raise NotFound("grade rule")
    errors, preview = {}, None
    if request.method == "POST":
        p = request.POST
        data = {"code": p.get("code", ""), "name": p.get("name", ""), "name_en": p.get("name_en", ""),
                "priority": p.get("priority", ""), "is_active": p.get("is_active") == "on",
                "conditions": _parse_conditions(p)}
        try:
            if "preview" in p:
                conditions = grading.validate_conditions(data["conditions"])
                preview = grading_selectors.rule_preview(
                    conditions=conditions, priority=int_or_none(data["priority"]),
                    exclude_rule_id=rule.pk if rule else None)
            elif rule is None:
                grading_services.grade_rule_create(actor=request.user, **data)
                messages.success(request, _("分级规则已保存，客户等级已重新计算"))
                return redirect("health:grade_rules")
            else:
                grading_services.grade_rule_update(actor=request.user, rule=rule, **data)
                messages.success(request, _("分级规则已保存，客户等级已重新计算"))
                return redirect("health:grade_rules")
        except ValidationFailed as exc:
            errors = exc.errors
        form = data
    else:
        form = {"code": rule.code if rule else "", "name": rule.name if rule else "",
                "name_en": rule.name_en if rule else "", "priority": rule.priority if rule else 100,
                "is_active": rule.is_active if rule else True, "conditions": list(rule.conditions) if rule else []}
    rows = [dict(r, value=", ".join(r["value"]) if isinstance(r.get("value"), list) else r.get("value", ""))
            for r in form["conditions"]]
    rows += [{"metric": "", "op": "", "value": "", "group": 0} for _i in range(3)]
    return render(request, "health/grade_rule_edit.html", {
        "rule": rule, "form": form, "rows": rows, "errors": errors, "preview": preview,
        "metrics": [(k, v[1], v[0]) for k, v in grading.METRICS.items()],
        "ops": sorted({op for ops in grading.OPS_FOR_KIND.values() for op in ops}, key=len),
    }, status=422 if errors else 200)


@login_required
def health_settings_edit(request):
    if not (request.user.is_superuser or request.user.role == request.user.Role.ADMIN):
        return _forbidden(request, _("只有管理员可以修改健康灯规则"))
    errors = {}
    config = selectors.health_settings()
    if request.method == "POST":
        p = request.POST
        try:
            services.health_settings_update(actor=request.user, stale_days=p.get("stale_days"),
                                            yellow_below=p.get("yellow_below"), red_below=p.get("red_below", ""))
            messages.success(request, _("健康灯规则已保存"))
            return redirect("health:home")
        except ValidationFailed as exc:
            errors = exc.errors
            config = {"stale_days": p.get("stale_days"), "yellow_below": p.get("yellow_below"),
                      "red_below": p.get("red_below")}
    return render(request, "health/settings.html", {"config": config, "errors": errors},
                  status=422 if errors else 200)
