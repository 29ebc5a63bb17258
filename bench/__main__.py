"""`python -m bench`: generate (or reuse) a dataset, run every scenario, the references and the throughput test.

    .venv/bin/python -m bench --scale S                 # SQLite file var/bench-S.sqlite3
    .venv/bin/python -m bench --scale S --scale M       # one process per scale
    .venv/bin/python -m bench --scale L --database-url postgres://postgres@127.0.0.1:5432/tuijin_bench_l
    .venv/bin/python -m bench --scale S --only page.kanban --no-throughput

Results: bench/results/<scale>-<db>-<timestamp>.json and the scale's section of
docs/benchmarks.md. Exit status 1 when a scenario returned a wrong response.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sqlite3
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", action="append", choices=["XS", "S", "M", "L"], help="repeatable; default S")
    p.add_argument("--sqlite", help="SQLite file for the dataset (default var/bench-<scale>.sqlite3)")
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", ""),
                   help="PostgreSQL database for the dataset (created if missing; never the dev database)")
    p.add_argument("--only", action="append", help="run only scenarios matching this glob (repeatable)")
    p.add_argument("--repeat", type=int, help="timed runs per scenario (default: per scale)")
    p.add_argument("--throughput-seconds", type=int, default=15)
    p.add_argument("--no-throughput", action="store_true")
    p.add_argument("--no-references", action="store_true")
    p.add_argument("--no-docs", action="store_true", help="do not update docs/benchmarks.md")
    p.add_argument("--results-dir", default=str(REPO / "bench" / "results"))
    p.add_argument("--fresh", action="store_true", help="regenerate the dataset even if it matches")
    return p.parse_args(argv)


# --------------------------------------------------------------------------- database selection (before Django)


def _sqlite_fingerprint(path: Path) -> str | None:
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = dict(con.execute("SELECT key, value FROM bench_meta").fetchall())
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return json.loads(rows["fingerprint"]) if json.loads(rows.get("complete", "false")) else None


def _pg_parts(url: str):
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return parts.path.lstrip("/"), urlunsplit(parts._replace(path="/postgres"))


def _pg_fingerprint(url: str) -> str | None:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=5) as con:
            rows = dict(con.execute("SELECT key, value FROM bench_meta").fetchall())
    except psycopg.Error:
        return None
    return json.loads(rows["fingerprint"]) if json.loads(rows.get("complete", "false")) else None


def _pg_recreate(url: str, *, drop: bool) -> None:
    import psycopg
    from psycopg import sql

    name, admin_url = _pg_parts(url)
    with psycopg.connect(admin_url, autocommit=True) as con:
        exists = con.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and drop:
            con.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = None
        if not exists:
            con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def select_database(scale, args) -> dict:
    """Point Django at the scale's own database; wipe it when it holds a different dataset."""
    from .datasets import fingerprint

    fp = fingerprint(scale)
    if args.database_url:
        os.environ["DATABASE_URL"] = args.database_url
        os.environ.pop("TUIJIN_BENCH_SQLITE", None)
        found = None if args.fresh else _pg_fingerprint(args.database_url)
        _pg_recreate(args.database_url, drop=found != fp)
        return {"vendor": "postgresql", "name": _pg_parts(args.database_url)[0], "reuse": found == fp}
    path = Path(args.sqlite or REPO / "var" / f"bench-{scale.name}.sqlite3")
    path.parent.mkdir(parents=True, exist_ok=True)
    found = None if args.fresh else (_sqlite_fingerprint(path) if path.exists() else None)
    if found != fp:
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            p.unlink(missing_ok=True)
    os.environ.pop("DATABASE_URL", None)
    os.environ["TUIJIN_BENCH_SQLITE"] = str(path)
    return {"vendor": "sqlite", "name": str(path), "reuse": found == fp}


# --------------------------------------------------------------------------- one scale


def run_scale(scale_name: str, args) -> int:
    from .datasets import SCALES

    scale = SCALES[scale_name]
    db = select_database(scale, args)
    os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    os.environ.setdefault("TUIJIN_DEMO", "1")  # demo mode: no production secret needed for a local bench
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from . import report
    from .context import Context
    from .datasets import ensure_extension, fingerprint, generate, meta_get
    from .runner import measure
    from .scenarios import BenchError, Skip, discover

    started = timezone.now()
    load_start = report.load_average()
    log(f"== scale {scale.name} on {db['vendor']} ({db['name']})")
    call_command("migrate", verbosity=0, interactive=False)
    meta = meta_get()
    if db["reuse"] and meta.get("fingerprint") == fingerprint(scale):
        log(f"   reusing dataset {meta['fingerprint']} generated {meta['generated_at']}")
        meta["reused"] = True
    else:
        log(f"   generating dataset {fingerprint(scale)} ...")
        meta = generate(scale, log=log)
        meta["reused"] = False
        log(f"   generated in {meta['generation_seconds']} s: {meta['counts']}")
    # Goals and daily reports: an extension phase on top of the (reused or new) base data, with its own key.
    meta["extension"] = ensure_extension(meta_get(), log=log)
    # Planner statistics as an installation keeps them (core.tasks refreshes them nightly); a reused
    # dataset gets them too, ANALYZE takes ~2 s at scale M.
    from tuijin.core.dbstats import refresh_statistics

    refresh_statistics()
    with connection.cursor() as cur:
        cur.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        db["version"] = cur.fetchone()[0].split(" on ")[0]

    ctx = Context.build(scale, meta)
    repeat = args.repeat or scale.repeat
    results, failures = [], 0
    for sc in discover().values():
        for role in sc.roles:
            label = f"{sc.name}[{role}]" if role else sc.name
            if args.only and not any(fnmatch.fnmatch(label, pat) or fnmatch.fnmatch(sc.name, pat)
                                     for pat in args.only):
                continue
            entry = {"name": sc.name, "role": role, "title": sc.title, "group": sc.group,
                     "target_ms": sc.target_ms, "target_queries": sc.target_queries}
            try:
                op = sc.setup(ctx, role)
                n = min(repeat, scale.heavy_repeat) if sc.heavy else repeat
                entry.update(measure(op, warmup=0 if sc.heavy else min(3, repeat), repeat=n), status="ok")
                if getattr(op, "names", None):
                    entry["jobs"] = op.names
                log(f"   {label:<40} median {entry['median_ms']:>10.1f} ms  p95 {entry['p95_ms']:>10.1f} ms  "
                    f"{entry['queries']:>5} q  {entry['peak_kib']:>8} KiB")
            except Skip as exc:
                entry.update(status="skipped", note=str(exc))
                log(f"   {label:<40} skipped: {exc}")
            except (BenchError, Exception) as exc:  # noqa: B014 (a wrong response and a crash both fail the run)
                failures += 1
                entry.update(status="error", note=f"{exc.__class__.__name__}: {exc}"[:500])
                log(f"   {label:<40} ERROR {exc}\n{traceback.format_exc()}")
            results.append(entry)

    references = {}
    if not args.no_references:
        from .references import bare_reference, duckdb_reference

        try:
            references["duckdb"] = duckdb_reference(ctx, repeat=repeat)
            for a in references["duckdb"]["aggregates"]:
                log(f"   duckdb {a['name']:<32} ours {a['ours_median_ms']} ms / duckdb {a['duckdb_median_ms']} ms "
                    f"= {a['ratio_ours_to_duckdb']}×")
        except Exception as exc:
            failures += 1
            references["duckdb_error"] = f"{exc.__class__.__name__}: {exc}"
            log(f"   duckdb reference ERROR {exc}\n{traceback.format_exc()}")
        references["bare_endpoint"] = bare_reference(ctx, repeat=repeat)
        log(f"   bare endpoint: ours ÷ bare = {references['bare_endpoint']['ratio_ours_to_bare_time']}× the time")

    tp: dict = {"skipped": "--no-throughput"} if args.no_throughput else {}
    if not args.no_throughput:
        from .throughput import throughput

        connection.close()  # the server's workers open their own connections
        try:
            tp = throughput(ctx, env=dict(os.environ), seconds=args.throughput_seconds)
            for e in tp["endpoints"]:
                log(f"   load {e['name']:<30} {e['requests_per_s']:>8} req/s  p50 {e['p50_ms']} ms  "
                    f"p99 {e['p99_ms']} ms  errors {e['errors']}")
            if any(e["errors"] for e in tp["endpoints"]) or tp["server_errors_logged"]:
                failures += 1
        except Exception as exc:
            failures += 1
            tp = {"error": f"{exc.__class__.__name__}: {exc}"}
            log(f"   throughput ERROR {exc}\n{traceback.format_exc()}")

    result = {
        "schema": 1,
        "scale": meta["scale"],
        "started_at": started.isoformat(),
        "finished_at": timezone.now().isoformat(),
        "load_start": load_start,
        "load_end": report.load_average(),
        "machine": report.machine(),
        "database": db,
        "dataset": {k: meta.get(k) for k in ("fingerprint", "seed", "generator_version", "anchor", "generated_at",
                                             "generation_seconds", "generation_cpu_seconds", "phase_seconds", "counts", "users", "reused",
                                             "extension")},
        "scenarios": results,
        "references": references,
        "throughput": tp,
        "failures": failures,
        "command": "python -m bench " + " ".join(sys.argv[1:]),
    }
    path = report.write_json(result, Path(args.results_dir))
    log(f"   results: {path}")
    if not args.no_docs:
        try:
            shown = path.relative_to(REPO)
        except ValueError:
            shown = path
        report.update_doc(result, str(shown))
        log(f"   updated {report.DOC.relative_to(REPO)}")
    return 1 if failures else 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    scales = args.scale or ["S"]
    if len(scales) == 1:
        return run_scale(scales[0], args)
    # Django is configured once per process, and each scale has its own database: one child per scale.
    status = 0
    rest = [a for i, a in enumerate(argv) if a != "--scale" and (i == 0 or argv[i - 1] != "--scale")]
    for name in scales:
        start = time.monotonic()
        child_args = [sys.executable, "-m", "bench", "--scale", name, *rest]
        if args.database_url:
            child_args += ["--database-url", f"{args.database_url}_{name.lower()}"]
        code = subprocess.call(child_args, cwd=REPO)
        log(f"== scale {name} finished with status {code} in {time.monotonic() - start:.0f} s")
        status = status or code
    return status


if __name__ == "__main__":
    sys.exit(main())
