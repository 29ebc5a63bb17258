"""Health API and pages: row-level visibility (404 for another rep's light/alignment), manager subtree,
alignment form and API submission, missing list, and constant query counts for the lights page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.customers.services import customer_create
from tuijin.health.models import WeeklyAlignment
from tuijin.health.services import alignment_submit
from tuijin.org.services import user_create
from tuijin.pipeline.services import opportunity_create

from .conftest import MONDAY, at

BEFORE = at(MONDAY, 11)


def test_lights_api_rep_sees_own_only_and_other_reps_are_404(world, api_client):
    east1, east2, south1 = (world.users[u] for u in ["rep.east1", "rep.east2", "rep.south1"])
    client = api_client(east1)
    body = client.get("/api/health/lights").json()
    assert [i["rep"]["username"] for i in body["items"]] == ["rep.east1"]
    assert body["counts"] == {"red": 0, "yellow": 0, "green": 1}
    assert client.get(f"/api/health/lights/{east1.pk}").json()["light"] == "green"
    assert client.get(f"/api/health/lights/{east2.pk}").status_code == 404
    manager = api_client(world.users["manager.east"])
    assert sorted(i["rep"]["username"] for i in manager.get("/api/health/lights").json()["items"]) == [
        "rep.east1", "rep.east2"]
    assert manager.get(f"/api/health/lights/{south1.pk}").status_code == 404
    light = manager.get(f"/api/health/lights/{east2.pk}").json()
    records = manager.get(light["records"]).json()
    assert [o["id"] for o in records["items"]] == [world.opps["rep.east2"].pk]
    assert light["page"] == f"/health/reps/{east2.pk}/"


def test_evaluate_on_demand_is_for_managers(world, api_client):
    assert api_client(world.users["rep.east1"]).post("/api/health/lights/evaluate").status_code == 403
    resp = api_client(world.users["manager.east"]).post("/api/health/lights/evaluate")
    assert resp.status_code == 200 and resp.json()["green"] == 3


def test_alignment_api_submit_validation_and_visibility(world, api_client):
    east1 = world.users["rep.east1"]
    client = api_client(east1)
    c = world.customers["rep.east1"]
    extra = [opportunity_create(actor=east1, customer=c, name=f"推进{i}", amount="1000").pk for i in range(3)]
    bad = client.post("/api/health/alignments", {"opportunity_ids": [world.opps["rep.east1"].pk, *extra],
                                                 "departments": ["presales", "legal", "finance"]},
                      content_type="application/json")
    assert bad.status_code == 422
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "opportunity_ids"), ("body", "departments")}
    assert not WeeklyAlignment.objects.exists()
    resp = client.post("/api/health/alignments", {"opportunity_ids": extra[:2], "departments": ["presales"],
                                                  "has_blocker": True, "blocker": {"title": "需要样机"}},
                       content_type="application/json")
    assert resp.status_code == 201, resp.content
    a = resp.json()
    assert [o["id"] for o in a["opportunities"]] == extra[:2] and a["blocker_title"] == "需要样机"
    assert api_client(world.users["rep.east2"]).get(f"/api/health/alignments/{a['id']}").status_code == 404
    assert api_client(world.users["manager.south"]).get(f"/api/health/alignments/{a['id']}").status_code == 404
    assert api_client(world.users["manager.east"]).get(f"/api/health/alignments/{a['id']}").status_code == 200
    assert api_client(world.users["rep.east2"]).get("/api/health/alignments").json()["count"] == 0


def test_missing_api_for_a_manager(world, api_client):
    alignment_submit(actor=world.users["rep.east1"], opportunity_ids=[world.opps["rep.east1"].pk], now=BEFORE)
    body = api_client(world.users["manager.east"]).get("/api/health/alignments/missing?week=2026-W48").json()
    assert body["week_start"] == "2026-11-23" and body["deadline_passed"] is True
    assert (body["submitted"], body["missing"]) == (1, 1)
    assert [r["username"] for r in body["missing_reps"]] == ["rep.east2"]
    assert body["records"] == "/api/health/alignments?week=2026-11-23"
    rep_view = api_client(world.users["rep.east2"]).get("/api/health/alignments/missing?week=2026-W48").json()
    assert [r["username"] for r in rep_view["missing_reps"]] == ["rep.east2"]
    assert api_client(world.users["manager.east"]).get("/api/health/alignments/missing?week=junk").status_code == 422


def test_rep_page_and_form(world, login):
    east1 = world.users["rep.east1"]
    client = login(east1)
    html = client.get("/health/").content.decode()
    assert 'id="own-light"' in html and 'id="alignment-form"' in html and 'id="team-lights"' not in html
    assert world.opps["rep.east1"].name in html and world.opps["rep.east2"].name not in html
    resp = client.post("/health/alignments/submit", {"opportunity_ids": [world.opps["rep.east1"].pk],
                                                     "departments": ["presales", "delivery", "legal"],
                                                     "has_blocker": "no"})
    assert resp.status_code == 422
    assert "最多选择 2 个需要协同的部门" in resp.content.decode()
    resp = client.post("/health/alignments/submit", {"opportunity_ids": [world.opps["rep.east1"].pk],
                                                     "departments": ["presales"], "has_blocker": "no"})
    assert resp.status_code == 302
    assert WeeklyAlignment.objects.get(rep=east1).departments == ["presales"]
    assert 'id="alignment-submitted"' in client.get("/health/").content.decode()


def test_rep_pages_are_404_outside_the_subtree(world, login):
    east2, south1 = world.users["rep.east2"], world.users["rep.south1"]
    assert login(world.users["rep.east1"]).get(f"/health/reps/{east2.pk}/").status_code == 404
    assert login(world.users["manager.east"]).get(f"/health/reps/{south1.pk}/").status_code == 404
    resp = login(world.users["manager.east"]).get(f"/health/reps/{east2.pk}/")
    assert resp.status_code == 200 and world.opps["rep.east2"].name in resp.content.decode()


def test_manager_page_lists_the_subtree_with_alignment_status(world, login):
    alignment_submit(actor=world.users["rep.east1"], opportunity_ids=[world.opps["rep.east1"].pk])
    html = login(world.users["manager.east"]).get("/health/").content.decode()
    assert 'data-rep="rep.east1"' in html and 'data-rep="rep.east2"' in html and 'data-rep="rep.south1"' not in html


class TeamFiller:
    """More reps under manager.east, each with a customer, an opportunity and this week's alignment."""

    def __init__(self, world):
        self.world, self.n = world, 0

    def add(self, k):
        for _i in range(k):
            self.n += 1
            rep = user_create(actor=None, username=f"rep.extra{self.n}", password="x-pass-123", role="rep",
                              display_name=f"补充{self.n}", org_unit=self.world.units["shanghai_team"],
                              manager=self.world.users["manager.east"])
            c = customer_create(actor=rep, name=f"补充客户{self.n}", allow_duplicate=True)
            o = opportunity_create(actor=rep, customer=c, name=f"补充商机{self.n}", amount="1000")
            if self.n % 2:
                alignment_submit(actor=rep, opportunity_ids=[o.pk], departments=["presales"])


@pytest.mark.parametrize("url", ["/health/", "/api/health/lights", "/api/health/alignments/missing",
                                 "/api/health/alignments"])
def test_lights_page_and_api_have_constant_query_counts(world, login, url):
    client = login(world.users["manager.east"])
    filler = TeamFiller(world)

    def count():
        client.get(url)
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    filler.add(2)
    few = count()
    filler.add(12)
    assert count() == few


def test_blocker_api_escalates_to_the_direct_manager(world, api_client):
    client = api_client(world.users["rep.east1"])
    resp = client.post("/api/health/blockers", {"title": "客户要求降价15%", "opportunity_id": world.opps["rep.east1"].pk},
                       content_type="application/json")
    assert resp.status_code == 201, resp.content
    assert resp.json()["escalated_to"]["username"] == "manager.east"
    bad = client.post("/api/health/blockers", {"title": "", "opportunity_id": world.opps["rep.east2"].pk},
                      content_type="application/json")
    assert {tuple(d["loc"]) for d in bad.json()["detail"]} == {("body", "title"), ("body", "opportunity_id")}
    assert [b["title"] for b in api_client(world.users["manager.east"]).get("/api/health/blockers").json()] == [
        "客户要求降价15%"]
    assert api_client(world.users["rep.east2"]).get("/api/health/blockers").json() == []
