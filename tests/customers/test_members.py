"""Team membership (团队成员) is granted only by the owner and whoever could transfer the customer (the
owner's managers, company-wide roles) — never by a team member, even one with write access. Page and API agree."""

from __future__ import annotations

import pytest

from tuijin.core.errors import Forbidden
from tuijin.customers.models import CustomerMember
from tuijin.customers.services import customer_member_remove, customer_member_set


@pytest.fixture
def shared(world):
    """rep.east1's customer with rep.east2 as a write member."""
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["rep.east2"], access="write")
    return c


def members(c) -> dict:
    return dict(CustomerMember.objects.filter(customer=c).values_list("user__username", "access"))


def test_a_write_member_cannot_grant_or_remove_membership(world, shared):
    east2, south = world.users["rep.east2"], world.users["rep.south1"]
    with pytest.raises(Forbidden):
        customer_member_set(actor=east2, customer=shared, user=south, access="write")
    with pytest.raises(Forbidden):
        customer_member_set(actor=east2, customer=shared, user=east2, access="write", until=None)
    with pytest.raises(Forbidden):
        customer_member_remove(actor=east2, customer=shared, user=east2)
    assert members(shared) == {"rep.east2": "write"}


def test_write_member_gets_403_on_api_and_page(world, shared, api_client, login):
    south = world.users["rep.south1"]
    resp = api_client(world.users["rep.east2"]).post(
        f"/api/customers/{shared.pk}/members", {"user_id": south.pk, "access": "write"}, content_type="application/json")
    assert resp.status_code == 403
    page = login(world.users["rep.east2"])
    assert page.post(f"/customers/{shared.pk}/members/add", {"user": south.pk, "access": "write"}).status_code == 403
    assert page.post(f"/customers/{shared.pk}/members/{world.users['rep.east2'].pk}/remove").status_code == 403
    detail = page.get(f"/customers/{shared.pk}/").content.decode()
    assert f"/customers/{shared.pk}/members/add" not in detail
    assert members(shared) == {"rep.east2": "write"}


@pytest.mark.parametrize("granter", ["rep.east1", "manager.east", "director"])
def test_owner_and_owners_managers_grant_on_api_and_page(world, shared, api_client, login, granter):
    south, other = world.users["rep.south1"], world.users["presales"]
    resp = api_client(world.users[granter]).post(
        f"/api/customers/{shared.pk}/members", {"user_id": south.pk, "access": "read"}, content_type="application/json")
    assert resp.status_code == 201, resp.content
    resp = login(world.users[granter]).post(f"/customers/{shared.pk}/members/add", {"user": other.pk, "access": "read"})
    assert resp.status_code == 302
    assert members(shared) == {"rep.east2": "write", "rep.south1": "read", "presales": "read"}


def test_a_manager_of_another_region_cannot_grant(world, shared, api_client):
    resp = api_client(world.users["manager.south"]).post(
        f"/api/customers/{shared.pk}/members", {"user_id": world.users["rep.south1"].pk, "access": "read"},
        content_type="application/json")
    assert resp.status_code == 404  # cannot even see the customer
    assert members(shared) == {"rep.east2": "write"}
