"""References measured in the same run, so ratios stay meaningful on a shared, noisy machine.

(a) DuckDB: the aggregates a report page shows (open pipeline by stage × region;
    won amount per rep per month), computed by our ORM/SQL through the
    visibility selector (as the director) and by DuckDB over the same rows
    loaded through Python (DuckDB's SQLite/PostgreSQL scanners cannot be
    downloaded here). Results must be equal; the figure is ours ÷ DuckDB.
(b) The bare endpoint (bench.views): the same 20 opportunity rows as
    /api/opportunities page 1 with no auth, visibility, schema or count.
    In-process per-request time here; throughput under load in bench.throughput.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth
from django.utils import timezone

from .runner import measure
from .scenarios import BenchError, check


def _orm_stage_region(user):
    from tuijin.pipeline.selectors import opportunity_list

    rows = (opportunity_list(user=user, status="open").order_by()
            .values("stage_id", "customer__region").annotate(n=Count("id"), total=Sum("amount")))
    return {(r["stage_id"], r["customer__region"]): (r["n"], int(r["total"] * 100)) for r in rows}


def _orm_won_rep_month(user):
    from tuijin.pipeline.selectors import opportunity_list

    rows = (opportunity_list(user=user, status="won").order_by()
            .annotate(month=TruncMonth("closed_at")).values("owner_id", "month")
            .annotate(n=Count("id"), total=Sum("amount")))
    return {(r["owner_id"], r["month"].date()): (r["n"], int(r["total"] * 100)) for r in rows}


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

