"""The monthly goal deviation analysis (目标偏差分析报告, SPEC G7): target, actual, gap and its causes.

Computed with a fixed number of grouped queries (GROUP BY owner, then owners
rolled up to org units by their materialised path), whatever the number of
records. The method, in the order causes are claimed (an opportunity counts
for at most one cause):

1. customer churn — lost in the period with loss reason customer_churn, and
   open deals expected to close in the period whose customer has churned;
2. quote delay — lost with loss reason quote_delay, and open deals expected
   to close in the period sitting in the quote stage (tender / quote /
   negotiation) longer than the company median time in that stage;
3. solution mismatch — lost with loss reason solution_mismatch;
4. lost to competitor — lost with loss reason competitor;
5. other losses — lost with any other reason (budget, no decision, other);
6. stalled in stage — open deals expected to close in the period without
   progress for more than 14 days at the report date;

If these raw amounts exceed the gap they are scaled down proportionally (each
cause keeps its share; cents rounded so the sum is exact). Otherwise the
remainder R = gap − attributed is compared with the weighted open pipeline W
(Σ amount × win % of the other open deals expected to close in the period):
"not enough pipeline" = max(0, R − W), and the rest is "unexplained". So
Σ causes + unexplained = gap exactly. A row with no gap (target met) has all
causes 0 and unexplained = gap (≤ 0, the surplus).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_DOWN, Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Q, Sum
from django.utils.translation import gettext_lazy as _

from tuijin.customers.models import Customer
from tuijin.org.models import OrgUnit, User
from tuijin.pipeline.models import Opportunity, Stage

from .metrics import ZERO, bounds, q2
from .models import Target

STALL_DAYS = 14
QUOTE_STAGE_CODES = ("tender", "quote", "negotiation")

CAUSES = [
    ("customer_churn", _("客户流失")),
    ("quote_delay", _("报价延迟")),
    ("solution_mismatch", _("方案不匹配")),
    ("competitor", _("输给竞争对手")),
    ("other_loss", _("其他输单原因")),
    ("stalled", _("阶段停滞")),
    ("not_enough_pipeline", _("商机储备不足")),
]
CAUSE_KEYS = [k for k, _label in CAUSES]
LOSS_CAUSE = {
    Opportunity.LossReason.CHURN: "customer_churn",
    Opportunity.LossReason.QUOTE_DELAY: "quote_delay",
    Opportunity.LossReason.SOLUTION_MISMATCH: "solution_mismatch",
    Opportunity.LossReason.COMPETITOR: "competitor",
}


def cause_label(key: str) -> str:
    return str(dict(CAUSES).get(key, _("未解释")))


def _grouped(qs, key: str = "owner_id") -> tuple[dict, dict]:
    """({owner: amount}, {owner: [ids]}) with the sum done by the database."""
    sums = {r[key]: Decimal(r["s"] or 0) for r in qs.order_by().values(key).annotate(s=Sum("amount"))}
    ids: dict[int, list[int]] = defaultdict(list)
    for owner, pk in qs.order_by("id").values_list(key, "id"):
        ids[owner].append(pk)
    return sums, ids


def _quote_median_entered(as_of_end: dt.datetime) -> dt.datetime | None:
    """The median stage-entry time of open deals in a quote stage (older entry = longer in stage)."""
    qs = Opportunity.objects.filter(stage__kind=Stage.Kind.OPEN, stage__code__in=QUOTE_STAGE_CODES,
                                    stage_entered_at__lt=as_of_end)
    n = qs.count()
    if not n:
        return None
    return qs.order_by("stage_entered_at", "id").values_list("stage_entered_at", flat=True)[n // 2]


def _targets_for(start: dt.date, end: dt.date) -> tuple[dict, dict]:
    """Signed-revenue targets per unit and per user for the report period.

    The target of the shortest period containing the report period is used,
    pro-rated by days when it is longer (a quarter target in a monthly report).
    """
    days = (end - start).days + 1
    best_unit: dict[int, tuple[int, Decimal, int]] = {}
    best_user: dict[int, tuple[int, Decimal, int]] = {}
    rows = Target.objects.filter(
        key_result__metric__key="signed_revenue",
        key_result__objective__period__start__lte=start, key_result__objective__period__end__gte=end,
    ).values("pk", "org_unit_id", "user_id", "value", "key_result__objective__period__start",
             "key_result__objective__period__end")
    for r in rows:
        p_days = (r["key_result__objective__period__end"] - r["key_result__objective__period__start"]).days + 1
        value = q2(Decimal(r["value"]) * days / p_days)
        bucket, key = (best_user, r["user_id"]) if r["user_id"] else (best_unit, r["org_unit_id"])
        if key not in bucket or p_days < bucket[key][0]:
            bucket[key] = (p_days, value, r["pk"])
    return ({k: (v[1], v[2]) for k, v in best_unit.items()}, {k: (v[1], v[2]) for k, v in best_user.items()})


def attribute(gap: Decimal, raw: dict[str, Decimal], pipeline_weighted: Decimal) -> tuple[dict[str, Decimal], Decimal]:
    """Split a gap over causes so that Σ causes + unexplained == gap exactly (see the module docstring)."""
    out = {k: ZERO for k in CAUSE_KEYS}
    gap = q2(gap)
    if gap <= 0:
        return out, gap
    total = sum(raw.values(), ZERO)
    if total >= gap:
        cent = Decimal("0.01")
        for k, v in raw.items():
            out[k] = (v * gap / total).quantize(cent, rounding=ROUND_DOWN)
        rest = gap - sum(out.values(), ZERO)
        if rest:
            largest = max(raw, key=lambda k: (raw[k], -CAUSE_KEYS.index(k)))
            out[largest] += rest
        return out, ZERO
    for k, v in raw.items():
        out[k] = q2(v)
    remainder = gap - sum(out.values(), ZERO)
    shortfall = max(ZERO, remainder - q2(pipeline_weighted))
    out["not_enough_pipeline"] = shortfall
    return out, remainder - shortfall


def compute_report(*, start: dt.date, end: dt.date, as_of: dt.date) -> dict:
    s, e = bounds(start, end)
    _s, as_of_end = bounds(start, as_of)
    close_end = min(e, as_of_end)
    period_open = Opportunity.objects.filter(
        stage__kind=Stage.Kind.OPEN, expected_close_date__gte=start, expected_close_date__lte=end)
    lost = Opportunity.objects.filter(stage__kind=Stage.Kind.LOST, closed_at__gte=s, closed_at__lt=close_end)

    won_sum, won_ids = _grouped(Opportunity.objects.filter(
        stage__kind=Stage.Kind.WON, closed_at__gte=s, closed_at__lt=close_end))
    raw: dict[str, dict[int, Decimal]] = {}
    ids: dict[str, dict[int, list[int]]] = {}

    churned = Q(customer__status=Customer.Status.CHURNED)
    raw_lost, ids_lost = {}, {}
    for reason, cause in LOSS_CAUSE.items():
        raw_lost[cause], ids_lost[cause] = _grouped(lost.filter(loss_reason=reason))
    raw_lost["other_loss"], ids_lost["other_loss"] = _grouped(lost.exclude(loss_reason__in=list(LOSS_CAUSE)))

    open_churn = period_open.filter(churned)
    median_entered = _quote_median_entered(as_of_end)
    quote_q = Q(stage__code__in=QUOTE_STAGE_CODES) & (
        Q(stage_entered_at__lt=median_entered) if median_entered else Q(pk__in=[]))
    open_quote = period_open.exclude(churned).filter(quote_q)
    stall_before = as_of_end - dt.timedelta(days=STALL_DAYS)
    open_stalled = period_open.exclude(churned).exclude(quote_q).filter(last_progress_at__lt=stall_before)
    open_rest = period_open.exclude(churned).exclude(quote_q).exclude(last_progress_at__lt=stall_before)

    for cause, extra in [("customer_churn", open_churn), ("quote_delay", open_quote)]:
        sums, id_map = _grouped(extra)
        raw[cause] = defaultdict(Decimal, raw_lost[cause])
        ids[cause] = defaultdict(list, {k: list(v) for k, v in ids_lost[cause].items()})
        for owner, v in sums.items():
            raw[cause][owner] += v
        for owner, v in id_map.items():
            ids[cause][owner] += v
    for cause in ("solution_mismatch", "competitor", "other_loss"):
        raw[cause], ids[cause] = raw_lost[cause], ids_lost[cause]
    raw["stalled"], ids["stalled"] = _grouped(open_stalled)
    weighted = ExpressionWrapper(F("amount") * F("probability") / 100,
                                 output_field=DecimalField(max_digits=18, decimal_places=4))
    pipe_w = {r["owner_id"]: Decimal(r["w"] or 0)
              for r in open_rest.order_by().values("owner_id").annotate(w=Sum(weighted))}
    _pipe_sum, pipe_ids = _grouped(open_rest)

    unit_targets, user_targets = _targets_for(start, end)
    units = list(OrgUnit.objects.order_by("path"))
    users = {u.pk: u for u in User.objects.select_related("org_unit").order_by("pk")}
    loss_causes = [k for k in CAUSE_KEYS if k != "not_enough_pipeline"]

    def row_for(owner_ids: list[int], target: Decimal | None) -> dict:
        actual = q2(sum((won_sum.get(o, ZERO) for o in owner_ids), ZERO))
        r_raw = {c: q2(sum((raw[c].get(o, ZERO) for o in owner_ids), ZERO)) for c in loss_causes}
        w = q2(sum((pipe_w.get(o, ZERO) for o in owner_ids), ZERO))
        target = target if target is not None else ZERO
        gap = q2(target - actual)
        amounts, unexplained = attribute(gap, r_raw, w)
        return {
            "target": str(q2(target)),
            "actual": str(actual),
            "gap": str(gap),
            "achievement": float(actual / target) if target else None,
            "pipeline_weighted": str(w),
            "causes": {c: {"amount": str(amounts[c]), "raw": str(r_raw.get(c, ZERO)),
                           "count": sum(len(ids.get(c, {}).get(o, ())) for o in owner_ids)
                           if c != "not_enough_pipeline" else sum(len(pipe_ids.get(o, ())) for o in owner_ids)}
                       for c in CAUSE_KEYS},
            "unexplained": str(unexplained),
            "owner_ids": owner_ids,
        }

    owners_by_path: list[tuple[str, int]] = [((u.org_unit.path if u.org_unit_id else ""), u.pk) for u in users.values()]
    rows = []
    for unit in units:
        if unit.pk not in unit_targets:
            continue
        owner_ids = [pk for path, pk in owners_by_path if path and path.startswith(unit.path)]
        value, target_id = unit_targets[unit.pk]
        rows.append({"kind": "unit", "unit_id": unit.pk, "user_id": None, "name": unit.name, "path": unit.path,
                     "depth": unit.depth, "target_id": target_id, **row_for(owner_ids, value)})
    for user_id, (value, target_id) in sorted(user_targets.items(), key=lambda kv: (
            users[kv[0]].org_unit.path if users[kv[0]].org_unit_id else "", kv[0])):
        u = users[user_id]
        rows.append({"kind": "rep", "unit_id": u.org_unit_id, "user_id": u.pk, "name": u.label,
                     "unit_name": u.org_unit.name if u.org_unit_id else "",
                     "path": u.org_unit.path if u.org_unit_id else "", "depth": (u.org_unit.depth + 1)
                     if u.org_unit_id else 0, "target_id": target_id, **row_for([u.pk], value)})
    # Rows in tree order: a unit, then its sub-units and reps.
    rows.sort(key=lambda r: (r["path"], r["kind"] == "rep", r["name"]))

    record_ids: dict[str, dict[str, list[int]]] = {"actual": {str(k): v for k, v in won_ids.items()},
                                                   "not_enough_pipeline": {str(k): v for k, v in pipe_ids.items()}}
    for c in loss_causes:
        record_ids[c] = {str(k): v for k, v in ids[c].items() if v}
    company = next((r for r in rows if r["kind"] == "unit" and r["depth"] == 0), None)
    total = company or row_for(list(users), ZERO)
    return {
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "as_of": as_of.isoformat(),
        "method": {"stall_days": STALL_DAYS, "quote_stages": list(QUOTE_STAGE_CODES),
                   "quote_median_entered": median_entered.isoformat() if median_entered else None},
        "total": {k: total[k] for k in ("target", "actual", "gap", "unexplained", "causes")},
        "rows": rows,
        "record_ids": record_ids,
    }
