"""Results: the machine-readable JSON (bench/results/<scale>-<timestamp>.json) and the tables in docs/benchmarks.md.

docs/benchmarks.md keeps hand-written text around generated sections; each
scale's section lives between `<!-- bench:<scale>:start -->` and
`<!-- bench:<scale>:end -->` and is replaced by the latest run of that scale.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sqlite3
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOC = REPO / "docs" / "benchmarks.md"


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}
    try:
        text = Path("/proc/meminfo").read_text()
        info["memory_gib"] = round(int(re.search(r"MemTotal:\s+(\d+)", text).group(1)) / 1024 / 1024, 1)
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        info["cpu"] = cpu.group(1).strip() if cpu else ""
    except (OSError, AttributeError):
        pass
    try:
        info["postgresql"] = subprocess.run(["psql", "--version"], capture_output=True, text=True,
                                            timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        info["postgresql"] = ""
    try:
        import django
        import duckdb

        info["django"], info["duckdb"] = django.get_version(), duckdb.__version__
    except ImportError:
        pass
    return info


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def write_json(result: dict, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = result["started_at"].replace(":", "").replace("-", "")[:15]
    path = directory / f"{result['scale']['name']}-{result['database']['vendor']}-{stamp}.json"
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _fmt(v, unit="") -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = f"{v:,.1f}" if abs(v) >= 10 else f"{v:,.2f}"
    elif isinstance(v, int):
        v = f"{v:,}"
    return f"{v}{unit}"


def _verdict(s: dict) -> str:
    if s.get("status") != "ok":
        return s.get("status", "")
    checks = []
    if s.get("target_ms") is not None:
        checks.append(s["median_ms"] <= s["target_ms"])
    if s.get("target_queries") is not None:
        checks.append(s["queries"] <= s["target_queries"])
    if not checks:
        return ""
    return "meets" if all(checks) else "**misses**"


def markdown(result: dict, json_path: str) -> str:
    ds = result["dataset"]
    c = ds["counts"]
    m = result["machine"]
    db = result["database"]
    lines = [
        f"### Scale {result['scale']['name']} on {db['vendor']} — {result['started_at'][:16].replace('T', ' ')}",
        "",
        f"Data: {c['users']:,} users, {c['customers']:,} customers, {c['contacts']:,} contacts, "
        f"{c['opportunities']:,} opportunities, {c['activities']:,} activities, {c['audit_events']:,} audit events. "
        f"Generated in {ds['generation_seconds']:,} s wall, {ds.get('generation_cpu_seconds') or '?'} s CPU"
        + (" (reused from an earlier run)" if ds.get("reused") else "")
        + f"; phases {ds.get('phase_seconds')}.",
        "",
        f"Machine: {m.get('nproc')} CPUs ({m.get('cpu', '')}), {m.get('memory_gib')} GiB, Python {m['python']}, "
        f"SQLite {m['sqlite']}, {m.get('postgresql') or 'PostgreSQL: n/a'}, Django {m.get('django')}, "
        f"DuckDB {m.get('duckdb')}; database {db['vendor']} {db.get('version', '')}. "
        f"Load average at start {result['load_start']}, at end {result['load_end']} (shared machine).",
        "",
        f"Results file: `{json_path}`",
        "",
        "| scenario | as | median ms | p95 ms | SQL queries | peak memory KiB | runs | target | |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in result["scenarios"]:
        target = " / ".join(x for x in [
            f"≤ {s['target_ms']:g} ms" if s.get("target_ms") is not None else "",
            f"≤ {s['target_queries']} q" if s.get("target_queries") is not None else "",
        ] if x)
        if s["status"] != "ok":
            lines.append(f"| {s['name']} | {s['role'] or ''} | {s['status']}: {s.get('note', '')} | | | | | "
                         f"{target} | |")
            continue
        lines.append(
            f"| {s['name']} | {s['role'] or ''} | {_fmt(s['median_ms'])} | {_fmt(s['p95_ms'])} | {s['queries']} | "
            f"{_fmt(s['peak_kib'])} | {s['runs']} | {target} | {_verdict(s)} |"
        )
    refs = result.get("references", {})
    duck = refs.get("duckdb")
    if duck:
        lines += [
            "",
            f"DuckDB reference ({duck['rows']:,} opportunity rows loaded through Python in "
            f"{_fmt(duck['load_rows_ms'])} ms, table built in {_fmt(duck['build_table_ms'])} ms; results equal):",
            "",
            "| aggregate | groups | ours median ms | DuckDB median ms | ours ÷ DuckDB |",
            "|---|---:|---:|---:|---:|",
        ]
        for a in duck["aggregates"]:
            lines.append(f"| {a['title']} | {a['groups']} | {_fmt(a['ours_median_ms'])} | "
                         f"{_fmt(a['duckdb_median_ms'])} | {_fmt(a['ratio_ours_to_duckdb'])}× |")
    bare = refs.get("bare_endpoint")
    if bare:
        lines += [
            "",
            f"Bare endpoint, in-process (20 rows): /api/opportunities as director {_fmt(bare['ours']['median_ms'])} ms "
            f"({bare['ours']['queries']} queries) vs bare {_fmt(bare['bare']['median_ms'])} ms "
            f"({bare['bare']['queries']} query) → ours ÷ bare = {bare['ratio_ours_to_bare_time']}× the time.",
        ]
    tp = result.get("throughput")
    if tp and tp.get("endpoints"):
        lines += [
            "",
            f"Throughput ({tp['tool']}, {tp['connections']} connections, {tp['seconds_per_endpoint']} s per endpoint, "
            f"{tp['server']}):",
            "",
            "| endpoint | requests/s | p50 ms | p99 ms | requests | errors | ÷ bare |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for e in tp["endpoints"]:
            ratio = tp["ratio_ours_to_bare"].get(e["name"])
            lines.append(f"| {e['name']} `{e['path']}` | {_fmt(e['requests_per_s'])} | {_fmt(e['p50_ms'])} | "
                         f"{_fmt(e['p99_ms'])} | {_fmt(e['requests'])} | {e['errors']} | "
                         f"{_fmt(ratio) if ratio is not None else ''} |")
    elif tp and tp.get("skipped"):
        lines += ["", f"Throughput: skipped ({tp['skipped']})."]
    return "\n".join(lines) + "\n"


def update_doc(result: dict, json_path: str, doc: Path = DOC) -> None:
    key = f"{result['scale']['name']}-{result['database']['vendor']}"
    start, end = f"<!-- bench:{key}:start -->", f"<!-- bench:{key}:end -->"
    block = f"{start}\n{markdown(result, json_path)}{end}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else "# Benchmarks\n"
    if start in text and end in text:
        text = re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: block, text, flags=re.S)
    else:
        marker = "<!-- bench:results -->"
        text = text.replace(marker, f"{marker}\n\n{block}") if marker in text else f"{text.rstrip()}\n\n{block}\n"
    doc.write_text(text, encoding="utf-8")
