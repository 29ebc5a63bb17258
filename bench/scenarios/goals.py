"""Goal scenarios (SPEC G4, G7): the goal boards, the monthly deviation report (generation, page, Excel, API).

The data comes from the dataset's extension phase (bench.datasets.extend): monthly targets cascaded
to every rep for the current and previous month, and last month's stored report.

Targets: the issue's "monthly deviation report ≤ 1 s" applies to generating the report (the work the
monthly job and the "generate" button do); boards and the stored report's page are pages a person opens
several times a day, so they get the funnel-page target (≤ 200 ms).
"""

from __future__ import annotations

import time

from django.db import transaction

from . import BenchError, Skip, check, scenario
from .imports import Timed

PAGE_MS = 200
REPORT_MS = 1000


def _get(client, url, params=None, *, expect: bytes | None = None):
    def run():
        resp = check(client.get(url, params or {}))
        if expect is not None and expect not in resp.content:
            raise BenchError(f"{url}: expected {expect!r} in the page")
        return resp

    return run


def _stored_report():
    from tuijin.goals.models import GoalReport

    report = GoalReport.objects.order_by("-period_start").first()
    if report is None:
        raise Skip("no stored deviation report (the dataset's extension phase stores last month's)")
    return report


@scenario("page.goal_board", title="A rep's goal board /goals/board/", roles=("rep",), target_ms=PAGE_MS)
def goal_board(ctx, role):
    return _get(ctx.page(role), "/goals/board/", expect="签约额".encode())


@scenario("page.goal_team", title="Team goal board (roll-up) /goals/team/", roles=("manager", "director"),
          target_ms=PAGE_MS)
def goal_team(ctx, role):
    return _get(ctx.page(role), "/goals/team/")


@scenario("api.goal_board", title="GET /api/goals/boards/me", roles=("rep",), target_ms=PAGE_MS, group="api")
def api_goal_board(ctx, role):
    client = ctx.api(role)

    def run():
        data = check(client.get("/api/goals/boards/me")).json()
        if not data.get("kpis"):
            raise BenchError("/api/goals/boards/me: no KPIs (the rep has targets)")
        return data

    return run


@scenario("api.goal_team", title="GET /api/goals/boards/team", roles=("manager", "director"), target_ms=PAGE_MS,
          group="api")
def api_goal_team(ctx, role):
    return _get(ctx.api(role), "/api/goals/boards/team")


@scenario("report.goal_generate", title="Monthly deviation report: generate this month's (POST /api/goals/reports)",
          roles=("director",), target_ms=REPORT_MS, group="reports")
def report_generate(ctx, role):
    """Rolled back after each run, so every run computes the report instead of returning the stored one."""
    from tuijin.goals.selectors import today

    client = ctx.api(role)
    month = today().replace(day=1).isoformat()

    def run():
        with transaction.atomic():
            start = time.perf_counter()
            resp = check(client.post("/api/goals/reports", {"start": month}, content_type="application/json"), 201)
            elapsed = time.perf_counter() - start
            transaction.set_rollback(True)
        if not resp.json().get("rows"):
            raise BenchError("generated report has no rows")
        return Timed(elapsed)

    return run


@scenario("page.goal_report", title="Monthly deviation report page (last month's, stored)",
          roles=("manager", "director"), target_ms=PAGE_MS)
def report_page(ctx, role):
    return _get(ctx.page(role), f"/goals/reports/{_stored_report().pk}/")


@scenario("page.goal_report.excel", title="Monthly deviation report: Excel export", roles=("director",),
          target_ms=REPORT_MS)
def report_excel(ctx, role):
    return _get(ctx.page(role), f"/goals/reports/{_stored_report().pk}/excel")


@scenario("api.goal_report", title="GET /api/goals/reports/{id} (last month's)", roles=("manager", "director"),
          target_ms=PAGE_MS, group="api")
def api_report(ctx, role):
    return _get(ctx.api(role), f"/api/goals/reports/{_stored_report().pk}")
