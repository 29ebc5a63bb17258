"""CI smoke run of the benchmark harness: scale XS on SQLite in a subprocess, then the result JSON is checked.

No timing assertions (speed is measured in bench/, never asserted in tests): this
checks that `python -m bench` generates a dataset, runs every registered
scenario without a wrong response, computes the references (with DuckDB's
results equal to ours), drives a live server, and writes a well-formed file;
and that a second run reuses the dataset by its fingerprint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _run(tmp_path, *extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_", "DATABASE_URL"))}
    env["TUIJIN_VAR_DIR"] = str(tmp_path / "var")  # the import file, cache: nothing in the checkout's var/
    cmd = [sys.executable, "-m", "bench", "--scale", "XS", "--sqlite", str(tmp_path / "bench-XS.sqlite3"),
           "--results-dir", str(tmp_path / "results"), "--no-docs", "--repeat", "2", *extra]
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _number(v) -> bool:
    return isinstance(v, (int, float)) and v >= 0


def test_bench_harness_produces_a_well_formed_result_and_reuses_its_dataset(tmp_path):
    from bench.datasets import SCALES
    from bench.scenarios import discover

    _run(tmp_path, "--throughput-seconds", "1")
    files = list((tmp_path / "results").glob("XS-sqlite-*.json"))
    assert len(files) == 1
    data = json.loads(files[0].read_text(encoding="utf-8"))

    xs = SCALES["XS"]
    assert data["schema"] == 1 and data["failures"] == 0
    assert data["database"]["vendor"] == "sqlite"
    counts = data["dataset"]["counts"]
    assert (counts["customers"], counts["opportunities"], counts["activities"]) == (
        xs.customers, xs.opportunities, xs.activities)
    assert counts["audit_events"] > counts["customers"] + counts["opportunities"]
    assert data["dataset"]["reused"] is False and _number(data["dataset"]["generation_seconds"])
    assert {"nproc", "python", "sqlite", "memory_gib"} <= set(data["machine"])
    # The extension phase (goals, daily reports) ran on top of the base data, under its own meta key.
    ext = data["dataset"]["extension"]
    assert ext["complete"] is True and ext["reused"] is False and ext["version"] >= 1
    assert ext["counts"]["goal_targets"] > xs.reps and ext["counts"]["daily_reports"] > 0
    assert ext["counts"]["forecast_lines"] > 0

    expected = {(s.name, role) for s in discover().values() for role in s.roles}
    got = {(s["name"], s["role"]) for s in data["scenarios"]}
    assert got == expected
    for s in data["scenarios"]:
        assert s["status"] in ("ok", "skipped"), s
        if s["status"] == "ok":
            assert all(_number(s[k]) for k in ("median_ms", "p95_ms", "min_ms", "queries", "peak_kib")), s
            assert s["p95_ms"] >= s["median_ms"] >= s["min_ms"] and s["runs"] >= 1
    by_name = {(s["name"], s["role"]): s for s in data["scenarios"]}
    assert by_name[("audit.verify", "")]["status"] == "ok"  # the bulk-loaded change trail verifies
    for name, role in [("report.goal_generate", "director"), ("page.goal_board", "rep"),
                       ("page.forecast_accuracy", "manager"), ("page.goal_report", "director")]:
        assert by_name[(name, role)]["status"] == "ok", by_name[(name, role)]
    assert by_name[("import.run", "")]["status"] == "ok"

    duck = data["references"]["duckdb"]
    assert duck["rows"] == xs.opportunities
    assert {a["name"] for a in duck["aggregates"]} == {"pipeline_by_stage_region", "won_by_rep_month", "goal_report"}
    for a in duck["aggregates"]:
        assert a["results_equal"] is True and a["groups"] > 0 and _number(a["ratio_ours_to_duckdb"])
    bare = data["references"]["bare_endpoint"]
    assert _number(bare["ratio_ours_to_bare_time"]) and bare["ours"]["queries"] > bare["bare"]["queries"]

    tp = data["throughput"]
    assert tp["tool"] in ("wrk", "python-threads")
    assert {e["name"] for e in tp["endpoints"]} == {"api.opportunities[manager]", "api.opportunities[rep]",
                                                  "bare.opportunities"}
    for e in tp["endpoints"]:
        assert e["requests"] > 0 and e["errors"] == 0, e
    assert tp["server_errors_logged"] == 0
    assert set(tp["ratio_ours_to_bare"]) == {"api.opportunities[manager]", "api.opportunities[rep]"}

    # Second run: same fingerprint, so the dataset is reused, not generated again.
    _run(tmp_path, "--only", "audit.verify", "--no-references", "--no-throughput")
    second = [p for p in (tmp_path / "results").glob("XS-sqlite-*.json") if p != files[0]]
    assert len(second) == 1
    again = json.loads(second[0].read_text(encoding="utf-8"))
    assert again["dataset"]["reused"] is True
    assert again["dataset"]["fingerprint"] == data["dataset"]["fingerprint"]
    assert again["dataset"]["extension"]["reused"] is True
    assert [s["name"] for s in again["scenarios"]] == ["audit.verify"]
