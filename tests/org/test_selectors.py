"""Who sees whose records: visible_owner_ids per role, manager chain, team ids, user pickers."""

import pytest

from tuijin.org.models import User
from tuijin.org.selectors import (
    is_company_wide,
    manager_chain,
    team_user_ids,
    user_list,
    visible_owner_ids,
)
from tuijin.org.services import user_create


def ids(org, *names):
    return {org.users[n].pk for n in names}


def test_rep_sees_only_self(org):
    assert visible_owner_ids(org.users["rep.east1"]) == ids(org, "rep.east1")
    assert team_user_ids(org.users["rep.east1"]) == set()


def test_manager_sees_own_subtree_not_other_branches(org):
    assert visible_owner_ids(org.users["manager.east"]) == ids(org, "manager.east", "rep.east1", "rep.east2")
    assert visible_owner_ids(org.users["manager.south"]) == ids(org, "manager.south", "rep.south1")
    assert team_user_ids(org.users["manager.east"]) == ids(org, "rep.east1", "rep.east2")


def test_manager_also_sees_reports_outside_the_unit(org):
    """A report assigned to a unit outside the manager's subtree is still visible through the chain."""
    mgr = org.users["manager.east"]
    remote = user_create(actor=None, username="rep.remote", password="pw-for-tests-1", role="rep",
                         org_unit=org.units["beijing_team"], manager=org.users["rep.east1"])
    assert remote.pk in visible_owner_ids(mgr)  # report of a report
    assert remote.pk not in visible_owner_ids(org.users["manager.south"])
    assert remote.pk not in visible_owner_ids(org.users["rep.east1"])  # reps do not get their reports' records


def test_manager_without_unit_sees_reports_only(org):
    mgr = user_create(actor=None, username="mgr.nounit", password="pw-for-tests-1", role="manager")
    rep = user_create(actor=None, username="rep.x", password="pw-for-tests-1", role="rep", manager=mgr)
    assert visible_owner_ids(mgr) == {mgr.pk, rep.pk}


@pytest.mark.parametrize("username", ["director", "admin"])
def test_director_and_admin_see_the_whole_company(org, username):
    assert is_company_wide(org.users[username])
    assert visible_owner_ids(org.users[username]) is None
    assert team_user_ids(org.users[username]) is None


def test_vp_is_company_wide(org):
    vp = user_create(actor=None, username="vp", password="pw-for-tests-1", role="vp")
    assert visible_owner_ids(vp) is None


@pytest.mark.parametrize("username", ["finance", "legal", "presales", "delivery"])
def test_cross_role_staff_own_only_themselves(org, username):
    assert visible_owner_ids(org.users[username]) == ids(org, username)
    assert not is_company_wide(org.users[username])


def test_inactive_user_sees_nobody(org):
    mgr = org.users["manager.east"]
    mgr.is_active = False
    assert visible_owner_ids(mgr) == set()


def test_manager_chain_goes_up_to_the_top(org):
    assert manager_chain(org.users["rep.east1"]) == [org.users["manager.east"], org.users["director"]]
    assert manager_chain(org.users["director"]) == []


def test_manager_chain_stops_on_a_cycle(org):
    director = org.users["director"]
    director.manager = org.users["rep.east1"]
    director.save()
    chain = manager_chain(User.objects.get(username="rep.east1"))
    assert [u.username for u in chain] == ["manager.east", "director"]


def test_user_list_limits_owner_pickers(org):
    assert {u.username for u in user_list(user=org.users["manager.south"])} == {"manager.south", "rep.south1"}
    assert user_list(user=org.users["admin"]).count() == len(org.users)
    org.users["rep.east2"].is_active = False
    org.users["rep.east2"].save()
    assert "rep.east2" not in {u.username for u in user_list(user=org.users["manager.east"])}


def test_visible_set_is_computed_once_per_request_scope(org, django_assert_num_queries):
    """Inside a request the manager's visible set is cached; a user created meanwhile invalidates it."""
    from tuijin.org.selectors import visibility_scope

    mgr = User.objects.get(pk=org.users["manager.east"].pk)
    mgr.org_unit  # noqa: B018 (load the unit outside the measured blocks)
    with visibility_scope():
        first = visible_owner_ids(mgr)
        with django_assert_num_queries(0):
            assert visible_owner_ids(mgr) == first
            assert team_user_ids(mgr) == first - {mgr.pk}
        visible_owner_ids(mgr).add(-1)  # callers get a copy: mutating it changes nothing cached
        assert -1 not in visible_owner_ids(mgr)
        new = user_create(actor=None, username="rep.east9", password="pw-for-tests-1", role="rep",
                          org_unit=org.units["shanghai_team"], manager=mgr)
        assert new.pk in visible_owner_ids(mgr)
    # Outside a scope nothing is cached: each call reads the org afresh.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        visible_owner_ids(mgr)
    assert len(ctx.captured_queries) >= 1


def test_pages_cache_the_visible_set_per_request_not_across_requests(org, login):
    mgr = org.users["manager.east"]
    client = login(mgr)
    c = client.get("/customers/?scope=team")
    assert c.status_code == 200
    new = user_create(actor=None, username="rep.east8", password="pw-for-tests-1", role="rep",
                      org_unit=org.units["shanghai_team"], manager=mgr)
    from tuijin.customers.services import customer_create

    customer_create(actor=new, name="新人的客户", industry="hospital_private")
    assert "新人的客户" in client.get("/customers/?scope=team").content.decode()
