"""Demo goals (called by `tuijin demo` inside its transaction, after the sales history exists).

- A company objective for the current quarter ("提升客户生命周期价值") with key
  results for every metric kind, and one for the previous quarter when last
  month lies outside the current one (so last month's report has targets).
- Signed revenue, activities and new leads are cascaded down to every rep
  through the services, with the article's attenuation along one branch:
  company +30% → 华东 +25% → 上海 +20% → 上海's reps +15%; other branches keep
  their parent's growth, so the attenuation page flags exactly that chain.
- The deviation report for last month is generated (and notified).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from tuijin.org.models import OrgUnit, User

from . import metrics
from .models import MetricKind
from .services import (
    key_result_create,
    objective_create,
    period_create,
    report_generate,
    target_allocate,
    target_baselines,
)

COMPANY_GROWTH = Decimal("0.30")
STEP = Decimal("0.05")  # each attenuating level passes on 5 points less
ATTENUATING = ("华东大区", "上海")  # the chain of the article's example
MIN_VALUE = {"signed_revenue": Decimal("50000"), "activities": Decimal("20"), "new_leads": Decimal("3")}
CASCADED = ("signed_revenue", "activities", "new_leads")
OTHER_KRS = [
    ("new_customer_first_order_avg", "新客首单客单价提升12%", Decimal("1.12")),
    ("repeat_deal_rate_6m", "老客6个月内二次成交率提升至35%", None),
    ("reference_cases", "行业标杆客户案例沉淀≥8个/季度", None),
]
FIXED_TARGETS = {"repeat_deal_rate_6m": Decimal("35"), "reference_cases": Decimal("8")}
TITLES = {"signed_revenue": "签约额同比增长30%", "activities": "有效跟进次数增长30%", "new_leads": "新增线索增长30%"}


def _value(metric_key: str, baseline: Decimal, growth: Decimal) -> Decimal:
    value = (baseline * (1 + growth)).quantize(Decimal("1"))
    return max(value, MIN_VALUE.get(metric_key, Decimal("0")))


def _cascade(director, root, metric_key: str, period, growth: Decimal, units_by_parent, reps_by_unit) -> int:
    """Allocate below `root` level by level; returns the number of targets created."""
    created = 0
    frontier = [(root, growth, False)]
    while frontier:
        nxt = []
        for parent, g, below_chain_end in frontier:
            units = units_by_parent.get(parent.org_unit_id, [])
            reps = reps_by_unit.get(parent.org_unit_id, [])
            if not units and not reps:
                continue
            scopes = [(u, None) for u in units] + [(r.org_unit, r) for r in reps]
            baselines = target_baselines(metric_key, period, scopes)
            children, growths = [], []
            for (unit, rep), baseline in zip(scopes, baselines, strict=True):
                # Units of the chain, and the reps below its last unit, pass on 5 points less.
                attenuate = (unit.name in ATTENUATING) if rep is None else below_chain_end
                child_g = g - STEP if attenuate else g
                growths.append(child_g)
                children.append({"user": rep.pk, "value": str(_value(metric_key, baseline, child_g))} if rep else
                                {"unit": unit.pk, "value": str(_value(metric_key, baseline, child_g))})
            result = target_allocate(actor=director, parent=parent, children=children)
            created += len(result.targets)
            end = below_chain_end or parent.org_unit.name == ATTENUATING[-1]
            nxt += [(t, cg, end or t.org_unit.name == ATTENUATING[-1])
                    for t, cg in zip(result.targets, growths, strict=True) if t.user_id is None]
        frontier = nxt
    return created


def _objective(director, period, units_by_parent, reps_by_unit) -> tuple[int, int]:
    objective = objective_create(actor=director, period=period, title="提升客户生命周期价值",
                                 description="总部年度增长30%，逐层分解到每位销售，每个KPI都有客户清单和行动建议。")
    company = objective.org_unit
    krs = targets = 0
    for key in CASCADED:
        (baseline,) = target_baselines(key, period, [(company, None)])
        kr = key_result_create(actor=director, objective=objective, metric=MetricKind.objects.get(key=key),
                               target=str(_value(key, baseline, COMPANY_GROWTH)), title=TITLES[key])
        krs += 1
        targets += 1 + _cascade(director, kr.targets.get(parent__isnull=True), key, period, COMPANY_GROWTH,
                                units_by_parent, reps_by_unit)
    for key, title, factor in OTHER_KRS:
        if factor is not None:
            (baseline,) = target_baselines(key, period, [(company, None)])
            value = (baseline * factor).quantize(Decimal("1")) or Decimal("30000")
        else:
            value = FIXED_TARGETS[key]
        key_result_create(actor=director, objective=objective, metric=MetricKind.objects.get(key=key),
                          target=str(value), title=title)
        krs += 1
        targets += 1
    return krs, targets


def load(*, rng: random.Random, months: int) -> dict[str, int]:
    director = User.objects.get(username="director")
    today = timezone.localdate()
    units_by_parent: dict[int, list[OrgUnit]] = {}
    for u in OrgUnit.objects.order_by("path"):
        units_by_parent.setdefault(u.parent_id, []).append(u)
    reps_by_unit: dict[int, list[User]] = {}
    for r in User.objects.filter(role=User.Role.REP, is_active=True).select_related("org_unit").order_by("username"):
        reps_by_unit.setdefault(r.org_unit_id, []).append(r)
    last_month_start, last_month_end = metrics.month_bounds(today.replace(day=1) - dt.timedelta(days=1))
    quarters = [metrics.quarter_bounds(today)]
    if metrics.quarter_bounds(last_month_start) != quarters[0]:
        quarters.insert(0, metrics.quarter_bounds(last_month_start))
    objectives = krs = targets = 0
    for start, _end in quarters:
        period = period_create(actor=director, kind="quarter", start=start)
        k, t = _objective(director, period, units_by_parent, reps_by_unit)
        objectives, krs, targets = objectives + 1, krs + k, targets + t
    # Stands in for last month's scheduled run, notifications included.
    report_generate(actor=None, start=last_month_start, as_of=last_month_end, scheduled=True)
    return {"goal objectives": objectives, "key results": krs, "goal targets": targets, "goal reports": 1}
