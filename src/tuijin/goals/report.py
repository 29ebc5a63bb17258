"""The monthly goal deviation analysis (目标偏差分析报告, SPEC G7): target, actual, gap and its causes.

Computed with a fixed number of queries whatever the number of records: one
pass fetches the period's deals (closed in the period, or open and expected to
close in it) with the columns the causes need, they are classified and summed
per owner here (exact decimals), and owners are rolled up to org units by their
materialised path. (One grouped query per cause scanned the deals table ~20
times: 1.5 s at 100,000 deals on SQLite.) The method, in the order causes are claimed (an opportunity counts
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

from django.db import connection
from django.db.models import BooleanField, ExpressionWrapper, Q
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


def _quote_median_entered(as_of_end: dt.datetime, stages: dict[int, tuple[str, str]]) -> dt.datetime | None:
    """The median stage-entry time of open deals in a quote stage (older entry = longer in stage).

    The upper median of (entry time, id) ascending: a count, then one row at that offset (fetching every
    entry time to sort in Python cost as much as the rest of the report).
    """
    quote_stages = [pk for pk, (kind, code) in stages.items() if kind == Stage.Kind.OPEN and code in QUOTE_STAGE_CODES]
    qs = Opportunity.objects.filter(stage_id__in=quote_stages, stage_entered_at__lt=as_of_end)
    n = qs.count() if quote_stages else 0
    if not n:
        return None
    return qs.order_by("stage_entered_at", "id").values_list("stage_entered_at", flat=True)[n // 2]


def _flag(q: Q) -> ExpressionWrapper:
    return ExpressionWrapper(q, output_field=BooleanField())


def _period_deals(start: dt.date, end: dt.date, s: dt.datetime, close_end: dt.datetime,
                  median_entered: dt.datetime | None, stall_before: dt.datetime, open_stage_ids: list[int]):
    """Every deal the report may look at, in one query (one pass instead of one per cause): closed in
    [s, close_end) or expected to close in [start, end], with the time conditions evaluated by the
    database as flags (parsing three datetimes per row in Python cost more than the query).

    The caller keeps closed (won/lost) deals flagged `closed_in` and open deals flagged `expected_in`.
    Each side of the OR has its own index (closed_at; stage_id + expected_close_date:
    Opportunity.Meta.indexes), so SQLite and PostgreSQL read only the period's deals. No stage condition on the closed
    side on purpose: SQLite would pick the stage index and walk every closed deal.
    """
    return (Opportunity.objects.filter(
        Q(closed_at__gte=s, closed_at__lt=close_end)
        | Q(stage_id__in=open_stage_ids, expected_close_date__gte=start, expected_close_date__lte=end))
        .annotate(closed_in=_flag(Q(closed_at__gte=s, closed_at__lt=close_end)),
                  expected_in=_flag(Q(expected_close_date__gte=start, expected_close_date__lte=end)),
                  long_in_quote=_flag(Q(stage_entered_at__lt=median_entered) if median_entered else Q(pk__in=[])),
                  stalled=_flag(Q(last_progress_at__lt=stall_before)))
        .order_by("id").values_list("id", "owner_id", "stage_id", "loss_reason", "amount", "probability",
                                    "customer__status", "closed_in", "expected_in", "long_in_quote", "stalled"))


def _decimal(value) -> Decimal:
    """An amount as the driver returns it (SQLite: int/float/str, PostgreSQL: Decimal), exactly."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value or 0)


def _raw_rows(qs) -> list[tuple]:
    """The queryset's rows straight from the cursor, in values_list order (fields, then annotations, as
    listed). Django's per-value converters (decimals, booleans) were most of the report's time at
    8,000 deals; the loop converts the one column that needs it."""
    sql, params = qs.query.sql_with_params()
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


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
    stages = {pk: (kind, code) for pk, kind, code in Stage.objects.values_list("pk", "kind", "code")}
    median_entered = _quote_median_entered(as_of_end, stages)
    stall_before = as_of_end - dt.timedelta(days=STALL_DAYS)
    loss_causes = [k for k in CAUSE_KEYS if k != "not_enough_pipeline"]

    # Per cause and owner: amount and ids (lost deals first, then open ones, each in id order — as listed).
    won_sum: dict[int, Decimal] = defaultdict(Decimal)
    won_ids: dict[int, list[int]] = defaultdict(list)
    raw: dict[str, dict[int, Decimal]] = {c: defaultdict(Decimal) for c in loss_causes}
    lost_ids: dict[str, dict[int, list[int]]] = {c: defaultdict(list) for c in loss_causes}
    open_ids: dict[str, dict[int, list[int]]] = {c: defaultdict(list) for c in loss_causes}
    pipe_w: dict[int, Decimal] = defaultdict(Decimal)
    pipe_ids: dict[int, list[int]] = defaultdict(list)
    for (pk, owner, stage_id, reason, amount, probability, customer_status, closed_in, expected_in, long_in_quote,
         stalled) in _raw_rows(_period_deals(start, end, s, close_end, median_entered, stall_before,
                                          [pk for pk, (kind, _c) in stages.items() if kind == Stage.Kind.OPEN])):
        kind, code = stages[stage_id]
        if not (expected_in if kind == Stage.Kind.OPEN else closed_in):
            continue  # fetched for the other date only
        amount = _decimal(amount)
        if kind == Stage.Kind.WON:
            won_sum[owner] += amount
            won_ids[owner].append(pk)
            continue
        if kind == Stage.Kind.LOST:
            cause = LOSS_CAUSE.get(reason, "other_loss")
            raw[cause][owner] += amount
            lost_ids[cause][owner].append(pk)
            continue
        # Open and expected to close in the period: the first matching cause claims it.
        if customer_status == Customer.Status.CHURNED:
            cause = "customer_churn"
        elif code in QUOTE_STAGE_CODES and long_in_quote:
            cause = "quote_delay"
        elif stalled:
            cause = "stalled"
        else:
            pipe_w[owner] += amount * (probability or 0) / 100
            pipe_ids[owner].append(pk)
            continue
        raw[cause][owner] += amount
        open_ids[cause][owner].append(pk)
    ids = {c: {o: lost_ids[c].get(o, []) + open_ids[c].get(o, [])
               for o in set(lost_ids[c]) | set(open_ids[c])} for c in loss_causes}

    unit_targets, user_targets = _targets_for(start, end)
    units = list(OrgUnit.objects.order_by("path"))
    users = {u.pk: u for u in User.objects.select_related("org_unit").order_by("pk")}

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
