"""Optimistic concurrency: the same version written twice → exactly one winner, one change-trail event."""

import threading

import pytest
from django.db import connection

from tuijin.core import audit
from tuijin.core.errors import StaleVersion
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Customer
from tuijin.customers.services import customer_update
from tuijin.pipeline.models import Opportunity
from tuijin.pipeline.services import opportunity_move_stage

JSON = "application/json"


def test_two_patches_with_the_same_version_one_wins_one_conflicts(world, api_client):
    c = world.customers["rep.east1"]
    alice = api_client(world.users["rep.east1"])
    boss = api_client(world.users["manager.east"])
    r1 = alice.patch(f"/api/customers/{c.pk}", {"version": c.version, "notes": "alice"}, content_type=JSON)
    r2 = boss.patch(f"/api/customers/{c.pk}", {"version": c.version, "notes": "boss"}, content_type=JSON)
    assert sorted([r1.status_code, r2.status_code]) == [200, 409]
    c.refresh_from_db()
    assert (c.notes, c.version) == ("alice", 2)
    updates = AuditEvent.objects.filter(object_type="customers.customer", object_id=str(c.pk), action="update")
    assert updates.count() == 1
    assert updates.get().changes == {"notes": ["", "alice"]}


def test_two_stage_moves_with_the_same_version_one_wins(world, api_client):
    opp = world.opps["rep.east1"]
    client = api_client(world.users["rep.east1"])
    url = f"/api/opportunities/{opp.pk}/stage"
    r1 = client.post(url, {"stage_id": world.stages["demo"].pk, "version": 1}, content_type=JSON)
    r2 = client.post(url, {"stage_id": world.stages["tender"].pk, "version": 1}, content_type=JSON)
    assert (r1.status_code, r2.status_code) == (200, 409)
    opp.refresh_from_db()
    assert opp.stage == world.stages["demo"]
    assert AuditEvent.objects.filter(object_type="pipeline.opportunity", object_id=str(opp.pk),
                                     action="stage_change").count() == 1


def _run_threads(n, work):
    """Start n threads at once; return what each returned or raised."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def runner(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (lock never released?)"
    return results


postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="real row locks need PostgreSQL; on SQLite writers are serialised and the sequential tests above "
           "are the check",
)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_eight_threads_moving_one_opportunity_exactly_one_wins(world):
    opp = world.opps["rep.east1"]
    actor = world.users["rep.east1"]
    targets = [world.stages[code] for code in ["survey", "demo", "tender", "contract"] * 2]
    events_before = AuditEvent.objects.count()

    def move(i):
        fresh = Opportunity.objects.get(pk=opp.pk)
        return opportunity_move_stage(actor=actor, opportunity=fresh, stage=targets[i], version=1)

    results = _run_threads(8, move)
    winners = [r for r in results if isinstance(r, Opportunity)]
    stale = [r for r in results if isinstance(r, StaleVersion)]
    assert len(winners) == 1, results
    assert len(stale) == 7, results
    assert all(s.current_version == 2 for s in stale)
    opp.refresh_from_db()
    assert (opp.version, opp.stage_id) == (2, winners[0].stage_id)
    assert AuditEvent.objects.count() == events_before + 1
    result = audit.verify()
    assert result.ok, result.reason


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_audit_chain(world):
    customers = list(Customer.objects.order_by("id"))
    admin = world.users["admin"]
    events_before = AuditEvent.objects.count()

    def edit(i):
        c = customers[i % len(customers)]
        return customer_update(actor=admin, customer=c, notes=f"并发编辑 {i}")

    results = _run_threads(8, edit)
    assert all(isinstance(r, Customer) for r in results), results
    assert AuditEvent.objects.count() == events_before + 8
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, len(seqs) + 1))
    assert audit.verify().ok


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_edits_racing_stage_moves_get_a_conflict_not_an_error(world):
    """Half the threads PATCH the amount, half move the stage, all with version 1: one wins, 7 get StaleVersion."""
    from tuijin.pipeline.services import opportunity_update

    opp = world.opps["rep.east1"]
    actor = world.users["manager.east"]

    def work(i):
        fresh = Opportunity.objects.get(pk=opp.pk)
        if i % 2:
            return opportunity_update(actor=actor, opportunity=fresh, version=1, amount=str(1000 + i))
        return opportunity_move_stage(actor=actor, opportunity=fresh, stage=world.stages["demo"], version=1)

    results = _run_threads(8, work)
    assert sum(isinstance(r, Opportunity) for r in results) == 1, results
    assert sum(isinstance(r, StaleVersion) for r in results) == 7, results
    assert audit.verify().ok
