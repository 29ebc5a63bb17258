"""No N+1: the rep board, the team board and the attenuation page run the same number of queries
with few and with many reps, targets and records."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.goals.services import target_allocate
from tuijin.org.services import user_create

from ..conftest import PASSWORD
from .conftest import at, customer, deal

pytestmark = pytest.mark.django_db
ON = "?on=2026-02-14"


def _queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return len(ctx.captured_queries)


class Filler:
    """More reps in 杭州 with targets, and deals/customers of every kind the board lists."""

    def __init__(self, org, cascade):
        self.org, self.cascade, self.n = org, cascade, 0

    def add(self, n):
        org = self.org
        rep = org.users["rep.east1"]
        children = []
        for i in range(self.n, self.n + n):
            u = user_create(actor=None, username=f"rep.extra{i}", password=PASSWORD, role="rep",
                            display_name=f"新销售{i}", org_unit=org.units["hangzhou"], manager=org.users["manager.east"])
            children.append({"user": u.pk, "value": str(1000 * (i + 1))})
            deal(org, u, 100 * (i + 1), closed=dt.date(2026, 1, 5))
            c = customer(rep, grade="high_value")
            deal(org, rep, 1000 + i, closed=dt.date(2026, 1, 3 + i % 20), cust=c)
            deal(org, rep, 500 + i, stage="demo", expected=dt.date(2026, 3, 1), entered=at(dt.date(2025, 12, 1)))
            deal(org, rep, 800, closed=dt.date(2025, 9, 20))
        self.n += n
        target_allocate(actor=org.users["director"], parent=self.cascade.hangzhou, children=children)


@pytest.mark.parametrize("username, url", [
    ("rep.east1", "/goals/board/" + ON),
    ("manager.east", "/goals/team/" + ON),
    ("director", "/goals/team/" + ON),
    ("director", "KR"),
    ("manager.east", "KR"),
    ("director", "/goals/" + ON),
])
def test_goal_pages_have_constant_query_counts(cascade, org, login, username, url):
    if url == "KR":
        url = f"/goals/key-results/{cascade.kr.pk}/"
    client = login(org.users[username])
    filler = Filler(org, cascade)
    filler.add(2)
    few = _queries(client, url)
    filler.add(12)
    many = _queries(client, url)
    assert few == many
