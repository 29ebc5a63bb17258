"""Permission matrix (SPEC P3): every role × endpoint × record owner → 200 / 201 / 403 / 404.

Expectations come from the written rules below, not from the selectors:
- a rep sees own records; a manager the records of the org subtree and reports;
- director and admin see everything;
- cross-role staff (presales, finance, ...) see only customers where they are team members,
  plus the records of those customers; a read member may read but not write;
- invisible → 404 (no existence leak), visible but not allowed → 403.
"""

import dataclasses
import datetime as dt
import inspect
import re
import sys

import pytest
from django.urls import URLResolver, get_resolver

from tests.goals.conftest import cascade  # noqa: F401  (fixture: a goal cascade with per-rep targets)
from tuijin.api import api
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Customer, CustomerMember
from tuijin.followups.models import Activity
from tuijin.org.services import user_create
from tuijin.pipeline.models import Opportunity

ACTORS = ["rep.east1", "rep.east2", "rep.south1", "manager.east", "manager.south", "director", "admin",
          "presales", "presales.member", "finance"]
OWNERS = ["rep.east1", "rep.south1"]

MANAGES = {"manager.east": {"rep.east1", "rep.east2"}, "manager.south": {"rep.south1"}}
COMPANY_WIDE = {"director", "admin"}
READ_MEMBER_OF_BOTH = {"presales.member"}


def sees(actor: str, owner: str) -> bool:
    return (actor == owner or owner in MANAGES.get(actor, set()) or actor in COMPANY_WIDE
            or actor in READ_MEMBER_OF_BOTH)


def writes(actor: str, owner: str) -> bool:
    return sees(actor, owner) and actor not in READ_MEMBER_OF_BOTH


def read_status(actor, owner):
    return 200 if sees(actor, owner) else 404


def write_status(actor, owner, ok=200):
    if not sees(actor, owner):
        return 404
    return ok if writes(actor, owner) else 403


def test_the_rules_table_is_not_trivial():
    """Sanity of the expectation table itself: each outcome occurs."""
    outcomes = {write_status(a, o) for a in ACTORS for o in OWNERS}
    assert outcomes == {200, 403, 404}
    assert not sees("rep.east2", "rep.east1") and not sees("manager.south", "rep.east1")
    assert not sees("presales", "rep.east1") and not sees("finance", "rep.south1")


@pytest.fixture
def matrix(world):
    """The world plus a presales colleague who is a read member of both records' customers."""
    member = user_create(actor=None, username="presales.member", password="pw-for-tests-1", role="presales",
                         org_unit=world.units["company"])
    world.users["presales.member"] = member
    for owner in OWNERS:
        CustomerMember.objects.create(customer=world.customers[owner], user=member, access="read")
    return world


def records(world, owner):
    c = world.customers[owner]
    return {"customer": c, "contact": c.contacts.order_by("id").first(), "opp": world.opps[owner], "activity": world.activities[owner]}


def _snapshot(world, owner):
    r = records(world, owner)
    return (
        Customer.objects.get(pk=r["customer"].pk).version,
        Opportunity.objects.get(pk=r["opp"].pk).version,
        Activity.objects.filter(customer=r["customer"]).count(),
        AuditEvent.objects.count(),
    )


READS = {
    "GET customer": "/api/customers/{customer}",
    "GET customer history": "/api/customers/{customer}/history",
    "GET members": "/api/customers/{customer}/members",
    "GET contact": "/api/contacts/{contact}",
    "GET contact history": "/api/contacts/{contact}/history",
    "GET opportunity": "/api/opportunities/{opp}",
    "GET opportunity history": "/api/opportunities/{opp}/history",
    "GET activity": "/api/activities/{activity}",
    "GET activity history": "/api/activities/{activity}/history",
}


def _url(template, r):
    return template.format(**{k: v.pk for k, v in r.items()})


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("actor", ACTORS)
def test_read_endpoints(matrix, api_client, actor, owner):
    r = records(matrix, owner)
    client = api_client(matrix.users[actor])
    got, bodies = {}, {}
    for endpoint, template in READS.items():
        resp = client.get(_url(template, r))
        got[endpoint], bodies[endpoint] = resp.status_code, resp.json()
    assert got == {endpoint: read_status(actor, owner) for endpoint in READS}
    for endpoint, status in got.items():
        if status == 404:  # the same answer as for a record that never existed
            assert bodies[endpoint] == {"detail": "Not Found"}, endpoint


WRITES = {
    "PATCH customer": ("patch", "/api/customers/{customer}", lambda w, r: {"notes": "matrix"}, 200),
    "PATCH contact": ("patch", "/api/contacts/{contact}", lambda w, r: {"title": "matrix"}, 200),
    "PATCH opportunity": ("patch", "/api/opportunities/{opp}", lambda w, r: {"amount": "123"}, 200),
    "POST stage": ("post", "/api/opportunities/{opp}/stage",
                   lambda w, r: {"stage_id": w.stages["survey"].pk, "version": r["opp"].version}, 200),
    "POST activity": ("post", "/api/activities",
                      lambda w, r: {"customer_id": r["customer"].pk, "kind": "call", "subject": "matrix"}, 201),
    "POST contact": ("post", "/api/contacts",
                     lambda w, r: {"customer_id": r["customer"].pk, "name": "矩阵联系人"}, 201),
    "POST member": ("post", "/api/customers/{customer}/members",
                    lambda w, r: {"user_id": w.users["legal"].pk, "access": "read"}, 201),
}


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("actor", ACTORS)
def test_write_endpoints(matrix, api_client, actor, owner):
    client = api_client(matrix.users[actor])
    got, expected, unchanged = {}, {}, {}
    for endpoint, (method, template, body, ok) in WRITES.items():
        r = records(matrix, owner)
        r["opp"].refresh_from_db()
        before = _snapshot(matrix, owner)
        resp = getattr(client, method)(_url(template, r), body(matrix, r), content_type="application/json")
        got[endpoint] = resp.status_code
        expected[endpoint] = write_status(actor, owner, ok)
        if expected[endpoint] != ok:  # refused writes leave no trace and change nothing
            unchanged[endpoint] = _snapshot(matrix, owner) == before
    assert got == expected
    assert all(unchanged.values()), unchanged


def test_post_opportunity_on_a_read_only_customer_is_403(matrix, api_client):
    c = matrix.customers["rep.east1"]
    resp = api_client(matrix.users["presales.member"]).post(
        "/api/opportunities", {"name": "x", "customer_id": c.pk}, content_type="application/json")
    assert resp.status_code == 403
    south = api_client(matrix.users["rep.south1"]).post(
        "/api/opportunities", {"name": "x", "customer_id": c.pk}, content_type="application/json")
    assert south.status_code == 404


def test_transfer_matrix(matrix, api_client):
    c = matrix.customers["rep.east1"]
    to = matrix.users["rep.east2"].pk
    expected = {"rep.east2": 404, "rep.south1": 404, "manager.south": 404, "presales": 404, "finance": 404,
                "presales.member": 403}
    for actor, status in expected.items():
        resp = api_client(matrix.users[actor]).post(
            "/api/customers/transfer", {"customer_ids": [c.pk], "to_user_id": to}, content_type="application/json")
        assert resp.status_code == status, actor
    c.refresh_from_db()
    assert c.owner == matrix.users["rep.east1"]


LISTS = {
    "customers": ("/api/customers", lambda r: r["customer"].pk, lambda r: r["customer"].name),
    "contacts": ("/api/contacts", lambda r: r["contact"].pk, lambda r: r["contact"].name),
    "opportunities": ("/api/opportunities", lambda r: r["opp"].pk, lambda r: r["opp"].name),
    "activities": ("/api/activities", lambda r: r["activity"].pk, lambda r: r["customer"].name),
}


@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("actor", ACTORS)
def test_lists_and_search_show_exactly_the_visible_records(matrix, api_client, actor, owner):
    r = records(matrix, owner)
    client = api_client(matrix.users[actor])
    listed, searched = {}, {}
    for kind, (url, pk_of, name_of) in LISTS.items():
        items = client.get(url, {"page_size": 200}).json()["items"]
        listed[kind] = pk_of(r) in {i["id"] for i in items}
        found = client.get(url, {"q": name_of(r), "page_size": 200}).json()
        searched[kind] = pk_of(r) in {i["id"] for i in found["items"]}
        assert found["count"] == len(found["items"]), kind  # the count does not betray hidden matches
    assert listed == {kind: sees(actor, owner) for kind in LISTS}
    assert searched == {kind: sees(actor, owner) for kind in LISTS}


@pytest.mark.parametrize("actor", ACTORS)
def test_cross_role_and_others_cannot_create_customers(matrix, api_client, actor):
    resp = api_client(matrix.users[actor]).post("/api/customers", {"name": f"{actor} 新建客户"},
                                                content_type="application/json")
    cross_role = actor in {"presales", "presales.member", "finance"}
    assert resp.status_code == (403 if cross_role else 201)


# --- ids in the path, the query string and the body: every endpoint and page (generated coverage) -------------
#
# The oracle needs no per-endpoint expectation: for an actor who must not see an object, asking with its id
# must answer exactly like asking with an id that never existed (same status, same body once the two ids and
# CSRF tokens are masked). Path ids: 404 both times; filters: the same empty/filtered result; body ids: the
# same 422/404. A positive control (GETs) checks the probe matters: someone who sees the object gets a
# different answer for it than for a missing id. Refused writes leave no audit event behind.
# test_every_id_parameter_is_in_the_matrix enumerates the URL patterns and the OpenAPI operations and fails
# when an id parameter (path, query or body) is neither probed here nor allow-listed with a reason.


MISSING = 987654321
ID_PARAM = re.compile(r"(^|_)(id|ids|pk)$|^(rep|owner|customer|opportunity|user|unit|key|row|activity|contact|"
                      r"target|report|line|objective|robot|job|member|stage|pipeline|product)s?$")
OUTSIDERS = ("rep.south1", "manager.south", "finance")
NOT_FINANCE = ("rep.south1", "manager.south", "presales")  # finance reads every forecast (docs/forecasting.md)
ADMIN_ONLY = ("rep.east1", "manager.east", "director")


@dataclasses.dataclass(frozen=True)
class Probe:
    """One request pattern; `{probe}` is the id under test, other {names} are rep.east1's objects."""

    method: str
    url: str
    probe: str  # object name, "@owner" when not rep.east1's (e.g. "opp@rep.south1")
    body: dict | None = None
    actors: tuple = OUTSIDERS  # who must not see the probed object
    control: str | None = ""  # who sees it (GET positive control); "" = its owner, None = no control
    control_with: str = ""  # the control's object when the probed one is someone else's (default: the probe)
    expect: int | None = None  # the actors' status; default 404 for a path id, 200 (filtered) for a query id


P = Probe
MATRIX: dict[tuple[str, str], Probe | tuple[Probe, ...]] = {
    # customers
    ("GET /api/customers", "owner_id"): P("GET", "/api/customers?owner_id={probe}", "user"),
    ("POST /api/customers", "owner_id"): P("POST", "/api/customers", "user", {"name": "矩阵新客户",
                                           "owner_id": "{probe}"}, actors=("rep.south1", "manager.south"),
                                           control=None),
    ("POST /api/customers/transfer", "customer_ids"): P(
        "POST", "/api/customers/transfer", "customer", {"customer_ids": ["{probe}"], "to_user_id": "{user}"},
        control=None),
    ("GET /api/customers/{customer_id}", "customer_id"): P("GET", "/api/customers/{probe}", "customer"),
    ("PATCH /api/customers/{customer_id}", "customer_id"): P("PATCH", "/api/customers/{probe}", "customer",
                                                             {"notes": "x"}, control=None),
    ("GET /api/customers/{customer_id}/history", "customer_id"): P("GET", "/api/customers/{probe}/history",
                                                                   "customer"),
    ("GET /api/customers/{customer_id}/members", "customer_id"): P("GET", "/api/customers/{probe}/members",
                                                                   "customer"),
    ("POST /api/customers/{customer_id}/members", "customer_id"): P(
        "POST", "/api/customers/{probe}/members", "customer", {"user_id": "{legal}", "access": "read"},
        control=None),
    ("DELETE /api/customers/{customer_id}/members/{user_id}", "customer_id"): P(
        "DELETE", "/api/customers/{probe}/members/{member}", "customer", control=None),
    ("GET /api/contacts", "customer_id"): P("GET", "/api/contacts?customer_id={probe}", "customer"),
    ("POST /api/contacts", "customer_id"): P("POST", "/api/contacts", "customer",
                                             {"customer_id": "{probe}", "name": "矩阵"}, control=None),
    ("GET /api/contacts/{contact_id}", "contact_id"): P("GET", "/api/contacts/{probe}", "contact"),
    ("PATCH /api/contacts/{contact_id}", "contact_id"): P("PATCH", "/api/contacts/{probe}", "contact",
                                                          {"title": "x"}, control=None),
    ("GET /api/contacts/{contact_id}/history", "contact_id"): P("GET", "/api/contacts/{probe}/history", "contact"),
    # pipeline
    ("GET /api/opportunities", "customer_id"): P("GET", "/api/opportunities?customer_id={probe}", "customer"),
    ("GET /api/opportunities", "owner_id"): P("GET", "/api/opportunities?owner_id={probe}", "user"),
    ("POST /api/opportunities", "customer_id"): P("POST", "/api/opportunities", "customer",
                                                  {"name": "矩阵", "customer_id": "{probe}"}, control=None),
    ("POST /api/opportunities", "owner_id"): P(
        "POST", "/api/opportunities", "user@rep.south1", {"name": "矩阵", "customer_id": "{customer}",
                                                         "owner_id": "{probe}"}, actors=("rep.east1",), control=None),
    ("GET /api/opportunities/{opportunity_id}", "opportunity_id"): P("GET", "/api/opportunities/{probe}", "opp"),
    ("PATCH /api/opportunities/{opportunity_id}", "opportunity_id"): P(
        "PATCH", "/api/opportunities/{probe}", "opp", {"amount": "1"}, control=None),
    ("POST /api/opportunities/{opportunity_id}/stage", "opportunity_id"): P(
        "POST", "/api/opportunities/{probe}/stage", "opp", {"stage_id": "{stage}"}, control=None),
    ("GET /api/opportunities/{opportunity_id}/history", "opportunity_id"): P(
        "GET", "/api/opportunities/{probe}/history", "opp"),
    # API tokens: only their owner lists or revokes them; no role (not even admin) reaches another's token
    ("DELETE /api/auth/tokens/{token_id}", "token_id"): P(
        "DELETE", "/api/auth/tokens/{probe}", "token", actors=(*OUTSIDERS, "manager.east", "admin"), control=None),
    # followups
    ("GET /api/activities", "customer_id"): P("GET", "/api/activities?customer_id={probe}", "customer"),
    ("GET /api/activities", "opportunity_id"): P("GET", "/api/activities?opportunity_id={probe}", "opp"),
    ("GET /api/activities", "owner_id"): P("GET", "/api/activities?owner_id={probe}", "user"),
    ("POST /api/activities", "customer_id"): P("POST", "/api/activities", "customer",
                                               {"customer_id": "{probe}", "kind": "call", "subject": "x"},
                                               control=None),
    ("POST /api/activities", "opportunity_id"): P(
        "POST", "/api/activities", "opp@rep.south1", {"customer_id": "{customer}", "opportunity_id": "{probe}",
                                                     "kind": "call", "subject": "x"}, actors=("rep.east1",),
        control=None),
    ("POST /api/activities", "contact_id"): P(
        "POST", "/api/activities", "contact@rep.south1", {"customer_id": "{customer}", "contact_id": "{probe}",
                                                         "kind": "call", "subject": "x"}, actors=("rep.east1",),
        control=None),
    ("GET /api/activities/{activity_id}", "activity_id"): P("GET", "/api/activities/{probe}", "activity"),
    ("GET /api/activities/{activity_id}/history", "activity_id"): P("GET", "/api/activities/{probe}/history",
                                                                    "activity"),
    # notify
    ("POST /api/notifications/read", "ids"): P("POST", "/api/notifications/read", "notification",
                                               {"ids": ["{probe}"]}, control=None),
    ("GET /api/notifications/{notification_id}", "notification_id"): P("GET", "/api/notifications/{probe}",
                                                                       "notification"),
    # goals
    ("GET /api/goals/targets/{target_id}", "target_id"): P("GET", "/api/goals/targets/{probe}", "target"),
    ("POST /api/goals/targets/{target_id}/allocate", "target_id"): P(
        "POST", "/api/goals/targets/{probe}/allocate", "target", {"children": []}, control=None),
    ("GET /api/goals/targets/{target_id}/records", "target_id"): P("GET", "/api/goals/targets/{probe}/records",
                                                                   "target"),
    ("GET /api/goals/boards/{user_id}", "user_id"): P("GET", "/api/goals/boards/{probe}", "user"),
    # health
    ("GET /api/health/lights/{rep_id}", "rep_id"): P("GET", "/api/health/lights/{probe}", "user",
                                                     actors=NOT_FINANCE, control="manager.east"),
    ("GET /api/health/alignments", "rep_id"): P("GET", "/api/health/alignments?rep_id={probe}", "user"),
    ("GET /api/health/alignments/{alignment_id}", "alignment_id"): P("GET", "/api/health/alignments/{probe}",
                                                                     "alignment"),
    ("POST /api/health/alignments", "opportunity_ids"): P(
        "POST", "/api/health/alignments", "opp@rep.south1", {"opportunity_ids": ["{probe}"]},
        actors=("rep.east2",), control=None),
    ("POST /api/health/alignments", "blocker_id"): P(
        "POST", "/api/health/alignments", "blocker", {"opportunity_ids": ["{opp2}"], "has_blocker": True,
                                                      "blocker_id": "{probe}"}, actors=("rep.east2",), control=None),
    ("POST /api/health/blockers", "opportunity_id"): P(
        "POST", "/api/health/blockers", "opp", {"title": "卡点", "opportunity_id": "{probe}"},
        actors=("rep.south1",), control=None),
    # forecasting
    ("GET /api/forecasts/reports", "rep_id"): P("GET", "/api/forecasts/reports?rep_id={probe}", "user",
                                                actors=NOT_FINANCE),
    ("POST /api/forecasts/reports", "lines[].opportunity_id"): P(
        "POST", "/api/forecasts/reports", "opp@rep.south1", {"date": "{yesterday2}", "lines": [
            {"opportunity_id": "{probe}", "amount": "1", "expected_sign_date": "2099-01-01",
             "confidence": "commit"}]}, actors=("rep.east1",), control=None),
    ("POST /api/forecasts/reports", "lines[].evidence_ids"): P(
        "POST", "/api/forecasts/reports", "activity@rep.south1", {"date": "{yesterday2}", "lines": [
            {"opportunity_id": "{opp}", "amount": "1", "expected_sign_date": "2099-01-01", "confidence": "commit",
             "evidence_ids": ["{probe}"]}]}, actors=("rep.east1",), control=None),
    ("GET /api/forecasts/reports/{report_id}", "report_id"): P("GET", "/api/forecasts/reports/{probe}", "report",
                                                               actors=NOT_FINANCE),
    ("PATCH /api/forecasts/reports/{report_id}", "report_id"): P(
        "PATCH", "/api/forecasts/reports/{probe}", "draft", {"summary": "x"}, actors=NOT_FINANCE, control=None),
    ("POST /api/forecasts/reports/{report_id}/submit", "report_id"): P(
        "POST", "/api/forecasts/reports/{probe}/submit", "draft", {}, actors=NOT_FINANCE, control=None),
    ("GET /api/forecasts/reports/{report_id}/history", "report_id"): P(
        "GET", "/api/forecasts/reports/{probe}/history", "report", actors=NOT_FINANCE),
    ("GET /api/forecasts/reports/{report_id}/evidence-candidates", "report_id"): P(
        "GET", "/api/forecasts/reports/{probe}/evidence-candidates?opportunity_id={opp}", "draft",
        actors=NOT_FINANCE),
    ("GET /api/forecasts/reports/{report_id}/evidence-candidates", "opportunity_id"): (P(
        "GET", "/api/forecasts/reports/{draft}/evidence-candidates?opportunity_id={probe}", "opp@rep.south1",
        actors=("rep.east1",), control="rep.east1", control_with="opp", expect=422), P(
        # Those who see the report but are not its author learn nothing either (the finance leak).
        "GET", "/api/forecasts/reports/{draft}/evidence-candidates?opportunity_id={probe}", "opp",
        actors=("finance", "manager.east", "director"), control=None, expect=403)),
    ("POST /api/forecasts/reports/{report_id}/lines", "report_id"): P(
        "POST", "/api/forecasts/reports/{probe}/lines", "draft", {"opportunity_id": "{opp}"}, actors=NOT_FINANCE,
        control=None),
    ("POST /api/forecasts/reports/{report_id}/lines", "opportunity_id"): P(
        "POST", "/api/forecasts/reports/{draft}/lines", "opp@rep.south1", {"opportunity_id": "{probe}"},
        actors=("rep.east1",), control=None),
    ("POST /api/forecasts/reports/{report_id}/lines", "evidence_ids"): P(
        "POST", "/api/forecasts/reports/{draft}/lines", "activity@rep.south1",
        {"opportunity_id": "{opp}", "amount": "1", "expected_sign_date": "2099-01-01", "confidence": "commit",
         "evidence_ids": ["{probe}"]}, actors=("rep.east1",), control=None),
    ("PATCH /api/forecasts/lines/{line_id}", "line_id"): P("PATCH", "/api/forecasts/lines/{probe}", "line",
                                                           {"amount": "2"}, actors=NOT_FINANCE, control=None),
    ("PATCH /api/forecasts/lines/{line_id}", "evidence_ids"): P(
        "PATCH", "/api/forecasts/lines/{draft_line}", "activity@rep.south1", {"evidence_ids": ["{probe}"]},
        actors=("rep.east1",), control=None),
    ("DELETE /api/forecasts/lines/{line_id}", "line_id"): P("DELETE", "/api/forecasts/lines/{probe}", "line",
                                                            actors=NOT_FINANCE, control=None),
    ("POST /api/forecasts/reports/{report_id}/corrections", "report_id"): P(
        "POST", "/api/forecasts/reports/{probe}/corrections", "report", {"reason": "x", "items": []},
        actors=NOT_FINANCE, control=None),
    ("POST /api/forecasts/reports/{report_id}/corrections", "items[].line_id"): P(
        "POST", "/api/forecasts/reports/{report2}/corrections", "line@rep.south1",
        {"reason": "x", "items": [{"line_id": "{probe}", "amount": "3"}]}, actors=("rep.east1",), control=None),
    ("GET /api/forecasts/corrections/{correction_id}", "correction_id"): P(
        "GET", "/api/forecasts/corrections/{probe}", "correction", actors=NOT_FINANCE),
    ("POST /api/forecasts/corrections/{correction_id}/approve", "correction_id"): P(
        "POST", "/api/forecasts/corrections/{probe}/approve", "correction", {}, actors=NOT_FINANCE, control=None),
    ("POST /api/forecasts/corrections/{correction_id}/reject", "correction_id"): P(
        "POST", "/api/forecasts/corrections/{probe}/reject", "correction", {"reason": "x"}, actors=NOT_FINANCE,
        control=None),
    ("GET /api/forecasts/accuracy/records", "key"): P(
        "GET", "/api/forecasts/accuracy/records?start={today}&group=rep&which=forecast&key={probe}", "user",
        actors=NOT_FINANCE, control=None),
    # pages: customers, pipeline, followups
    ("page customers", "owner_id"): P("GET", "/customers/?owner_id={probe}", "user"),
    ("page customer_detail", "pk"): P("GET", "/customers/{probe}/", "customer"),
    ("page customer_edit", "pk"): P("GET", "/customers/{probe}/edit/", "customer"),
    ("page customer_contact_new", "pk"): P("POST", "/customers/{probe}/contacts/new", "customer", {"name": "矩阵"},
                                           control=None),
    ("page customer_opportunity_new", "pk"): P("POST", "/customers/{probe}/opportunities/new", "customer",
                                               {"name": "矩阵"}, control=None),
    ("page customer_member_add", "pk"): P("POST", "/customers/{probe}/members/add", "customer",
                                          {"user": "{legal}", "access": "read"}, control=None),
    ("page customer_member_remove", "pk"): P("POST", "/customers/{probe}/members/{member}/remove", "customer",
                                             {}, control=None),
    ("page customer_member_remove", "user_id"): P("POST", "/customers/{customer}/members/{probe}/remove",
                                                  "member", {}, control=None),
    ("page customer_transfer", "pk"): P("POST", "/customers/{probe}/transfer", "customer",
                                        {"to_user": "{user}", "reason": "x"}, control=None),
    ("page opportunities", "customer"): P("GET", "/opportunities/?customer={probe}", "customer"),
    ("page opportunities", "owner_id"): P("GET", "/opportunities/?owner_id={probe}", "user"),
    ("page kanban", "owner_id"): P("GET", "/opportunities/kanban/?owner_id={probe}", "user"),
    ("page opportunity_detail", "pk"): P("GET", "/opportunities/{probe}/", "opp"),
    ("page opportunity_stage", "pk"): P("POST", "/opportunities/{probe}/stage", "opp", {"stage_id": "{stage}"},
                                        control=None),
    ("page activities", "customer"): P("GET", "/activities/?customer={probe}", "customer"),
    ("page activities", "opportunity"): P("GET", "/activities/?opportunity={probe}", "opp"),
    ("page activities", "owner_id"): P("GET", "/activities/?owner_id={probe}", "user"),
    ("page activity_new", "customer"): P("GET", "/activities/new/?customer={probe}", "customer", expect=404),
    ("page activity_new", "opportunity"): P(
        "POST", "/activities/new/", "opp@rep.south1", {"customer": "{customer}", "opportunity": "{probe}",
                                                      "kind": "call", "subject": "x"}, actors=("rep.east1",),
        control=None),
    ("page activity_new", "contact"): P(
        "POST", "/activities/new/", "contact@rep.south1", {"customer": "{customer}", "contact": "{probe}",
                                                          "kind": "call", "subject": "x"}, actors=("rep.east1",),
        control=None),
    # pages: excel (exports filter by owner), notify, goals, health
    ("page excel:export_customers", "owner_id"): P("GET", "/export/customers.xlsx?owner_id={probe}", "user",
                                                   control=None),
    ("page excel:job", "pk"): P("GET", "/import/jobs/{probe}/", "job"),
    ("GET /api/imports/{job_id}", "job_id"): P("GET", "/api/imports/{probe}", "job"),
    ("POST /api/imports/{job_id}/start", "job_id"): P("POST", "/api/imports/{probe}/start", "job", {},
                                                      control=None),
    ("GET /api/grading/rules/{rule_id}", "rule_id"): P("GET", "/api/grading/rules/{probe}", "grade_rule",
                                                       actors=ADMIN_ONLY, control="admin"),
    ("PATCH /api/grading/rules/{rule_id}", "rule_id"): P("PATCH", "/api/grading/rules/{probe}", "grade_rule",
                                                         {"name": "矩阵"}, actors=ADMIN_ONLY, control=None),
    ("page excel:job_start", "pk"): P("POST", "/import/jobs/{probe}/start", "job", {}, control=None),
    ("page excel:job_progress", "pk"): P("GET", "/import/jobs/{probe}/progress", "job"),
    ("page notify:open", "pk"): P("POST", "/notifications/{probe}/open", "notification", {}, control=None),
    ("page notify:read", "pk"): P("POST", "/notifications/{probe}/read", "notification", {}, control=None),
    ("page notify:robot_edit", "pk"): P("GET", "/notifications/robots/{probe}/edit/", "robot", actors=ADMIN_ONLY,
                                        control="admin"),
    ("page notify:robot_active", "pk"): P("POST", "/notifications/robots/{probe}/active", "robot",
                                          {"active": "0"}, actors=ADMIN_ONLY, control=None),
    ("page notify:robot_test", "pk"): P("POST", "/notifications/robots/{probe}/test", "robot", {},
                                        actors=ADMIN_ONLY, control=None),
    ("page notify:outbox", "robot"): P("GET", "/notifications/outbox/?robot={probe}", "robot", actors=ADMIN_ONLY,
                                       control=None, expect=403),
    ("page notify:outbox_retry", "pk"): P("POST", "/notifications/outbox/{probe}/retry", "outbox", {},
                                          actors=ADMIN_ONLY, control=None),
    ("page goals:allocate", "pk"): P("GET", "/goals/targets/{probe}/allocate/", "target"),
    ("page goals:board", "user_id"): P("GET", "/goals/board/{probe}/", "user"),
    ("page goals:figure_records", "pk"): P("GET", "/goals/figures/{probe}/records", "target"),
    ("page health:alignment_submit", "opportunity_ids"): P(
        "POST", "/health/alignments/submit", "opp@rep.south1", {"opportunity_ids": ["{probe}"]},
        actors=("rep.east2",), control=None),
    ("page health:alignment_submit", "blocker_id"): P(
        "POST", "/health/alignments/submit", "blocker", {"opportunity_ids": ["{opp2}"], "has_blocker": "1",
                                                         "blocker_id": "{probe}"}, actors=("rep.east2",),
        control=None),
    ("page health:grade_rule_edit", "pk"): P("GET", "/health/grading/{probe}/", "grade_rule", actors=ADMIN_ONLY,
                                             control="admin"),
    ("page health:rep", "pk"): P("GET", "/health/reps/{probe}/", "user", actors=NOT_FINANCE, control="manager.east"),
    ("page health:blocker_resolve", "pk"): P("POST", "/health/blockers/{probe}/resolve", "blocker", {},
                                             actors=NOT_FINANCE, control=None),
    # pages: forecasting
    ("page forecasting:home", "rep"): P("GET", "/forecasts/?rep={probe}", "user", actors=NOT_FINANCE),
    ("page forecasting:report_detail", "pk"): P("GET", "/forecasts/reports/{probe}/", "report", actors=NOT_FINANCE),
    ("page forecasting:report_detail", "opportunity"): P(
        "GET", "/forecasts/reports/{draft}/?opportunity={probe}", "opp@rep.south1", actors=("rep.east1",),
        control=None),  # the draft is yesterday's: no evidence to offer, so the page looks the same either way
    ("page forecasting:report_summary", "pk"): P("POST", "/forecasts/reports/{probe}/summary", "draft",
                                                 {"summary": "x"}, actors=NOT_FINANCE, control=None),
    ("page forecasting:evidence_options", "pk"): P(
        "GET", "/forecasts/reports/{probe}/evidence-options?opportunity_id={opp}", "draft", actors=NOT_FINANCE),
    ("page forecasting:evidence_options", "opportunity_id"): (P(
        "GET", "/forecasts/reports/{draft}/evidence-options?opportunity_id={probe}", "opp@rep.south1",
        actors=("rep.east1",), control="rep.east1", control_with="opp"), P(
        "GET", "/forecasts/reports/{draft}/evidence-options?opportunity_id={probe}", "opp",
        actors=("finance", "manager.east", "director"), control=None, expect=403)),
    ("page forecasting:line_add", "pk"): P("POST", "/forecasts/reports/{probe}/lines/add", "draft",
                                           {"opportunity_id": "{opp}"}, actors=NOT_FINANCE, control=None),
    ("page forecasting:line_add", "opportunity_id"): P(
        "POST", "/forecasts/reports/{draft}/lines/add", "opp@rep.south1",
        {"form": "add", "opportunity_id": "{probe}", "amount": "1", "expected_sign_date": "2099-01-01",
         "confidence": "commit"}, actors=("rep.east1",), control=None),
    ("page forecasting:line_add", "evidence_ids"): P(
        "POST", "/forecasts/reports/{draft}/lines/add", "activity@rep.south1",
        {"form": "add", "opportunity_id": "{opp}", "amount": "1", "expected_sign_date": "2099-01-01",
         "confidence": "commit", "evidence_ids": ["{probe}"]}, actors=("rep.east1",), control=None),
    ("page forecasting:line_update", "pk"): P("POST", "/forecasts/reports/{probe}/lines/{draft_line}/update",
                                              "draft", {"amount": "2"}, actors=NOT_FINANCE, control=None),
    ("page forecasting:line_update", "line_id"): P("POST", "/forecasts/reports/{draft}/lines/{probe}/update",
                                                   "line@rep.south1", {"amount": "2"}, actors=("rep.east1",),
                                                   control=None),
    ("page forecasting:line_update", "evidence_ids"): P(
        "POST", "/forecasts/reports/{draft}/lines/{draft_line}/update", "activity@rep.south1",
        {"form": "line", "evidence_present": "1", "evidence_ids": ["{probe}"]}, actors=("rep.east1",),
        control=None),
    ("page forecasting:line_remove", "pk"): P("POST", "/forecasts/reports/{probe}/lines/{draft_line}/remove",
                                              "draft", {}, actors=NOT_FINANCE, control=None),
    ("page forecasting:line_remove", "line_id"): P("POST", "/forecasts/reports/{draft}/lines/{probe}/remove",
                                                   "line@rep.south1", {}, actors=("rep.east1",), control=None),
    ("page forecasting:report_submit", "pk"): P("POST", "/forecasts/reports/{probe}/submit", "draft", {},
                                                actors=NOT_FINANCE, control=None),
    ("page forecasting:correction_new", "pk"): P("GET", "/forecasts/reports/{probe}/correction", "report",
                                                 actors=NOT_FINANCE),
    ("page forecasting:correction_approve", "pk"): P("POST", "/forecasts/corrections/{probe}/approve",
                                                     "correction", {}, actors=NOT_FINANCE, control=None),
    ("page forecasting:correction_reject", "pk"): P("POST", "/forecasts/corrections/{probe}/reject", "correction",
                                                    {"reason": "x"}, actors=NOT_FINANCE, control=None),
    ("page forecasting:accuracy_records", "key"): P(
        "GET", "/forecasts/accuracy/records?start={today}&group=rep&which=forecast&key={probe}", "user",
        actors=NOT_FINANCE, control=None),
}

GOALS_COMPANY_WIDE = ("objectives, key results and deviation reports are company-wide (every user reads them); "
                      "the figures and rows inside are filtered to the caller (tests/goals)")
# Id-like parameters that name no object a user could be denied, each with the reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("page goals:report_pdf", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:report_xlsx", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:report_records", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:report_detail", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:cascade", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:key_result_new", "pk"): GOALS_COMPANY_WIDE,
    ("page goals:objective_detail", "pk"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/reports/{report_id}/pdf", "report_id"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/reports/{report_id}/excel", "report_id"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/reports/{report_id}/records", "report_id"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/reports/{report_id}", "report_id"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/key-results/{kr_id}/attenuation", "kr_id"): GOALS_COMPANY_WIDE,
    ("POST /api/goals/objectives/{objective_id}/key-results", "objective_id"): GOALS_COMPANY_WIDE,
    ("GET /api/goals/objectives/{objective_id}", "objective_id"): GOALS_COMPANY_WIDE,
    ("*", "pipeline_id"): "pipelines and stages are the company's catalogue: every user reads them",
    ("*", "stage_id"): "pipelines and stages are the company's catalogue: every user reads them",
    ("*", "pipeline"): "pipelines and stages are the company's catalogue: every user reads them",
    ("*", "stage"): "pipelines and stages are the company's catalogue: every user reads them",
    ("*", "product_ids"): "products are the company's catalogue: every user reads them",
    ("*", "products"): "products are the company's catalogue: every user reads them",
    ("*", "contacts"): "a list of new contacts' data, not ids",
    ("*", "lines"): "a list of new forecast lines' data; its ids are probed as lines[].opportunity_id etc.",
    ("*", "target"): "a target value (an amount), not an id",
    ("*", "key_results[].target"): "a target value (an amount), not an id",
    ("POST /api/customers/transfer", "to_user_id"): "the receiving user: customers.services decides who may "
                                                     "receive (tests/customers); no customer data is named by it",
    ("POST /api/customers/{customer_id}/members", "user_id"): "anyone in the company can be made a team member "
                                                              "(presales, finance, ...): not a visibility matter",
    ("DELETE /api/customers/{customer_id}/members/{user_id}", "user_id"): "a member of the probed customer: "
                                                                           "the customer id decides visibility",
    ("POST /api/goals/targets/{target_id}/allocate", "children[].unit"): "org units are public structure; the "
                                                                          "service checks they sit under the parent",
    ("POST /api/goals/targets/{target_id}/allocate", "children[].user"): "users are the directory; the service "
                                                                          "checks they sit under the parent",
    ("GET /api/goals/reports/{report_id}/records", "row"): "a row index inside a report the caller sees; rows "
                                                           "the caller may not see are removed (visible_report_rows)",
    ("page goals:report_records", "row"): "a row index, see the API",
    ("page goals:report_records", "record_ids"): "an internal name (report_record_ids), not a parameter",
}


def _pages(patterns=None, prefix=""):
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            if str(p.pattern).startswith("api/"):
                continue  # the API is enumerated from its OpenAPI document
            ns = f"{p.namespace}:" if p.namespace else ""
            for name, route, pat in _pages(p.url_patterns, prefix + str(p.pattern)):
                yield (ns + name if name else name), route, pat
        else:
            yield p.name, prefix + str(p.pattern), p


# request.GET.get("x"), GET["x"], and core.params' parsers: id_param(request.GET, "x") etc.
VIEW_READS = re.compile(r"""(?:GET|POST|\bg|\bp|\bpost|data)\.get(?:list)?\(\s*["'](\w+)["']|(?:GET|POST)\[["'](\w+)["']\]"""
                        r"""|\b(?:id|int|date|text)_param\(\s*[\w.]+\s*,\s*["'](\w+)["']""")


def _page_params(pattern) -> set[str]:
    """Path converters, plus the request parameters the view (and its module's helpers it calls) reads."""
    view = pattern.callback
    while hasattr(view, "__wrapped__"):
        view = view.__wrapped__
    module = sys.modules[view.__module__]
    sources = [inspect.getsource(view)]
    for name in set(re.findall(r"\b(\w+)\(", sources[0])):
        helper = getattr(module, name, None)
        if inspect.isfunction(helper) and helper.__module__ == module.__name__ and helper is not view:
            sources.append(inspect.getsource(helper))
    names = set(pattern.pattern.converters)
    for src in sources:
        names |= {a or b or c for a, b, c in VIEW_READS.findall(src)}
    return names


def _api_params() -> dict[str, set[str]]:
    schema = api.get_openapi_schema()
    defs = schema["components"]["schemas"]
    out = {}

    def body_names(sc, prefix=""):
        if "$ref" in sc:
            sc = defs[sc["$ref"].rsplit("/", 1)[1]]
        for k, v in (sc.get("properties") or {}).items():
            yield prefix + k
            if v.get("type") == "array" and "$ref" in v.get("items", {}):
                yield from body_names(v["items"], f"{prefix}{k}[].")
            elif "$ref" in v:
                yield from body_names(v, f"{prefix}{k}.")

    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            names = {p["name"] for p in op.get("parameters", [])}
            body = (op.get("requestBody") or {}).get("content", {}).get("application/json")
            if body:
                names |= set(body_names(body["schema"]))
            out[f"{method.upper()} {path}"] = names
    return out


def _id_like(name: str) -> bool:
    return bool(ID_PARAM.search(name.rsplit(".", 1)[-1].replace("[]", "")))


def _covered(route: str, param: str) -> bool:
    return (route, param) in MATRIX or (route, param) in ALLOWED or ("*", param) in ALLOWED


def test_every_id_parameter_is_in_the_matrix():
    """A new endpoint or page taking an id (path, query or body) must join MATRIX or ALLOWED (with a reason)."""
    missing, stale = [], set(MATRIX) | {k for k in ALLOWED if k[0] != "*"}
    for route, names in _api_params().items():
        for name in sorted(filter(_id_like, names)):
            stale.discard((route, name))
            if not _covered(route, name):
                missing.append((route, name))
    for name, _route, pattern in _pages():
        key = f"page {name}"
        for param in sorted(filter(_id_like, _page_params(pattern))):
            stale.discard((key, param))
            if not _covered(key, param):
                missing.append((key, param))
    assert missing == [], "add these to MATRIX (or ALLOWED with a reason)"
    assert stale == set(), "these MATRIX/ALLOWED entries name no endpoint or parameter any more"


@pytest.fixture
def id_objects(matrix, cascade):  # noqa: F811
    """rep.east1's (and rep.south1's) objects of every kind an id can name, built once for all the probes."""
    from django.utils import timezone

    from tuijin.customers.models import CustomerMember, GradeRule
    from tuijin.forecasting import services as fc
    from tuijin.forecasting.models import DailyReport
    from tuijin.goals.services import report_generate
    from tuijin.health.services import alignment_submit, blocker_create
    from tuijin.integrations.excel.models import ImportJob
    from tuijin.notify.models import Notification, OutboxMessage, Robot
    from tuijin.org.services import api_token_create
    from tuijin.pipeline.services import opportunity_create

    w, users = matrix, matrix.users
    today = timezone.localdate()
    objs = {}
    for owner in ("rep.east1", "rep.south1"):
        u, c = users[owner], w.customers[owner]
        fc_line = {"opportunity_id": w.opps[owner].pk, "amount": "100000",
                   "expected_sign_date": (today + dt.timedelta(days=10)).isoformat(), "confidence": "commit",
                   "evidence_ids": [w.activities[owner].pk]}
        report = fc.report_submit(actor=u, report=fc.report_create(actor=u, summary="矩阵", lines=[fc_line]))
        objs[owner] = {"customer": c.pk, "contact": c.contacts.order_by("id").first().pk, "opp": w.opps[owner].pk,
                       "activity": w.activities[owner].pk, "user": u.pk, "report": report.pk,
                       "line": report.lines.get().pk}
    east, rep = objs["rep.east1"], users["rep.east1"]
    draft = fc.report_create(actor=rep, date=today - dt.timedelta(days=1), summary="草稿")
    opp2 = opportunity_create(actor=rep, customer=w.customers["rep.east1"], name="矩阵第二商机", amount="1")
    draft_line = fc.line_add(actor=rep, report=draft, opportunity_id=opp2.pk, amount="5", expected_sign_date=(
        today + dt.timedelta(days=10)).isoformat(), confidence="upside", evidence_ids=[])
    correction = fc.correction_request_create(actor=rep, report=DailyReport.objects.get(pk=east["report"]),
                                              reason="矩阵", items=[{"line_id": east["line"], "amount": "90000"}])
    blocker = blocker_create(actor=rep, title="矩阵卡点", opportunity_id=east["opp"])
    alignment = alignment_submit(actor=rep, opportunity_ids=[east["opp"]])
    goal_report, _created = report_generate(actor=users["director"], start=dt.date(2026, 2, 1))
    robot = Robot.objects.create(name="矩阵机器人", platform="wecom", webhook_url="https://example.invalid/hook")
    member = CustomerMember.objects.filter(customer_id=east["customer"], user=users["presales.member"]).get()
    east.update(
        draft=draft.pk, draft_line=draft_line.pk, correction=correction.pk, blocker=blocker.pk,
        alignment=alignment.pk, opp2=opp2.pk, report2=east["report"], member=member.user_id,
        legal=users["legal"].pk, stage=w.stages["survey"].pk, today=today.isoformat(),
        yesterday2=(today - dt.timedelta(days=2)).isoformat(),
        objective=cascade.objective.pk, kr=cascade.kr.pk, target=cascade.rep.pk, goal_report=goal_report.pk,
        notification=Notification.objects.create(recipient=rep, kind="matrix", title="矩阵通知",
                                                 dedupe_key="matrix").pk,
        job=ImportJob.objects.create(created_by=rep, filename="矩阵.xlsx", file_data=b"").pk,
        robot=robot.pk, grade_rule=GradeRule.objects.order_by("id").first().pk,
        token=api_token_create(user=rep, name="矩阵")[1].pk,
        outbox=OutboxMessage.objects.create(channel="robot", robot=robot, kind="matrix", subject="矩阵",
                                            dedupe_key="matrix", status="failed",
                                            next_attempt_at=timezone.now()).pk,
    )
    # east2's alignment probes reuse rep.east1's second opportunity as a visible one: give east2 its own.
    objs["rep.east2"] = {"opp": w.opps["rep.east2"].pk}
    east["opp2_east2"] = w.opps["rep.east2"].pk
    return objs


def _fill(value, ids: dict):
    if isinstance(value, str):
        if re.fullmatch(r"\{(\w+)\}", value):
            return ids[value[1:-1]]
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


CSRF = re.compile(r'(csrfmiddlewaretoken" value="|csrf-token" content="|"X-CSRFToken": ")[^"]*')


def _answer(resp, ids_to_mask) -> tuple:
    body = resp.content.decode("utf-8", "replace") if not resp.get("Content-Disposition") else "<file>"
    body = CSRF.sub(r"\1CSRF", body)
    location = resp.get("Location", "")
    for i in sorted(ids_to_mask, key=lambda v: -len(str(v))):
        body = re.sub(rf"(?<!\w){i}(?!\w)", "ID", body)
        location = re.sub(rf"(?<!\w){i}(?!\w)", "ID", location)
    return resp.status_code, location, body


def _send(client, probe: Probe, ids: dict):
    url = _fill(probe.url, ids)
    method = probe.method.lower()
    if probe.method == "GET":
        return client.get(url)
    body = _fill(probe.body or {}, ids)
    if url.startswith("/api/"):
        return getattr(client, method)(url, body, content_type="application/json")
    return client.post(url, body)


def test_an_invisible_id_answers_like_a_missing_one_everywhere(id_objects, matrix, api_client, login):
    """Every MATRIX probe: each actor who must not see the object gets the answer a nonexistent id gets."""
    clients: dict[tuple[str, bool], object] = {}

    def client(username, for_api):
        if (username, for_api) not in clients:
            user = matrix.users[username]
            clients[(username, for_api)] = api_client(user) if for_api else login(user)
        return clients[(username, for_api)]

    base = id_objects["rep.east1"]
    probes = [(key, p) for key, ps in MATRIX.items() for p in (ps if isinstance(ps, tuple) else (ps,))]
    for _key, probe in probes:  # make every client first: getting a token writes an audit event
        for actor in probe.actors + ((probe.control or probe.probe.partition("@")[2] or "rep.east1",)
                                     if probe.control is not None else ()):
            client(actor, probe.url.startswith("/api/"))
    leaks, no_control = [], []
    for key, probe in probes:
        name, _, owner = probe.probe.partition("@")
        real = id_objects[owner or "rep.east1"][name]
        for_api = probe.url.startswith("/api/")
        for actor in probe.actors:
            events = AuditEvent.objects.count()
            answers = []
            for value in (real, MISSING):
                resp = _send(client(actor, for_api), probe, {**base, "probe": value})
                answers.append(_answer(resp, {real, MISSING}))
            in_path = "{probe}" in probe.url.split("?", 1)[0]
            if answers[0] != answers[1] or answers[0][0] >= 500:
                leaks.append((key, actor, answers[0][:2], answers[1][:2]))
            elif probe.expect is not None and answers[0][0] != probe.expect:
                leaks.append((key, actor, f"expected {probe.expect}", answers[0][0]))
            elif probe.expect is None and in_path and answers[0][0] not in (403, 404):
                leaks.append((key, actor, "a path id must be 404 (403 where a role gates the page)", answers[0][0]))
            elif probe.expect is None and not in_path and probe.method == "GET" and answers[0][0] != 200:
                leaks.append((key, actor, "a filter answers 200 with the filtered (empty) result", answers[0][0]))
            elif AuditEvent.objects.count() != events:
                leaks.append((key, actor, "wrote", AuditEvent.objects.count() - events))
        if probe.control is not None and probe.method == "GET":
            viewer = probe.control or owner or "rep.east1"
            shown = base[probe.control_with] if probe.control_with else real
            seen = _answer(_send(client(viewer, for_api), probe, {**base, "probe": shown}), {shown, MISSING})
            unseen = _answer(_send(client(viewer, for_api), probe, {**base, "probe": MISSING}), {shown, MISSING})
            if seen == unseen:
                no_control.append((key, viewer))
    assert leaks == [], "an invisible id answered differently from a missing one"
    assert no_control == [], "the probe does not matter even for someone who sees the object"
