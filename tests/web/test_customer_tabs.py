"""The customer page's tab forms (contact, opportunity, team member, transfer) through their shared
validate → service → redirect path: where each success goes, and each failure back on its open tab."""

from __future__ import annotations

import re

import pytest

from tuijin.customers.models import Customer, OwnerChange
from tuijin.customers.services import customer_member_set
from tuijin.pipeline.models import Opportunity


def active_tab(body: str) -> str:
    return re.search(r'class="tab-pane fade show active" id="tab-([a-z]+)"', body).group(1)


def test_each_tab_form_redirects_to_its_destination(world, login):
    customer = world.customers["rep.east1"]
    client = login(world.users["manager.east"])
    detail = f"/customers/{customer.pk}/"
    resp = client.post(f"{detail}contacts/new", {"name": "钱主任", "mobile": "13700000009"})
    assert (resp.status_code, resp["Location"]) == (302, detail)
    resp = client.post(f"{detail}opportunities/new", {"name": "超声采购", "amount": "80000"})
    opp = Opportunity.objects.get(name="超声采购")
    assert (resp.status_code, resp["Location"]) == (302, f"/opportunities/{opp.pk}/")
    assert opp.customer == customer and opp.owner == world.users["manager.east"]
    resp = client.post(f"{detail}members/add", {"user": world.users["presales"].pk, "access": "write"})
    assert (resp.status_code, resp["Location"]) == (302, f"{detail}#members")
    # The manager still sees the customer after handing it to a rep of the team: back to the customer.
    resp = client.post(f"{detail}transfer", {"to_user": world.users["rep.east2"].pk, "old_owner_access": "read"})
    assert (resp.status_code, resp["Location"]) == (302, detail)
    # A rep handing over to a peer loses sight of it: back to the list.
    own = world.customers["rep.east2"]
    rep = login(world.users["rep.east2"])
    resp = rep.post(f"/customers/{own.pk}/transfer", {"to_user": world.users["rep.south1"].pk,
                                                       "old_owner_access": "read"})
    assert (resp.status_code, resp["Location"]) == (302, "/customers/")
    assert Customer.objects.get(pk=own.pk).owner == world.users["rep.south1"]


@pytest.mark.parametrize(
    "path, data, tab, message",
    [
        ("contacts/new", {"name": "孙", "mobile": "12345"}, "contacts", "手机号应为以1开头的11位数字"),
        ("opportunities/new", {"name": "", "amount": "1"}, "opportunities", None),
        ("members/add", {"user": "", "access": "read"}, "members", None),
        ("transfer", {"to_user": "", "old_owner_access": "read"}, "transfer", None),
    ],
)
def test_bad_input_comes_back_on_the_open_tab_and_writes_nothing(world, login, path, data, tab, message):
    customer = world.customers["rep.east1"]
    before = (customer.contacts.count(), Opportunity.objects.count(), customer.members.count())
    resp = login(world.users["manager.east"]).post(f"/customers/{customer.pk}/{path}", data)
    body = resp.content.decode()
    assert resp.status_code == 422
    assert active_tab(body) == tab
    assert "is-invalid" in body or "invalid-feedback" in body or "alert-danger" in body
    if message:
        assert message in body
    assert (customer.contacts.count(), Opportunity.objects.count(), customer.members.count()) == before


def test_transfer_to_a_deactivated_user_is_a_form_error_not_a_404(world, login):
    customer = world.customers["rep.east1"]
    target = world.users["rep.east2"]
    target.is_active = False
    target.save(update_fields=["is_active"])
    resp = login(world.users["manager.east"]).post(
        f"/customers/{customer.pk}/transfer", {"to_user": target.pk, "old_owner_access": "read"})
    assert resp.status_code == 422
    assert active_tab(resp.content.decode()) == "transfer"
    assert Customer.objects.get(pk=customer.pk).owner == world.users["rep.east1"]
    assert not OwnerChange.objects.exists()


def test_read_only_member_adding_a_member_gets_403_and_writes_nothing(world, login):
    customer = world.customers["rep.east1"]
    # The form is fine; the service refuses a read-only member (Forbidden → 403 page).
    presales = world.users["presales"]
    customer_member_set(actor=world.users["rep.east1"], customer=customer, user=presales, access="read")
    resp = login(presales).post(f"/customers/{customer.pk}/members/add",
                                {"user": world.users["finance"].pk, "access": "read"})
    assert resp.status_code == 403
    assert not customer.members.filter(user=world.users["finance"]).exists()


def test_new_customer_page_flags_a_contact_mobile_already_on_file(world, login):
    # world's rep.east1 customer has a contact with mobile 13800000000; rep.south1 cannot see it.
    existing = world.customers["rep.east1"]
    mobile = existing.contacts.get().mobile
    client = login(world.users["rep.south1"])
    data = {"name": "另一家医院", "status": "active", "contact_name": "周", "contact_mobile": f"+86 {mobile}"}
    resp = client.post("/customers/new/", data)
    body = resp.content.decode()
    assert resp.status_code == 422 and 'id="duplicate-warning"' in body
    # Not visible to rep.south1: only that it exists and its owner, not its name (no reverse lookup).
    assert existing.name not in body and world.users["rep.east1"].label in body
    assert mobile not in body.replace(f"+86 {mobile}", "")  # only the typed value, no details of theirs
    assert not Customer.objects.filter(name="另一家医院").exists()
    assert client.post("/customers/new/", {**data, "allow_duplicate": "on"}).status_code == 302
