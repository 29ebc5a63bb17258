"""Customer grading engine (客户分级, SPEC G3): the metric catalogue, rule validation and evaluation.

A grade rule (`GradeRule`) is data: conditions {metric, op, value, group}
over computed customer metrics or plain customer fields. This module knows
which metrics exist and which operators fit each, validates rule input, and
computes every metric for many customers at once with a fixed number of
aggregate queries (not one query per customer), then evaluates the rules in
priority order: the first matching rule gives the grade, and its conditions
(with the actual values and whether each held) are the grade's reasons.

Metric definitions (documented for users in docs/health.md):
- ltv: sum of the amounts of the customer's won opportunities (any owner).
- deals_12m / deals_total: number of won opportunities closed in the last 365 days / ever.
- top_line_share: the largest share (0–1) of the customer's won amount in one
  product line. A won opportunity's amount is split equally over the distinct
  product lines of its products; one without products counts towards the
  total only.
- days_since_contact: whole days since Customer.last_contact_at; a customer
  never contacted counts as infinitely long ago (>, >= hold; <, <=, == fail).
- open_pipeline / open_deals: amount / number of the customer's open opportunities.

The opportunity tables live in `pipeline`, which sits above `customers`; the
imports are local to the functions so `customers` still loads first.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .models import Customer, GradeRule

D = decimal.Decimal

NUMERIC_OPS = [">=", ">", "<=", "<", "==", "!="]
CATEGORY_OPS = ["==", "!=", "in", "not_in"]
TAG_OPS = ["contains", "not_contains"]

# metric code → (kind, label). kind: number / category / tags.
METRICS: dict[str, tuple[str, object]] = {
    "ltv": ("number", gettext_lazy("客户生命周期价值（赢单金额合计）")),
    "deals_12m": ("number", gettext_lazy("近12个月成交次数")),
    "deals_total": ("number", gettext_lazy("累计成交次数")),
    "top_line_share": ("number", gettext_lazy("单一产品线采购占比（0–1）")),
    "days_since_contact": ("number", gettext_lazy("距最近跟进天数")),
    "open_pipeline": ("number", gettext_lazy("进行中商机金额")),
    "open_deals": ("number", gettext_lazy("进行中商机数")),
    "industry": ("category", gettext_lazy("行业")),
    "size_band": ("category", gettext_lazy("规模")),
    "region": ("category", gettext_lazy("区域")),
    "city": ("category", gettext_lazy("城市")),
    "source": ("category", gettext_lazy("来源")),
    "status": ("category", gettext_lazy("状态")),
    "tags": ("tags", gettext_lazy("标签")),
}
OPS_FOR_KIND = {"number": NUMERIC_OPS, "category": CATEGORY_OPS, "tags": TAG_OPS}
OP_LABELS = {
    ">=": "≥", ">": ">", "<=": "≤", "<": "<", "==": "=", "!=": "≠",
    "in": gettext_lazy("属于"), "not_in": gettext_lazy("不属于"),
    "contains": gettext_lazy("包含"), "not_contains": gettext_lazy("不包含"),
}
CHOICE_VALUES = {
    "size_band": Customer.Size.values,
    "source": Customer.Source.values,
    "status": Customer.Status.values,
}
FIELD_METRICS = ["industry", "size_band", "region", "city", "source", "status", "tags"]
MAX_CONDITIONS = 20


# --------------------------------------------------------------------------- validation

def _as_number(value) -> D | None:
    if isinstance(value, bool):
        return None
    try:
        number = D(str(value).strip().replace(",", ""))
    except (decimal.InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _plain_number(number: D):
    """JSON-friendly: an int when whole, else a float."""
    return int(number) if number == number.to_integral_value() else float(number)


def validate_conditions(conditions) -> list[dict]:
    """The cleaned conditions of a rule; raises ValidationFailed naming every bad condition.

    Errors are keyed "conditions[i].metric" / ".op" / ".value" / ".group" so
    forms and API clients can point at the bad row.
    """
    from tuijin.core.errors import ValidationFailed

    errors: dict[str, str] = {}
    if conditions in (None, ""):
        conditions = []
    if not isinstance(conditions, list):
        raise ValidationFailed({"conditions": _("条件必须是列表")})
    if len(conditions) > MAX_CONDITIONS:
        raise ValidationFailed({"conditions": _("条件最多 %(n)s 条") % {"n": MAX_CONDITIONS}})
    clean = []
    for i, cond in enumerate(conditions):
        key = f"conditions[{i}]"
        if not isinstance(cond, dict):
            errors[key] = _("每个条件必须包含 metric、op、value")
            continue
        metric = str(cond.get("metric") or "").strip()
        op = str(cond.get("op") or "").strip()
        value = cond.get("value")
        group = cond.get("group", 0)
        if metric not in METRICS:
            errors[f"{key}.metric"] = _("未知的指标或字段：%(metric)s（可选：%(choices)s）") % {
                "metric": metric or "—", "choices": ", ".join(METRICS)}
            continue
        kind = METRICS[metric][0]
        if op not in OPS_FOR_KIND[kind]:
            errors[f"{key}.op"] = _("指标 %(metric)s 不支持运算符 %(op)s（可选：%(choices)s）") % {
                "metric": metric, "op": op or "—", "choices": " ".join(OPS_FOR_KIND[kind])}
            continue
        try:
            group = int(group if group not in (None, "") else 0)
            if group < 0 or group > 9:
                raise ValueError
        except (TypeError, ValueError):
            errors[f"{key}.group"] = _("条件组必须是 0–9 的整数")
            continue
        if kind == "number":
            number = _as_number(value)
            if number is None:
                errors[f"{key}.value"] = _("%(metric)s 的阈值必须是数字") % {"metric": metric}
                continue
            if metric == "top_line_share" and not (0 <= number <= 1):
                errors[f"{key}.value"] = _("产品线占比的阈值是 0 到 1 之间的小数（如 0.65）")
                continue
            if metric != "top_line_share" and number < 0:
                errors[f"{key}.value"] = _("阈值不能为负数")
                continue
            value = _plain_number(number)
        elif op in ("in", "not_in"):
            if isinstance(value, str):
                value = [v.strip() for v in value.replace("，", ",").split(",") if v.strip()]
            if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
                errors[f"{key}.value"] = _("请填写一个或多个取值（用逗号分隔）")
                continue
            value = [v.strip() for v in value]
        else:
            if not isinstance(value, str) or not value.strip():
                errors[f"{key}.value"] = _("请填写取值")
                continue
            value = value.strip()
        if metric in CHOICE_VALUES:
            bad = [v for v in (value if isinstance(value, list) else [value]) if v not in CHOICE_VALUES[metric]]
            if bad:
                errors[f"{key}.value"] = _("无效的取值：%(value)s（可选：%(choices)s）") % {
                    "value": ", ".join(bad), "choices": ", ".join(CHOICE_VALUES[metric])}
                continue
        clean.append({"metric": metric, "op": op, "value": value, "group": group})
    if errors:
        raise ValidationFailed(errors)
    return clean


# --------------------------------------------------------------------------- metrics

def customer_metrics(*, customer_ids: Iterable[int] | None = None, now: dt.datetime | None = None) -> dict[int, dict]:
    """Every metric of every customer (or of `customer_ids`): three queries whatever the count."""
    from tuijin.pipeline.models import Opportunity, Stage

    now = now or timezone.now()
    ids = None if customer_ids is None else list(set(customer_ids))
    customers = Customer.objects.order_by()
    opps = Opportunity.objects.order_by()
    if ids is not None:
        customers = customers.filter(pk__in=ids)
        opps = opps.filter(customer_id__in=ids)
    won = Q(stage__kind=Stage.Kind.WON)
    is_open = Q(stage__kind=Stage.Kind.OPEN)
    zero = Value(D("0"), output_field=DecimalField(max_digits=16, decimal_places=2))
    sums = {
        row["customer_id"]: row
        for row in opps.values("customer_id").annotate(
            ltv=Coalesce(Sum("amount", filter=won), zero),
            deals_12m=Count("id", filter=won & Q(closed_at__gte=now - dt.timedelta(days=365))),
            deals_total=Count("id", filter=won),
            open_pipeline=Coalesce(Sum("amount", filter=is_open), zero),
            open_deals=Count("id", filter=is_open),
        )
    }
    # Won amount per (customer, product line), split equally over an opportunity's lines.
    through = Opportunity.products.through
    lines_rows = through.objects.filter(opportunity__stage__kind=Stage.Kind.WON).order_by()
    if ids is not None:
        lines_rows = lines_rows.filter(opportunity__customer_id__in=ids)
    opp_lines: dict[int, set] = defaultdict(set)
    opp_info: dict[int, tuple[int, D]] = {}
    for opp_id, cust_id, amount, line_id in lines_rows.values_list(
        "opportunity_id", "opportunity__customer_id", "opportunity__amount", "product__line_id"
    ).distinct():
        opp_lines[opp_id].add(line_id)
        opp_info[opp_id] = (cust_id, D(amount or 0))
    line_amounts: dict[int, dict[int, D]] = defaultdict(lambda: defaultdict(D))
    for opp_id, lines in opp_lines.items():
        cust_id, amount = opp_info[opp_id]
        for line_id in lines:
            line_amounts[cust_id][line_id] += amount / len(lines)

    out = {}
    fields = ["pk", "last_contact_at", *[f for f in FIELD_METRICS]]
    for row in customers.values(*fields):
        pk = row["pk"]
        agg = sums.get(pk, {})
        ltv = D(agg.get("ltv") or 0)
        top = max(line_amounts[pk].values()) if pk in line_amounts else D("0")
        last = row["last_contact_at"]
        out[pk] = {
            "ltv": ltv,
            "deals_12m": agg.get("deals_12m", 0),
            "deals_total": agg.get("deals_total", 0),
            "top_line_share": (top / ltv).quantize(D("0.0001")) if ltv > 0 else D("0"),
            "days_since_contact": None if last is None else max(0, (now - last).days),
            "open_pipeline": D(agg.get("open_pipeline") or 0),
            "open_deals": agg.get("open_deals", 0),
            **{f: row[f] for f in FIELD_METRICS},
        }
    return out


# --------------------------------------------------------------------------- evaluation

def condition_holds(cond: dict, actual) -> bool:
    op, value = cond["op"], cond["value"]
    kind = METRICS[cond["metric"]][0]
    if kind == "tags":
        has = value in (actual or [])
        return has if op == "contains" else not has
    if kind == "category":
        actual = actual or ""
        if op == "==":
            return actual == value
        if op == "!=":
            return actual != value
        if op == "in":
            return actual in value
        return actual not in value
    if actual is None:
        # Never contacted: as if infinitely long ago.
        return op in (">", ">=", "!=")
    a, v = D(str(actual)), D(str(value))
    return {
        ">=": a >= v, ">": a > v, "<=": a <= v, "<": a < v, "==": a == v, "!=": a != v,
    }[op]


def _jsonable_actual(actual):
    if isinstance(actual, D):
        return _plain_number(actual.quantize(D("0.0001")).normalize()) if actual else 0
    return actual


def rule_matches(conditions: list[dict], metrics: dict) -> bool:
    if not conditions:
        return True
    groups: dict[int, bool] = {}
    for cond in conditions:
        g = cond.get("group", 0)
        groups[g] = groups.get(g, True) and condition_holds(cond, metrics.get(cond["metric"]))
    return any(groups.values())


def reasons_for(conditions: list[dict], metrics: dict) -> list[dict]:
    """Each condition of the winning rule with its threshold, the actual value and whether it held."""
    return [
        {
            "metric": c["metric"], "op": c["op"], "value": c["value"], "group": c.get("group", 0),
            "actual": _jsonable_actual(metrics.get(c["metric"])),
            "held": condition_holds(c, metrics.get(c["metric"])),
        }
        for c in conditions
    ]


def grade_for(rules: list[GradeRule], metrics: dict) -> tuple[str, list[dict]]:
    """(grade code, reasons) of the first rule that matches, or ("", []) when none does."""
    for rule in rules:
        if rule_matches(rule.conditions, metrics):
            return rule.code, reasons_for(rule.conditions, metrics)
    return "", []


def active_rules() -> list[GradeRule]:
    return list(GradeRule.objects.filter(is_active=True).order_by("priority", "id"))


def describe(cond: dict) -> str:
    """"ltv ≥ 80000" in the user's language, for pages."""
    label = METRICS.get(cond["metric"], (None, cond["metric"]))[1]
    value = cond["value"]
    if isinstance(value, list):
        value = "、".join(value)
    return f"{label} {OP_LABELS.get(cond['op'], cond['op'])} {value}"
