"""Row-level visibility of customers and contacts (SPEC P3), search, scopes and the duplicate finder."""

import datetime as dt

import pytest
from django.http import Http404
from django.utils import timezone

from tuijin.customers.models import CustomerMember
from tuijin.customers.selectors import (
    contact_get,
    contact_list,
    customer_can_transfer,
    customer_can_write,
    customer_get,
    customer_list,
    duplicates_find,
)
from tuijin.customers.services import customer_member_set

ALL_OWNERS = {"rep.east1", "rep.east2", "rep.south1", "manager.east"}
# Whose customers each role sees, from the rules: own / subtree + reports / company / membership only.
EXPECTED_VISIBLE = {
    "rep.east1": {"rep.east1"},
    "rep.east2": {"rep.east2"},
    "rep.south1": {"rep.south1"},
    "manager.east": {"rep.east1", "rep.east2", "manager.east"},
    "manager.south": {"rep.south1"},
    "director": ALL_OWNERS,
    "admin": ALL_OWNERS,
    "finance": set(),
    "legal": set(),
    "presales": set(),
    "delivery": set(),
}


@pytest.mark.parametrize("username", sorted(EXPECTED_VISIBLE))
def test_each_role_sees_exactly_the_customers_the_rules_allow(world, username):
    seen = {c.pk for c in customer_list(user=world.users[username])}
    assert seen == {world.customers[o].pk for o in EXPECTED_VISIBLE[username]}


@pytest.mark.parametrize("username", sorted(EXPECTED_VISIBLE))
def test_contacts_follow_customer_visibility(world, username):
    seen = {c.customer_id for c in contact_list(user=world.users[username])}
    assert seen == {world.customers[o].pk for o in EXPECTED_VISIBLE[username]}


def test_invisible_customer_and_contact_raise_404(world):
    c = world.customers["rep.south1"]
    with pytest.raises(Http404):
        customer_get(user=world.users["rep.east1"], pk=c.pk)
    with pytest.raises(Http404):
        contact_get(user=world.users["manager.east"], pk=c.contacts.get().pk)
    with pytest.raises(Http404):
        customer_get(user=world.users["rep.east1"], pk="not-a-number")


def test_membership_grants_visibility_until_its_end_date(world):
    c = world.customers["rep.south1"]
    presales = world.users["presales"]
    m = customer_member_set(actor=world.users["rep.south1"], customer=c, user=presales, access="read",
                            until=timezone.localdate())
    assert customer_get(user=presales, pk=c.pk) == c
    assert contact_get(user=presales, pk=c.contacts.get().pk).customer_id == c.pk
    CustomerMember.objects.filter(pk=m.pk).update(until=timezone.localdate() - dt.timedelta(days=1))
    with pytest.raises(Http404):
        customer_get(user=presales, pk=c.pk)
    assert not contact_list(user=presales).exists()


def test_inactive_user_sees_nothing(world):
    rep = world.users["rep.east1"]
    rep.is_active = False
    assert not customer_list(user=rep).exists()


def test_scopes_mine_shared_team(world):
    mgr = world.users["manager.east"]
    south = world.customers["rep.south1"]
    customer_member_set(actor=world.users["rep.south1"], customer=south, user=mgr, access="read")
    names = lambda scope: {c.name for c in customer_list(user=mgr, scope=scope)}  # noqa: E731
    assert names("mine") == {world.customers["manager.east"].name}
    assert names("shared") == {south.name}
    assert names("team") == {world.customers["rep.east1"].name, world.customers["rep.east2"].name}
    assert names("") == names("mine") | names("shared") | names("team")


def test_director_team_scope_is_everyone_but_self(world):
    names = {c.name for c in customer_list(user=world.users["director"], scope="team")}
    assert names == {world.customers[o].name for o in ALL_OWNERS}


def test_search_by_name_phone_and_credit_code(world):
    from tuijin.customers.services import customer_create

    rep = world.users["rep.east1"]
    target = customer_create(actor=rep, name="上海联影医疗科技股份有限公司", phone="021-64370045",
                             credit_code="91350100M000100Y43")
    for q in ["联影", "上海联影医疗科技（股份）公司", "+86 21 6437 0045", "6437", "91350100m000100y43"]:
        assert [c.pk for c in customer_list(user=rep, q=q)] == [target.pk], q
    assert not customer_list(user=rep, q="不存在的客户").exists()


def test_search_never_reaches_invisible_customers(world):
    south = world.customers["rep.south1"]
    assert not customer_list(user=world.users["rep.east1"], q=south.name).exists()
    assert not customer_list(user=world.users["rep.east1"], q=south.phone).exists()
    assert not contact_list(user=world.users["rep.east1"], q=south.contacts.get().name).exists()


def test_status_region_and_owner_filters(world):
    director = world.users["director"]
    assert {c.region for c in customer_list(user=director, region="华南")} == {"华南"}
    assert customer_list(user=director, status="lead").count() == 0
    assert customer_list(user=director, status="active").count() == 4
    assert [c.owner.username for c in customer_list(user=director, owner_id=world.users["rep.east2"].pk)] == [
        "rep.east2"]


def test_unknown_order_falls_back_to_default(world):
    qs = customer_list(user=world.users["director"], order="owner__password")
    assert qs.query.order_by == ("-updated_at", "-id")
    assert [c.name for c in customer_list(user=world.users["director"], order="name")] == sorted(
        c.name for c in customer_list(user=world.users["director"]))


def test_write_and_transfer_rights(world):
    c = world.customers["rep.east1"]
    u = world.users
    customer_member_set(actor=u["rep.east1"], customer=c, user=u["rep.east2"], access="read")
    customer_member_set(actor=u["rep.east1"], customer=c, user=u["presales"], access="write")
    can_write = {name: customer_can_write(user=u[name], customer=c) for name in u}
    assert can_write == {
        "admin": True, "director": True, "manager.east": True, "rep.east1": True,
        "rep.east2": False, "manager.south": False, "rep.south1": False,
        "finance": False, "legal": False, "presales": True, "delivery": False,
    }
    can_transfer = {name for name in u if customer_can_transfer(user=u[name], customer=c)}
    assert can_transfer == {"admin", "director", "manager.east", "rep.east1"}


def test_duplicates_find_exposes_only_name_owner_and_matched_fields(world):
    c = world.customers["rep.south1"]
    matches = duplicates_find(name=c.name, phone=c.contacts.get().mobile)
    assert len(matches) == 1
    assert set(matches[0]) == {"id", "name", "owner", "matched"}
    assert (matches[0]["id"], matches[0]["owner"]) == (c.pk, world.users["rep.south1"].label)
    assert "name" in matches[0]["matched"]
    assert duplicates_find(phone=c.contacts.get().mobile)[0]["matched"] == ["phone"]
    assert duplicates_find(name=c.name, exclude_id=c.pk) == []
    assert duplicates_find() == []
