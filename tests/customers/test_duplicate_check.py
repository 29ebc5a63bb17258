"""/api/customers/duplicates is not a reverse lookup: rate-limited per user, and a customer the caller
cannot see shows only that it exists and its owner's display name (security review)."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.integrations.helpers import credit_code
from tuijin.customers import api as customers_api
from tuijin.customers.models import Customer
from tuijin.customers.services import DuplicateFound, customer_create


def check(client, **params):
    return client.get("/api/customers/duplicates", params)


def test_a_rep_probing_another_reps_mobile_learns_only_that_it_exists_and_the_owner(world, api_client):
    south = world.customers["rep.south1"]
    mobile = south.contacts.get().mobile
    resp = check(api_client(world.users["rep.east1"]), phone=mobile)
    assert resp.status_code == 200
    (match,) = resp.json()
    assert match == {"id": None, "name": None, "owner": world.users["rep.south1"].label, "matched": ["phone"]}
    for secret in [south.name, str(south.pk), mobile, south.phone]:
        assert secret not in resp.content.decode()


def test_by_credit_code_too(world, api_client):
    code = credit_code(4242)
    c = customer_create(actor=world.users["rep.south1"], name="信用代码探测医院", credit_code=code)
    (match,) = check(api_client(world.users["rep.east1"]), credit_code=code).json()
    assert (match["id"], match["name"], match["matched"]) == (None, None, ["credit_code"])
    # The owner (and the owner's managers) see which customer it is, with its link.
    for viewer in ["rep.south1", "manager.south", "director"]:
        (match,) = check(api_client(world.users[viewer]), credit_code=code).json()
        assert (match["id"], match["name"]) == (c.pk, "信用代码探测医院"), viewer


def test_creating_a_duplicate_of_an_invisible_customer_does_not_reveal_its_name(world):
    south = world.customers["rep.south1"]
    with pytest.raises(DuplicateFound) as exc:
        customer_create(actor=world.users["rep.east1"], name="别的名字", contacts=[
            {"name": "探", "mobile": south.contacts.get().mobile}])
    text = " ".join(m for ms in exc.value.errors.values() for m in ms)
    assert world.users["rep.south1"].label in text and south.name not in text
    assert exc.value.matches[0]["id"] is None
    assert not Customer.objects.filter(name="别的名字").exists()


def test_the_page_warning_shows_the_owner_but_not_the_name(world, login):
    south = world.customers["rep.south1"]
    resp = login(world.users["rep.east1"]).post("/customers/new/", {
        "name": "页面探测医院", "status": "active", "contact_name": "探", "contact_mobile": south.contacts.get().mobile})
    assert resp.status_code == 422
    page = resp.content.decode()
    assert world.users["rep.south1"].label in page and south.name not in page


def test_duplicate_checks_are_rate_limited_per_user(world, api_client, settings, monkeypatch):
    settings.TUIJIN_DUPLICATE_CHECKS_PER_MINUTE = 3
    cache.clear()  # the counters live in the cache, shared by every test in this process
    minute = [1_800_000_000.0]
    monkeypatch.setattr(customers_api, "_clock", lambda: minute[0])
    east1, east2 = api_client(world.users["rep.east1"]), api_client(world.users["rep.east2"])
    for i in range(3):
        assert check(east1, phone=f"1390000{i:04d}").status_code == 200
    resp = check(east1, phone="13900009999")
    assert resp.status_code == 429 and resp.json()["detail"]
    assert check(east2, phone="13900009999").status_code == 200  # per user, not global
    minute[0] += 60
    assert check(east1, phone="13900009999").status_code == 200  # the next minute starts afresh
