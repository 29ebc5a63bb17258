"""Reads for customer grading (SPEC G3): the user's pools per grade, rule listing and rule previews.

Pools are the user's visible customers (customers.selectors.customer_list)
grouped by grade — one aggregate query — and each count carries the URLs of
the records behind it (SPEC P6).
"""

from __future__ import annotations

from django.db.models import Count
from django.urls import reverse
from django.utils.translation import gettext as _

from tuijin.org.models import User

from . import grading
from .models import Customer, GradeRule
from .selectors import customer_list


def grade_names() -> dict[str, str]:
    return {r.code: str(r) for r in GradeRule.objects.order_by("priority", "id")}


def grade_pools(*, user: User, rules: list[GradeRule] | None = None) -> list[dict]:
    """[{grade, name, count, records, page}] for every active grade (and ungraded customers, if any)."""
    rules = rules if rules is not None else list(GradeRule.objects.filter(is_active=True).order_by("priority", "id"))
    counts = {
        row["grade"]: row["n"]
        for row in customer_list(user=user).order_by().values("grade").annotate(n=Count("id"))
    }
    pools_url, api_url = reverse("health:pools"), reverse("api:customer_list")
    out = []
    known = set()
    for r in rules:
        known.add(r.code)
        out.append({"grade": r.code, "name": str(r), "count": counts.get(r.code, 0),
                    "records": f"{api_url}?grade={r.code}", "page": f"{pools_url}?grade={r.code}"})
    # Grades no active rule produces any more (a rule was switched off and not yet recomputed), and ungraded.
    for code, n in sorted(counts.items()):
        if code in known or not n:
            continue
        key = code or "none"
        out.append({"grade": key, "name": code or _("未分级"), "count": n,
                     "records": f"{api_url}?grade={key}", "page": f"{pools_url}?grade={key}"})
    return out


def _require_rule_admin(user: User | None) -> None:
    from tuijin.core.errors import Forbidden

    from .grading_services import can_edit_rules

    if user is not None and not can_edit_rules(user):
        raise Forbidden(_("只有管理员可以查看和修改分级规则"))


def rule_list(*, user: User | None = None) -> list[GradeRule]:
    """All rules with the number of customers currently holding each grade (company-wide; admins only:
    Forbidden for any other `user`; callers that checked already may omit it)."""
    _require_rule_admin(user)
    counts = dict(Customer.objects.order_by().values_list("grade").annotate(n=Count("id")))
    rules = list(GradeRule.objects.order_by("priority", "id"))
    for r in rules:
        r.customer_count = counts.get(r.code, 0)
    return rules


def rule_get(*, user: User, pk) -> GradeRule:
    """One rule with its customer count; Forbidden for non-admins, NotFound when missing."""
    from tuijin.core.errors import NotFound

    _require_rule_admin(user)
    try:
        rule = GradeRule.objects.get(pk=int(pk))
    except (GradeRule.DoesNotExist, TypeError, ValueError):
        raise NotFound("grade rule")
    rule.customer_count = Customer.objects.filter(grade=rule.code).count()
    return rule


def rule_preview(*, conditions: list[dict], priority: int | None = None, exclude_rule_id: int | None = None) -> dict:
    """How many customers satisfy `conditions` now, and how many would get the grade given `priority`.

    `conditions` must already be validated (grading.validate_conditions).
    """
    metrics = grading.customer_metrics()
    matching = [pk for pk, m in metrics.items() if grading.rule_matches(conditions, m)]
    result = {"matching": len(matching), "total": len(metrics)}
    if priority is not None:
        earlier = [r for r in grading.active_rules() if r.pk != exclude_rule_id and r.priority < priority]
        result["would_grade"] = sum(
            1 for pk in matching if not any(grading.rule_matches(r.conditions, metrics[pk]) for r in earlier)
        )
    return result
