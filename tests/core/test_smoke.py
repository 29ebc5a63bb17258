"""Smoke: the fixture world builds, the API answers, visibility differs per user."""


def test_rep_and_manager_see_different_customers(world, api_client):
    rep = api_client(world.users["rep.east1"])
    mgr = api_client(world.users["manager.east"])
    rep_names = {c["name"] for c in rep.get("/api/customers").json()["items"]}
    mgr_names = {c["name"] for c in mgr.get("/api/customers").json()["items"]}
    assert rep_names == {world.customers["rep.east1"].name}
    assert world.customers["rep.east2"].name in mgr_names
    assert world.customers["rep.south1"].name not in mgr_names
