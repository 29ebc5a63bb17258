"""No N+1: each list page and dashboard runs the same number of queries with few and with many rows."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.customers.services import contact_create, customer_create, customer_member_set
from tuijin.followups.services import activity_create
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

STAGE_CYCLE = ["qualify", "survey", "demo", "tender", "won"]


def _queries(client, url) -> int:
    client.get(url)  # warm-up: session and per-process caches
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return len(ctx.captured_queries)


class Filler:
    """Adds customers with a contact, an opportunity (spread over stages) and an activity each."""

    def __init__(self, world):
        self.world, self.done = world, 0

    def add(self, n):
        for i in range(self.done, self.done + n):
            owner = self.world.users["rep.east1" if i % 2 else "rep.east2"]
            c = customer_create(actor=owner, name=f"批量客户{i}", region="华东" if i % 3 else "华北",
                                industry=f"ind{i % 4}", allow_duplicate=True,
                                contacts=[{"name": f"联系人{i}"}])
            o = opportunity_create(actor=owner, customer=c, name=f"批量商机{i}", amount=str(1000 * (i + 1)))
            stage = self.world.stages[STAGE_CYCLE[i % len(STAGE_CYCLE)]]
            if stage.code != "qualify":
                opportunity_move_stage(actor=owner, opportunity=o, stage=stage, version=o.version)
            activity_create(actor=owner, customer=c, opportunity=o, kind="call", subject=f"电话{i}",
                            contact=c.contacts.first())
        self.done += n


PAGES = ["/customers/", "/customers/?scope=team&status=active", "/opportunities/", "/opportunities/?status=open",
         "/opportunities/kanban/", "/activities/", "/activities/?scope=mine", "/"]


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director"])
def test_list_pages_and_home_have_constant_query_counts(world, login, username):
    client = login(world.users[username])
    filler = Filler(world)
    filler.add(3)
    few = {url: _queries(client, url) for url in PAGES}
    filler.add(30)
    many = {url: _queries(client, url) for url in PAGES}
    assert few == many


def test_customer_detail_has_constant_query_count(world, login):
    owner = world.users["rep.east1"]
    customer = world.customers["rep.east1"]
    client = login(owner)
    url = f"/customers/{customer.pk}/"
    others = [u for name, u in world.users.items() if name not in ("rep.east1",)]

    def add(start, n):
        for i in range(start, start + n):
            contact_create(actor=owner, customer=customer, name=f"联系人{i}", title="科长")
            o = opportunity_create(actor=owner, customer=customer, name=f"商机{i}", amount="1000")
            activity_create(actor=owner, customer=customer, opportunity=o, kind="visit", subject=f"拜访{i}")
        customer_member_set(actor=owner, customer=customer, user=others[start % len(others)], access="read")

    add(0, 3)
    few = _queries(client, url)
    opp_url = f"/opportunities/{world.opps['rep.east1'].pk}/"
    few_opp = _queries(client, opp_url)
    add(3, 30)
    for u in others[:6]:
        customer_member_set(actor=owner, customer=customer, user=u, access="write")
    assert _queries(client, url) == few
    assert _queries(client, opp_url) == few_opp


LIST_PAGES = ["/customers/", "/customers/?scope=team&q=批量", "/opportunities/", "/opportunities/?status=open",
              "/activities/", "/activities/?scope=team"]


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director"])
def test_list_pages_stay_within_the_query_budget(world, login, username):
    """Issue 5's budget for list pages: at most 15 queries, for managers too (visible set cached per request)."""
    client = login(world.users[username])
    Filler(world).add(5)
    counts = {url: _queries(client, url) for url in LIST_PAGES}
    assert max(counts.values()) <= 15, counts
