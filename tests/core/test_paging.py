"""Capped counts and the large-list query shapes (core.paging, issue 5 at scale M).

The cap is lowered so that "large" happens with a few dozen rows; the same code paths run at
10,000+ rows in the benchmark. The alternative query shapes (walking the sort index) must return
exactly the rows of the normal shape, in the same order, on both databases.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tuijin.core import paging
from tuijin.customers.services import customer_create
from tuijin.followups.selectors import activity_list
from tuijin.followups.services import activity_create
from tuijin.pipeline import selectors as pipeline_selectors
from tuijin.pipeline.selectors import kanban_columns
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage


def _activities(world, n):
    """n activities spread over reps (and a customer the manager only sees through the rep)."""
    base = timezone.now() - dt.timedelta(days=30)
    reps = ["rep.east1", "rep.east2", "rep.south1"]
    for i in range(n):
        username = reps[i % 3]
        activity_create(actor=world.users[username], customer=world.customers[username], kind="call",
                        subject=f"电话{i}", occurred_at=base + dt.timedelta(hours=i % 7, minutes=i))


def test_capped_count_is_exact_below_the_cap_and_flags_above(world, monkeypatch):
    _activities(world, 12)
    qs = activity_list(user=world.users["director"])
    n = qs.count()
    assert paging.capped_count(qs, cap=n) == (n, False)
    assert paging.capped_count(qs, cap=n - 1) == (n - 1, True)
    monkeypatch.setattr(paging, "COUNT_CAP", 5)
    assert paging.capped_count(qs) == (5, True)


@pytest.mark.parametrize("username", ["manager.east", "rep.east1", "director"])
def test_walking_the_time_index_returns_the_same_rows_in_the_same_order(world, username):
    _activities(world, 40)
    user = world.users[username]
    normal = list(activity_list(user=user).values_list("id", flat=True))
    walked = list(activity_list(user=user, walk_time_index=True).values_list("id", flat=True))
    assert normal == walked and len(normal) >= 14
    # Filters combine with it the same way.
    normal_f = list(activity_list(user=user, kind="call", owner_id=world.users["rep.east1"].pk).values_list("id", flat=True))
    walked_f = list(activity_list(user=user, kind="call", owner_id=world.users["rep.east1"].pk,
                                  walk_time_index=True).values_list("id", flat=True))
    assert normal_f == walked_f


def test_activity_page_and_api_say_when_the_count_is_capped(world, login, api_client, monkeypatch):
    _activities(world, 60)
    mgr = world.users["manager.east"]
    visible = activity_list(user=mgr).count()
    monkeypatch.setattr(paging, "COUNT_CAP", visible - 3)
    page = login(mgr).get("/activities/")
    html = page.content.decode()
    assert page.status_code == 200
    assert f"超过 {visible - 3} 条" in html and f"共 {visible} 条" not in html
    first_ids = list(activity_list(user=mgr).values_list("id", flat=True)[:25])
    # The page shows the newest activities, in order (the generated subjects are unique).
    subjects = [s for s in activity_list(user=mgr).values_list("subject", flat=True)[:25] if s.startswith("电话")]
    assert len(subjects) >= 15
    positions = [html.find(f">{s}<") for s in subjects]
    assert -1 not in positions, [s for s, p in zip(subjects, positions, strict=True) if p == -1]
    assert html.count('<td data-label="记录人">') == 25  # a full page
    assert positions == sorted(positions)
    body = api_client(mgr).get("/api/activities", {"page_size": 10}).json()
    assert body["count"] == visible - 3 and body["count_capped"] is True
    assert [a["id"] for a in body["items"]] == first_ids[:10]
    monkeypatch.setattr(paging, "COUNT_CAP", visible)
    body = api_client(mgr).get("/api/activities", {"page_size": 10}).json()
    assert body["count"] == visible and body["count_capped"] is False
    assert f"共 {visible} 条" in login(mgr).get("/activities/").content.decode()


def test_kanban_cards_are_the_same_whichever_query_shape_fetches_them(world, monkeypatch):
    stages = [world.stages[c] for c in ("qualify", "survey", "demo")]
    for i in range(24):
        username = ["rep.east1", "rep.east2", "rep.south1"][i % 3]
        c = customer_create(actor=world.users[username], name=f"看板客户{i}", allow_duplicate=True)
        o = opportunity_create(actor=world.users[username], customer=c, name=f"看板商机{i}", amount=str(1000 + i))
        if stages[i % 3].code != "qualify":
            opportunity_move_stage(actor=world.users[username], opportunity=o, stage=stages[i % 3], version=o.version)
    for username in ("manager.east", "director", "rep.east1"):
        user = world.users[username]
        monkeypatch.setattr(pipeline_selectors, "KANBAN_WALK_ABOVE", 10**9)
        normal = kanban_columns(user=user, pipeline=world.pipeline, per_column=4)
        monkeypatch.setattr(pipeline_selectors, "KANBAN_WALK_ABOVE", 0)
        walked = kanban_columns(user=user, pipeline=world.pipeline, per_column=4)
        shape = [([c.pk for c in col["cards"]], col["count"], col["total"]) for col in normal]
        assert shape == [([c.pk for c in col["cards"]], col["count"], col["total"]) for col in walked]
        assert sum(len(col["cards"]) for col in normal) > 0
        # Cards are the newest per stage, counts are every visible one.
        for col in normal:
            assert len(col["cards"]) == min(col["count"], 4)


@pytest.mark.parametrize("username", ["manager.east", "rep.east1", "director"])
def test_opportunity_list_walk_shape_returns_the_same_rows(world, username):
    from tuijin.pipeline.selectors import opportunity_list

    for i in range(18):
        owner = world.users[["rep.east1", "rep.east2", "rep.south1"][i % 3]]
        c = customer_create(actor=owner, name=f"列表客户{i}", allow_duplicate=True)
        opportunity_create(actor=owner, customer=c, name=f"列表商机{i}", amount=str(500 * (i + 1)))
    user = world.users[username]
    for order in ("-updated_at", "-amount"):
        for status in ("", "open"):
            normal = list(opportunity_list(user=user, order=order, status=status).values_list("id", flat=True))
            walked = list(opportunity_list(user=user, order=order, status=status, walk_sort_index=True)
                          .values_list("id", flat=True))
            assert normal == walked and normal
