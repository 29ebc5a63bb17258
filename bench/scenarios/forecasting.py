"""Forecast accuracy scenarios (SPEC R4): the accuracy page and endpoint, weekly (the default 12 weeks)
and monthly, over the daily reports of the dataset's extension phase (8 weeks of reports for every rep).

Target: ≤ 200 ms (a page a manager opens on demand, like the funnel pages).
"""

from __future__ import annotations

from . import BenchError, check, scenario

PAGE_MS = 200


@scenario("page.forecast_accuracy",
          title="Forecast accuracy page /forecasts/accuracy/ (12 weeks; default rows: reps for a manager, "
                "regions for a director)",
          roles=("manager", "director"), target_ms=PAGE_MS)
def accuracy_page(ctx, role):
    client = ctx.page(role)
    return lambda: check(client.get("/forecasts/accuracy/"))


@scenario("page.forecast_accuracy.by_rep", title="Forecast accuracy page, every visible rep × 12 weeks",
          roles=("director",), target_ms=PAGE_MS)
def accuracy_page_by_rep(ctx, role):
    client = ctx.page(role)
    return lambda: check(client.get("/forecasts/accuracy/", {"group": "rep"}))


@scenario("page.forecast_accuracy.team_month", title="Forecast accuracy page, by team per month",
          roles=("director",), target_ms=PAGE_MS)
def accuracy_page_month(ctx, role):
    client = ctx.page(role)
    return lambda: check(client.get("/forecasts/accuracy/", {"period": "month", "group": "team"}))


@scenario("api.forecast_accuracy", title="GET /api/forecasts/accuracy (12 weeks, by rep)",
          roles=("manager", "director"), target_ms=PAGE_MS, group="api")
def accuracy_api(ctx, role):
    client = ctx.api(role)

    def run():
        data = check(client.get("/api/forecasts/accuracy")).json()
        if not data.get("rows"):
            raise BenchError("/api/forecasts/accuracy: no rows (the dataset has 8 weeks of reports)")
        return data

    return run
