"""Evidence candidates (the follow-ups a line may cite) are for the report's author only and never leak.

Before the fix the candidates were computed with the author's visibility for anyone who could see the
report: finance (who sees every report) read the follow-ups of customers it cannot see, and a 422-vs-200
difference told any caller which opportunities were open.
"""

from __future__ import annotations

from tuijin.forecasting import services
from tuijin.pipeline.services import opportunity_move_stage

from .helpers import evidence, new_customer, open_deal

API = "/api/forecasts/reports/{}/evidence-candidates"
PAGE = "/forecasts/reports/{}/evidence-options"


def _draft(world):
    """rep.east1's draft report; the rep has a citable follow-up on the world's opportunity's customer."""
    return services.report_create(actor=world.users["rep.east1"], summary="今天")


def test_only_the_author_gets_candidates_others_403_or_404(world, api_client, login):
    report = _draft(world)
    opp = world.opps["rep.east1"]
    mine = world.activities["rep.east1"]
    author = api_client(world.users["rep.east1"])
    assert [a["id"] for a in author.get(API.format(report.pk), {"opportunity_id": opp.pk}).json()] == [mine.pk]
    page = login(world.users["rep.east1"]).get(PAGE.format(report.pk), {"opportunity_id": opp.pk})
    assert page.status_code == 200 and f'value="{mine.pk}"' in page.content.decode()
    # finance and the manager see the report (403: visible, not allowed); the others do not see it (404).
    expected = {"finance": 403, "manager.east": 403, "director": 403, "admin": 403,
                "manager.south": 404, "rep.east2": 404, "rep.south1": 404, "presales": 404}
    got_api, got_page = {}, {}
    for username in expected:
        resp = api_client(world.users[username]).get(API.format(report.pk), {"opportunity_id": opp.pk})
        got_api[username] = resp.status_code
        assert str(mine.conclusion) not in resp.content.decode(), username
        page = login(world.users[username]).get(PAGE.format(report.pk), {"opportunity_id": opp.pk})
        got_page[username] = page.status_code
        assert f'value="{mine.pk}"' not in page.content.decode(), username
    assert got_api == expected
    assert got_page == expected


def test_finance_cannot_read_follow_ups_of_customers_it_cannot_see(world, api_client):
    """The reported leak: finance looping over reps' reports read their customers' follow-ups."""
    report = _draft(world)
    finance = api_client(world.users["finance"])
    for opp_id in (world.opps["rep.east1"].pk, world.opps["rep.south1"].pk, 10**9):
        resp = finance.get(API.format(report.pk), {"opportunity_id": opp_id})
        assert resp.status_code == 403, resp.content
        assert "需求确认" not in resp.content.decode()


def test_an_opportunity_that_cannot_be_cited_answers_like_a_missing_one(world, api_client, login):
    """Missing, someone else's (invisible), or closed: one and the same answer, so nothing is revealed."""
    report = _draft(world)
    rep = world.users["rep.east1"]
    closed = open_deal(world, "rep.east1", world.customers["rep.east1"], name="已输单")
    opportunity_move_stage(actor=rep, opportunity=closed, stage=world.stages["lost"], version=closed.version,
                           loss_reason="quote_delay")
    cases = {"missing": 10**9, "invisible": world.opps["rep.south1"].pk,
             "colleague's": world.opps["rep.east2"].pk, "closed": closed.pk, "garbage": 2**70}
    api, page = api_client(rep), login(rep)
    answers = {name: (r.status_code, r.json()) for name, r in
               ((n, api.get(API.format(report.pk), {"opportunity_id": v})) for n, v in cases.items() if n != "garbage")}
    assert {s for s, _b in answers.values()} == {422}
    assert len({str(b) for _s, b in answers.values()}) == 1, answers
    pages = {name: page.get(PAGE.format(report.pk), {"opportunity_id": v}) for name, v in cases.items()}
    assert {r.status_code for r in pages.values()} == {200}
    assert len({r.content for r in pages.values()}) == 1


def test_author_candidates_stay_within_what_the_author_sees(world, api_client):
    """A colleague's follow-up on a customer the author cannot see never shows, even for a shared customer id."""
    report = _draft(world)
    other = new_customer(world, "rep.south1", "华南私立医院")
    hidden = evidence(world, "rep.south1", other, conclusion="南区机密结论")
    own = open_deal(world, "rep.east1", world.customers["rep.east1"], name="第二个商机")
    resp = api_client(world.users["rep.east1"]).get(API.format(report.pk), {"opportunity_id": own.pk})
    assert resp.status_code == 200
    ids = {a["id"] for a in resp.json()}
    assert hidden.pk not in ids and world.activities["rep.east1"].pk in ids
