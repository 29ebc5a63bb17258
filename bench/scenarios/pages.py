"""Page scenarios (server-rendered HTML, as a logged-in browser gets them)."""

from __future__ import annotations

from . import check, scenario

LIST_MS, LIST_QUERIES = 60, 15
FUNNEL_MS = 200  # the target for funnel/conversion pages: the home page and Kanban are pipeline views


def _get(client, url, params=None):
    def run():
        return check(client.get(url, params or {}))

    return run


@scenario("page.customers", title="Customer list page /customers/", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES)
def customers(ctx, role):
    return _get(ctx.page(role), "/customers/")


@scenario("page.customers.search", title="Customer search /customers/?q=瑞康", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES)
def customers_search(ctx, role):
    return _get(ctx.page(role), "/customers/", {"q": "瑞康"})


@scenario("page.opportunities", title="Opportunity list page /opportunities/", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES)
def opportunities(ctx, role):
    return _get(ctx.page(role), "/opportunities/")


@scenario("page.activities", title="Activity list page /activities/", roles=("rep", "manager", "director"),
          target_ms=LIST_MS, target_queries=LIST_QUERIES)
def activities(ctx, role):
    return _get(ctx.page(role), "/activities/")


@scenario("page.kanban", title="Kanban board /opportunities/kanban/", roles=("rep", "manager", "director"),
          target_ms=FUNNEL_MS)
def kanban(ctx, role):
    return _get(ctx.page(role), "/opportunities/kanban/")


@scenario("page.customer_detail", title="Customer detail page (the rep's busiest customer)", roles=("rep",),
          target_ms=LIST_MS)
def customer_detail(ctx, role):
    return _get(ctx.page(role), f"/customers/{ctx.rep_customer().pk}/")


@scenario("page.home", title="Home page / workbench (工作台)", roles=("rep", "manager", "director"),
          target_ms=FUNNEL_MS)
def home(ctx, role):
    return _get(ctx.page(role), "/")
