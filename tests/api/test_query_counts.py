"""List endpoints run a constant number of queries, whatever the page holds (no N+1)."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.customers.services import contact_create, customer_create
from tuijin.followups.services import activity_create
from tuijin.pipeline.services import opportunity_create

LISTS = ["/api/customers", "/api/opportunities", "/api/activities", "/api/contacts"]


def seed(org, n, start=0):
    """n customers owned by reps under manager.east, each with a contact, opportunity and activity."""
    reps = [org.users["rep.east1"], org.users["rep.east2"]]
    for i in range(start, start + n):
        rep = reps[i % 2]
        c = customer_create(actor=rep, name=f"查询计数客户{i:03d}", industry="hospital_private",
                            allow_duplicate=True)
        contact = contact_create(actor=rep, customer=c, name=f"联系人{i}", mobile=f"139{i:08d}")
        o = opportunity_create(actor=rep, customer=c, name=f"商机{i}", amount="1000",
                               expected_close_date=dt.date(2027, 1, 1))
        activity_create(actor=rep, customer=c, opportunity=o, contact=contact, kind="call", subject=f"电话{i}")


def count_queries(client, url):
    client.get(url, {"page_size": 100})  # warm-up: token "last used" touch, session, etc.
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url, {"page_size": 100})
    assert resp.status_code == 200
    return len(ctx.captured_queries), resp.json()["count"]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director", "presales"])
def test_list_query_count_does_not_grow_with_rows(org, api_client, url, username):
    client = api_client(org.users[username])
    if username == "presales":
        from tuijin.customers.models import Customer, CustomerMember

        seed(org, 3)
        CustomerMember.objects.bulk_create(
            [CustomerMember(customer=c, user=org.users["presales"]) for c in Customer.objects.all()])
        few, n_few = count_queries(client, url)
        seed(org, 37, start=3)
        CustomerMember.objects.bulk_create(
            [CustomerMember(customer=c, user=org.users["presales"])
             for c in Customer.objects.exclude(members__user=org.users["presales"])])
    else:
        seed(org, 3)
        few, n_few = count_queries(client, url)
        seed(org, 37, start=3)
    many, n_many = count_queries(client, url)
    assert n_many > n_few  # the second measurement really returned more rows
    assert many == few, f"{url} as {username}: {few} queries for {n_few} rows, {many} for {n_many}"
