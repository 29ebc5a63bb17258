"""API of customer grade rules (SPEC G3): `GET/POST /api/grading/rules`, `GET/PATCH /api/grading/rules/{id}`.

Admins only, like the page `/health/grading/` (everybody else 403). Writes go
through customers.grading_services (validation naming `conditions[i].metric`
etc. → 422, change trail, re-grading of every customer).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ninja import Router, Schema, Status

from tuijin.core.limits import bounded_list, short, text

from . import grading, grading_selectors, grading_services
from .models import GradeRule

router = Router(tags=["grading"])


class ConditionIn(Schema):
    metric: short(64)
    op: short(8)
    value: Any = None
    group: int = 0


class GradeRuleIn(Schema):
    code: text(GradeRule, "code")
    name: text(GradeRule, "name")
    name_en: text(GradeRule, "name_en") = ""
    priority: int = 100
    is_active: bool = True
    conditions: bounded_list(ConditionIn, "short_list") = []


class GradeRulePatch(Schema):
    code: text(GradeRule, "code") | None = None
    name: text(GradeRule, "name") | None = None
    name_en: text(GradeRule, "name_en") | None = None
    priority: int | None = None
    is_active: bool | None = None
    conditions: bounded_list(ConditionIn, "short_list") | None = None


class ConditionOut(Schema):
    metric: str
    op: str
    value: Any
    group: int = 0
    text: str  # the condition in the user's language ("客户生命周期价值 ≥ 80000")


class GradeRuleOut(Schema):
    id: int
    code: str
    name: str
    name_en: str
    priority: int
    is_active: bool
    conditions: list[ConditionOut]
    customer_count: int
    updated_at: dt.datetime


class GradeRulePage(Schema):
    items: list[GradeRuleOut]
    count: int


class Detail(Schema):
    detail: Any


def _out(rule) -> dict:
    return {
        "id": rule.pk, "code": rule.code, "name": rule.name, "name_en": rule.name_en, "priority": rule.priority,
        "is_active": rule.is_active, "updated_at": rule.updated_at,
        "conditions": [{**c, "group": c.get("group", 0), "text": grading.describe(c)} for c in rule.conditions],
        "customer_count": getattr(rule, "customer_count", 0),
    }


def _data(payload, *, partial: bool) -> dict:
    data = payload.dict(exclude_unset=partial)
    if partial:
        data = {k: v for k, v in data.items() if v is not None}
    return data


ERRORS = {403: Detail, 404: Detail, 422: Detail}


@router.get("/grading/rules", response={200: GradeRulePage, 403: Detail})
def rule_list(request):
    rules = grading_selectors.rule_list(user=request.user)
    return {"items": [_out(r) for r in rules], "count": len(rules)}


@router.post("/grading/rules", response={201: GradeRuleOut, **ERRORS})
def rule_create(request, payload: GradeRuleIn):
    rule = grading_services.grade_rule_create(actor=request.user, **_data(payload, partial=False))
    return Status(201, _out(grading_selectors.rule_get(user=request.user, pk=rule.pk)))


@router.get("/grading/rules/{rule_id}", response={200: GradeRuleOut, 403: Detail, 404: Detail})
def rule_detail(request, rule_id: int):
    return _out(grading_selectors.rule_get(user=request.user, pk=rule_id))


@router.patch("/grading/rules/{rule_id}", response={200: GradeRuleOut, **ERRORS})
def rule_patch(request, rule_id: int, payload: GradeRulePatch):
    rule = grading_selectors.rule_get(user=request.user, pk=rule_id)
    grading_services.grade_rule_update(actor=request.user, rule=rule, **_data(payload, partial=True))
    return _out(grading_selectors.rule_get(user=request.user, pk=rule_id))
