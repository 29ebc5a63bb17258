"""Permission matrix (SPEC P3): every role × endpoint × record owner → 200 / 201 / 403 / 404.

Expectations come from the written rules below, not from the selectors:
- a rep sees own records; a manager the records of the org subtree and reports;
- director and admin see everything;
- cross-role staff (presales, finance, ...) see only customers where they are team members,
  plus the records of those customers; a read member may read but not write;
- invisible → 404 (no existence leak), visible but not allowed → 403.
"""

import pytest

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
