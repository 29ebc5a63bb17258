"""REST API list scenarios: opportunity list page 1 and filtered by stage / owner, customer search."""

from __future__ import annotations

from . import BenchError, check, scenario

LIST_MS, LIST_QUERIES = 60, 15


def _list(client, url, params):
    def run():
        data = check(client.get(url, params)).json()
        if not isinstance(data.get("items"), list) or "count" not in data:
            raise BenchError(f"{url}: not a list response")
        return data

    return run


@scenario("api.opportunities.page1", title="GET /api/opportunities (page 1)", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def opportunities_page1(ctx, role):
    return _list(ctx.api(role), "/api/opportunities", {})


@scenario("api.opportunities.by_stage", title="GET /api/opportunities?stage_id=… (demo stage)",
          roles=("manager", "director"), target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def opportunities_by_stage(ctx, role):
    return _list(ctx.api(role), "/api/opportunities", {"stage_id": ctx.stage("demo").pk})


@scenario("api.opportunities.by_owner", title="GET /api/opportunities?owner_id=… (one rep)",
          roles=("manager", "director"), target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def opportunities_by_owner(ctx, role):
    return _list(ctx.api(role), "/api/opportunities", {"owner_id": ctx.rep_in_region().pk})


@scenario("api.customers.page1", title="GET /api/customers (page 1)", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def customers_page1(ctx, role):
    return _list(ctx.api(role), "/api/customers", {})


@scenario("api.customers.search", title="GET /api/customers?q=瑞康 (name search)",
          roles=("rep", "manager", "director"), target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def customers_search(ctx, role):
    return _list(ctx.api(role), "/api/customers", {"q": "瑞康"})


@scenario("api.activities.page1", title="GET /api/activities (page 1)", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES, group="api")
def activities_page1(ctx, role):
    return _list(ctx.api(role), "/api/activities", {})
