"""Customer API: bad owners and transfer targets are 422 naming the body field, never 404, and write nothing."""

from __future__ import annotations

import pytest

from tuijin.customers.models import Customer, OwnerChange
from tuijin.pipeline.models import Opportunity


def post(client, url, data):
    return client.post(url, data, content_type="application/json")


def blamed(resp) -> set[str]:
    assert resp.status_code == 422, resp.content
    return {d["loc"][-1] for d in resp.json()["detail"]}


def deactivate(user):
    user.is_active = False
    user.save(update_fields=["is_active"])
    return user


@pytest.mark.parametrize("target", ["unknown", "inactive", "finance"])
def test_bad_transfer_target_is_422_on_to_user_id(world, api_client, target):
    c = world.customers["rep.east1"]
    client = api_client(world.users["manager.east"])
    to = {"unknown": lambda: 999_999, "inactive": lambda: deactivate(world.users["rep.east2"]).pk,
          "finance": lambda: world.users["finance"].pk}[target]()
    resp = post(client, "/api/customers/transfer", {"customer_ids": [c.pk], "to_user_id": to})
    assert blamed(resp) == {"to_user_id"}
    assert Customer.objects.get(pk=c.pk).owner == world.users["rep.east1"]
    assert not OwnerChange.objects.exists()


@pytest.mark.parametrize("owner", ["unknown", "inactive", "other_region"])
def test_bad_owner_on_create_is_422_on_owner_id(world, api_client, owner):
    client = api_client(world.users["manager.east"])
    owner_id = {"unknown": lambda: 999_999, "inactive": lambda: deactivate(world.users["rep.east2"]).pk,
                "other_region": lambda: world.users["rep.south1"].pk}[owner]()
    resp = post(client, "/api/customers", {"name": "负责人校验医院", "owner_id": owner_id})
    assert blamed(resp) == {"owner_id"}
    assert not Customer.objects.filter(name="负责人校验医院").exists()
    resp = post(client, "/api/opportunities", {"name": "负责人校验商机", "customer_id": world.customers["rep.east1"].pk,
                                               "owner_id": owner_id})
    assert blamed(resp) == {"owner_id"}
    assert not Opportunity.objects.filter(name="负责人校验商机").exists()


def test_director_assigns_any_active_owner_through_the_api(world, api_client):
    resp = post(api_client(world.users["director"]), "/api/customers",
                {"name": "总监分配医院", "owner_id": world.users["rep.south1"].pk})
    assert resp.status_code == 201 and resp.json()["owner"]["username"] == "rep.south1"
