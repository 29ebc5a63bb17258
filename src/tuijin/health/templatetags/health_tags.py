"""Template helpers of the health app: light reasons as text, grade reasons, the customer grade card."""

from __future__ import annotations

from django import template
from django.utils.translation import gettext as _

from tuijin.customers import grading
from tuijin.customers.models import GradeRule

register = template.Library()

LIGHT_CLASSES = {"red": "danger", "yellow": "warning", "green": "success"}


@register.filter
def light_class(light: str) -> str:
    return LIGHT_CLASSES.get(light, "secondary")


@register.filter
def light_label(light: str) -> str:
    return {"red": _("红灯"), "yellow": _("黄灯"), "green": _("绿灯")}.get(light, light)


@register.filter
def light_reason(reason: dict) -> str:
    code = reason.get("code")
    if code == "no_open":
        return _("没有进行中的商机")
    if code == "stale":
        if reason.get("days") is None:
            return _("从未推进过商机")
        return _("已连续 %(days)s 天未更新任何商机（阈值 %(threshold)s 天）") % reason
    if code == "pace":
        return _("目标进度比 %(ratio).0f%%，低于 %(threshold).0f%%") % {
            "ratio": reason["ratio"] * 100, "threshold": reason["threshold"] * 100}
    return str(reason)


@register.filter
def percent(value) -> str:
    if value is None:
        return "—"
    return f"{float(value) * 100:.0f}%"


@register.filter
def grade_condition(reason: dict) -> str:
    """"客户生命周期价值 ≥ 80000（实际 95000）"."""
    actual = reason.get("actual")
    if actual is None:
        actual = _("无记录")
    elif isinstance(actual, list):
        actual = "、".join(actual) or "—"
    return _("%(condition)s（实际：%(actual)s）") % {"condition": grading.describe(reason), "actual": actual}


@register.filter
def department_label(code: str) -> str:
    from tuijin.health.models import WeeklyAlignment

    return dict(WeeklyAlignment.Department.choices).get(code, code)


@register.inclusion_tag("health/_customer_grade.html")
def customer_grade(customer):
    """The grade card on the customer page: the grade, and each condition of the rule with whether it held."""
    rule = GradeRule.objects.filter(code=customer.grade).first() if customer.grade else None
    return {"customer": customer, "rule": rule, "reasons": customer.grade_reasons or []}
