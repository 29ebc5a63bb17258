"""References measured in the same run, so ratios stay meaningful on a shared, noisy machine.

(a) DuckDB: the aggregates a report page shows (open pipeline by stage × region;
    won amount per rep per month), computed by our ORM/SQL through the
    visibility selector (as the director) and by DuckDB over the same rows
    loaded through Python (DuckDB's SQLite/PostgreSQL scanners cannot be
    downloaded here); and the monthly deviation report (goals.report.compute_report,
    this month as of today) against DuckDB computing the aggregates it is built
    from (actual and raw cause amounts per report row, weighted pipeline).
    Results must be equal; the figure is ours ÷ DuckDB.
(b) The bare endpoint (bench.views): the same 20 opportunity rows as
    /api/opportunities page 1 with no auth, visibility, schema or count.
    In-process per-request time here; throughput under load in bench.throughput.
"""

from __future__ import annotations

import datetime as dt
import decimal
import statistics
import time

from django.db.models import Count, Max, Min, Sum
from django.utils import timezone

from .runner import measure
from .scenarios import BenchError, check


def _orm_stage_region(user):
    from tuijin.pipeline.selectors import opportunity_list

    rows = (opportunity_list(user=user, status="open").order_by()
            .values("stage_id", "customer__region").annotate(n=Count("id"), total=Sum("amount")))
    return {(r["stage_id"], r["customer__region"]): (r["n"], int(r["total"] * 100)) for r in rows}


def _orm_won_rep_month(user):
    from tuijin.goals.metrics import local_month
    from tuijin.pipeline.selectors import opportunity_list

    won = opportunity_list(user=user, status="won").order_by()
    span = won.aggregate(first=Min("closed_at"), last=Max("closed_at"))
    if span["first"] is None:
        return {}
    # Local months bucketed by the database (goals.metrics.local_month): TruncMonth is a Python call per row
    # on SQLite.
    month = local_month("closed_at", timezone.localtime(span["first"]).date(), timezone.localtime(span["last"]).date())
    rows = won.annotate(month=month).values("owner_id", "month").annotate(n=Count("id"), total=Sum("amount"))
    return {(r["owner_id"], r["month"]): (r["n"], int(r["total"] * 100)) for r in rows}


def _load_rows():
    """Every opportunity with the columns both aggregates need, converted for DuckDB."""
    from tuijin.pipeline.models import Opportunity

    tz = timezone.get_current_timezone()
    cols = {"stage_id": [], "kind": [], "region": [], "owner_id": [], "cents": [], "closed_local": []}
    qs = Opportunity.objects.values_list("stage_id", "stage__kind", "customer__region", "owner_id", "amount",
                                         "closed_at")
    for stage_id, kind, region, owner_id, amount, closed in qs.iterator(chunk_size=10_000):
        cols["stage_id"].append(stage_id)
        cols["kind"].append(kind)
        cols["region"].append(region)
        cols["owner_id"].append(owner_id)
        cols["cents"].append(int(amount * 100))
        # Months are local months (Asia/Shanghai), as TruncMonth computes them in our ORM query.
        cols["closed_local"].append(closed.astimezone(tz).replace(tzinfo=None) if closed else None)
    return cols


DUCK_STAGE_REGION = """
    SELECT stage_id, region, count(*) AS n, sum(cents) AS total FROM opp WHERE kind = 'open' GROUP BY 1, 2
"""
DUCK_WON_REP_MONTH = """
    SELECT owner_id, CAST(date_trunc('month', closed_local) AS DATE) AS month, count(*) AS n, sum(cents) AS total
    FROM opp WHERE kind = 'won' GROUP BY 1, 2
"""


def duckdb_reference(ctx, *, repeat: int) -> dict:
    import duckdb

    director = ctx.user("director")
    start = time.perf_counter()
    cols = _load_rows()
    load_s = time.perf_counter() - start
    con = duckdb.connect()
    start = time.perf_counter()
    names = list(cols)
    con.execute(
        "CREATE TABLE opp AS SELECT " + ", ".join(f"unnest(${i + 1}) AS {n}" for i, n in enumerate(names)),
        [cols[n] for n in names],
    )
    build_s = time.perf_counter() - start
    out = {"rows": len(cols["stage_id"]), "load_rows_ms": round(load_s * 1000, 1),
           "build_table_ms": round(build_s * 1000, 1), "aggregates": []}
    cases = [
        ("pipeline_by_stage_region", "Open pipeline by stage × region (count, amount)", _orm_stage_region,
         DUCK_STAGE_REGION),
        ("won_by_rep_month", "Won amount per rep per month", _orm_won_rep_month, DUCK_WON_REP_MONTH),
    ]
    for key, title, orm_fn, sql in cases:
        ours = measure(lambda f=orm_fn: f(director), warmup=1, repeat=repeat)
        duck_times = []
        for _ in range(repeat + 1):
            t = time.perf_counter()
            rows = con.execute(sql).fetchall()
            duck_times.append((time.perf_counter() - t) * 1000)
        duck_ms = statistics.median(duck_times[1:])
        duck = {(a, b.isoformat() if isinstance(b, dt.date) else b): (n, int(total)) for a, b, n, total in rows}
        orm = {(a, b.isoformat() if isinstance(b, dt.date) else b): v for (a, b), v in orm_fn(director).items()}
        if duck != orm:
            diff = sorted(set(duck.items()) ^ set(orm.items()))[:5]
            raise BenchError(f"{key}: DuckDB and our ORM disagree, e.g. {diff}")
        out["aggregates"].append({
            "name": key, "title": title, "groups": len(orm), "ours_median_ms": ours["median_ms"],
            "ours_p95_ms": ours["p95_ms"], "ours_queries": ours["queries"], "duckdb_median_ms": round(duck_ms, 2),
            "ratio_ours_to_duckdb": round(ours["median_ms"] / duck_ms, 1) if duck_ms else None,
            "results_equal": True,
        })
    con.close()
    out["aggregates"].append(report_reference(ctx, repeat=repeat))
    return out


def bare_reference(ctx, *, repeat: int) -> dict:
    from django.test import Client

    api = ctx.api("director")
    bare = Client()

    def ours():
        data = check(api.get("/api/opportunities", {"page_size": 20})).json()
        if len(data["items"]) != 20:
            raise BenchError("list endpoint returned fewer than 20 rows")

    def reference():
        data = check(bare.get("/__bench__/bare-opportunities", {"page_size": 20})).json()
        if len(data["items"]) != 20:
            raise BenchError("bare endpoint returned fewer than 20 rows")

    o = measure(ours, warmup=3, repeat=repeat)
    b = measure(reference, warmup=3, repeat=repeat)
    return {"rows": 20, "ours": o, "bare": b,
            "ratio_ours_to_bare_time": round(o["median_ms"] / b["median_ms"], 2) if b["median_ms"] else None}



# --------------------------------------------------------------------------- the monthly deviation report (G7)

REPORT_CAUSES = ("customer_churn", "quote_delay", "solution_mismatch", "competitor", "other_loss", "stalled")

DUCK_REPORT = """
WITH quote AS (
    SELECT entered, row_number() OVER (ORDER BY entered, id) - 1 AS rn, count(*) OVER () AS n
    FROM opp WHERE kind = 'open' AND code IN ('tender', 'quote', 'negotiation') AND entered < $as_of_end
), median AS (SELECT min(entered) AS entered FROM quote WHERE rn = n // 2
), cat AS (
    SELECT owner_id, cents, probability,
        CASE
            WHEN kind = 'won' AND closed >= $s AND closed < $close_end THEN 'actual'
            WHEN kind = 'lost' AND closed >= $s AND closed < $close_end THEN CASE
                WHEN loss_reason IN ('customer_churn', 'quote_delay', 'solution_mismatch', 'competitor')
                THEN loss_reason ELSE 'other_loss' END
            WHEN kind = 'open' AND expected BETWEEN $start AND $end THEN CASE
                WHEN churned THEN 'customer_churn'
                WHEN code IN ('tender', 'quote', 'negotiation') AND entered < (SELECT entered FROM median)
                    THEN 'quote_delay'
                WHEN progress < $stall_before THEN 'stalled'
                ELSE 'pipeline' END
        END AS cat
    FROM opp
), per_owner AS (
    SELECT owner_id, cat, sum(CAST(cents AS HUGEINT)) AS cents, sum(CAST(cents AS HUGEINT) * probability) AS cp FROM cat
    WHERE cat IS NOT NULL GROUP BY 1, 2
)
SELECT s.kind, s.scope_id, p.cat, sum(p.cents), sum(p.cp)
FROM scopes s
JOIN owners u ON (s.kind = 'rep' AND u.id = s.scope_id) OR (s.kind = 'unit' AND starts_with(u.path, s.path))
JOIN per_owner p ON p.owner_id = u.id
GROUP BY 1, 2, 3
"""


def _report_period():
    from tuijin.goals.metrics import bounds, month_bounds
    from tuijin.goals.selectors import today

    as_of = today()
    start, end = month_bounds(as_of)
    s, e = bounds(start, end)
    _s, as_of_end = bounds(start, as_of)
    return start, end, as_of, s, min(e, as_of_end), as_of_end


def _naive_utc(value):
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value else None


def _load_report_rows() -> dict:
    """Every opportunity with the columns the report's attribution needs, plus users' unit paths."""
    from tuijin.org.models import User
    from tuijin.pipeline.models import Opportunity

    cols = {k: [] for k in ("id", "owner_id", "kind", "code", "loss_reason", "cents", "probability", "closed",
                            "expected", "entered", "progress", "churned")}
    qs = Opportunity.objects.values_list("id", "owner_id", "stage__kind", "stage__code", "loss_reason", "amount",
                                         "probability", "closed_at", "expected_close_date", "stage_entered_at",
                                         "last_progress_at", "customer__status")
    for (pk, owner, kind, code, reason, amount, prob, closed, expected, entered, progress,
         status) in qs.iterator(chunk_size=10_000):
        for k, v in (("id", pk), ("owner_id", owner), ("kind", kind), ("code", code), ("loss_reason", reason or ""),
                     ("cents", int(amount * 100)), ("probability", int(prob or 0)), ("closed", _naive_utc(closed)),
                     ("expected", expected), ("entered", _naive_utc(entered)), ("progress", _naive_utc(progress)),
                     ("churned", status == "churned")):
            cols[k].append(v)
    owners = {"id": [], "path": []}
    for pk, path in User.objects.values_list("pk", "org_unit__path"):
        owners["id"].append(pk)
        owners["path"].append(path or "")
    return {"opp": cols, "owners": owners}


def _table(con, name: str, cols: dict) -> None:
    names = list(cols)
    con.execute(f"CREATE OR REPLACE TABLE {name} AS SELECT "
                + ", ".join(f"unnest(${i + 1}) AS {n}" for i, n in enumerate(names)), [cols[n] for n in names])


def _report_key(row) -> tuple:
    return ("rep", row["user_id"]) if row["kind"] == "rep" else ("unit", row["unit_id"])


def _cents(value) -> int:
    return int(decimal.Decimal(value) * 100)


def report_reference(ctx, *, repeat: int) -> dict:
    """Our compute_report (whole company, this month as of today) vs DuckDB computing the aggregates it is
    built from — actual and the six raw cause amounts per report row (units rolled up by path, reps) and the
    weighted open pipeline — over the same rows. The per-row figures must be equal."""
    import duckdb

    from tuijin.goals.metrics import q2
    from tuijin.goals.report import compute_report

    start, end, as_of, s, close_end, as_of_end = _report_period()
    t = time.perf_counter()
    data = _load_report_rows()
    load_s = time.perf_counter() - t
    ours_data = compute_report(start=start, end=end, as_of=as_of)
    scopes = {"kind": [], "scope_id": [], "path": []}
    for row in ours_data["rows"]:
        kind, scope_id = _report_key(row)
        scopes["kind"].append(kind)
        scopes["scope_id"].append(scope_id)
        scopes["path"].append(row["path"])
    con = duckdb.connect()
    t = time.perf_counter()
    _table(con, "opp", data["opp"])
    _table(con, "owners", data["owners"])
    if scopes["kind"]:
        _table(con, "scopes", scopes)
    else:
        con.execute("CREATE TABLE scopes (kind VARCHAR, scope_id BIGINT, path VARCHAR)")
    build_s = time.perf_counter() - t
    params = {"start": start, "end": end, "s": _naive_utc(s), "close_end": _naive_utc(close_end),
              "as_of_end": _naive_utc(as_of_end), "stall_before": _naive_utc(as_of_end - dt.timedelta(days=14))}
    duck_times = []
    for _ in range(repeat + 1):
        t = time.perf_counter()
        rows = con.execute(DUCK_REPORT, params).fetchall()
        duck_times.append((time.perf_counter() - t) * 1000)
    duck_ms = statistics.median(duck_times[1:])
    con.close()

    def empty():
        return {"actual": 0, "pipeline_weighted": 0, **{c: 0 for c in REPORT_CAUSES}}

    duck = {k: empty() for k in zip(scopes["kind"], scopes["scope_id"], strict=True)}
    for kind, scope_id, cat, cents, cp in rows:
        if cat == "pipeline":
            duck[(kind, scope_id)]["pipeline_weighted"] = _cents(q2(decimal.Decimal(cp) / 10_000))  # cents × % → yuan
        else:
            duck[(kind, scope_id)][cat] = int(cents)
    ours = {}
    for row in ours_data["rows"]:
        ours[_report_key(row)] = {"actual": _cents(row["actual"]), "pipeline_weighted": _cents(row["pipeline_weighted"]),
                                  **{c: _cents(row["causes"][c]["raw"]) for c in REPORT_CAUSES}}
    if duck != ours:
        diff = [(k, ours.get(k), duck.get(k)) for k in sorted(set(duck) | set(ours)) if duck.get(k) != ours.get(k)]
        raise BenchError(f"deviation report: DuckDB and ours disagree on {len(diff)} rows, e.g. {diff[:2]}")
    mine = measure(lambda: compute_report(start=start, end=end, as_of=as_of), warmup=1, repeat=repeat)
    return {
        "name": "goal_report", "title": f"Monthly deviation report {start:%Y-%m} as of {as_of} (actual + causes "
                                         "per unit and rep)",
        "rows": len(data["opp"]["id"]), "load_rows_ms": round(load_s * 1000, 1), "build_table_ms": round(build_s * 1000, 1),
        "groups": len(ours), "ours_median_ms": mine["median_ms"], "ours_p95_ms": mine["p95_ms"],
        "ours_queries": mine["queries"], "duckdb_median_ms": round(duck_ms, 2),
        "ratio_ours_to_duckdb": round(mine["median_ms"] / duck_ms, 1) if duck_ms else None, "results_equal": True,
    }
