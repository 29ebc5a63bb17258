"""Activities (跟进记录): validation, last-contact bookkeeping, permissions, change trail."""

import datetime as dt

import pytest
from django.utils import timezone

from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.customers.services import customer_member_set
from tuijin.followups.models import Activity
from tuijin.followups.services import activity_create
from tuijin.pipeline.services import opportunity_create


def log(world, who="rep.east1", customer=None, **kw):
    kw.setdefault("kind", "call")
    kw.setdefault("subject", "电话沟通")
    return activity_create(actor=world.users[who], customer=customer or world.customers[who], **kw)


def test_create_records_event_and_author(world):
    a = log(world, conclusion="确认预算", duration_minutes=15)
    assert a.owner == world.users["rep.east1"] and a.duration_minutes == 15
    ev = list(history_for(a))
    assert [e.action for e in ev] == ["create"]
    assert ev[0].changes["conclusion"] == [None, "确认预算"]
    assert ev[0].changes["customer"] == [None, world.customers["rep.east1"].pk]


def test_last_contact_moves_forward_only(world):
    c = world.customers["rep.east1"]
    c.refresh_from_db()
    first = c.last_contact_at
    assert first is not None  # set by the world fixture's visit
    later = timezone.now() - dt.timedelta(seconds=1)
    log(world, occurred_at=later)
    c.refresh_from_db()
    assert c.last_contact_at == max(first, later)
    newest = c.last_contact_at
    log(world, occurred_at=timezone.now() - dt.timedelta(days=30))  # back-filled old visit
    c.refresh_from_db()
    assert c.last_contact_at == newest


def test_opportunity_progress_moves_forward_only(world):
    opp = world.opps["rep.east1"]
    opp.refresh_from_db()
    before = opp.last_progress_at
    log(world, opportunity=opp, occurred_at=before - dt.timedelta(days=3))
    opp.refresh_from_db()
    assert opp.last_progress_at == before
    when = timezone.now()
    log(world, opportunity=opp, occurred_at=when)
    opp.refresh_from_db()
    assert opp.last_progress_at == when


def test_opportunity_of_another_customer_is_rejected(world):
    n = Activity.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        log(world, opportunity=world.opps["rep.east2"])
    assert "opportunity" in exc.value.errors
    assert Activity.objects.count() == n


def test_contact_of_another_customer_is_rejected(world):
    with pytest.raises(ValidationFailed) as exc:
        log(world, contact=world.customers["rep.east2"].contacts.get())
    assert "contact" in exc.value.errors


def test_future_time_is_rejected_but_small_clock_skew_is_tolerated(world):
    with pytest.raises(ValidationFailed) as exc:
        log(world, occurred_at=timezone.now() + dt.timedelta(hours=1))
    assert "occurred_at" in exc.value.errors
    assert log(world, occurred_at=timezone.now() + dt.timedelta(minutes=2)).pk


def test_naive_and_string_times_are_accepted(world):
    a = log(world, occurred_at="2026-01-05T10:30")
    assert timezone.is_aware(a.occurred_at)
    assert timezone.localtime(a.occurred_at).hour == 10
    with pytest.raises(ValidationFailed) as exc:
        log(world, occurred_at="yesterday")
    assert "occurred_at" in exc.value.errors


@pytest.mark.parametrize(
    "kw, field",
    [
        ({"kind": "telepathy"}, "kind"),
        ({"duration_minutes": -5}, "duration_minutes"),
        ({"duration_minutes": 24 * 60 + 1}, "duration_minutes"),
        ({"subject": "", "conclusion": "", "notes": ""}, "subject"),
        ({"subject": "x" * 201}, "subject"),
        ({"conclusion": "x" * 501}, "conclusion"),
    ],
)
def test_validation_names_the_field(world, kw, field):
    with pytest.raises(ValidationFailed) as exc:
        log(world, **kw)
    assert field in exc.value.errors


def test_read_only_member_cannot_log_activities(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["presales"], access="read")
    n = Activity.objects.count()
    with pytest.raises(Forbidden):
        log(world, who="presales", customer=c)
    assert Activity.objects.count() == n


def test_write_member_and_manager_can_log_activities(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["presales"], access="write")
    assert log(world, who="presales", customer=c).owner == world.users["presales"]
    assert log(world, who="manager.east", customer=c).owner == world.users["manager.east"]


def test_activity_can_link_an_opportunity_of_the_same_customer(world):
    rep = world.users["rep.east1"]
    opp = opportunity_create(actor=rep, customer=world.customers["rep.east1"], name="二期")
    assert log(world, opportunity=opp).opportunity == opp
