"""Weekly three-sentence alignment (SPEC G5): validation naming the field, deadlines, updates, reminders."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings

from tuijin.core.audit import history_for, verify
from tuijin.core.errors import StaleVersion, ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.health import rules
from tuijin.health.models import Blocker, WeeklyAlignment
from tuijin.health.selectors import alignment_status, missing_reps
from tuijin.health.services import alignment_remind_missing, alignment_submit
from tuijin.notify.models import Notification
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

from .conftest import MONDAY, at

BEFORE = at(MONDAY, 11, 59)  # Monday 11:59 Asia/Shanghai, the default deadline is 12:00


@pytest.fixture
def opps(world):
    """rep.east1's four open opportunities (the world's one plus three)."""
    rep = world.users["rep.east1"]
    c = world.customers["rep.east1"]
    extra = [opportunity_create(actor=rep, customer=c, name=f"推进{i}", amount="50000") for i in range(3)]
    return [world.opps["rep.east1"], *extra]


def submit(world, **kw):
    kw.setdefault("actor", world.users["rep.east1"])
    kw.setdefault("now", BEFORE)
    return alignment_submit(**kw)


def test_submit_three_opportunities_two_departments_and_a_new_blocker(world, opps):
    a = submit(world, opportunity_ids=[o.pk for o in opps[:3]], departments=["presales", "legal"],
               has_blocker=True, new_blocker={"title": "客户法务对条款有异议", "opportunity_id": opps[0].pk})
    assert a.week_start == MONDAY
    assert [i.opportunity_id for i in a.items.order_by("rank")] == [o.pk for o in opps[:3]]
    assert a.departments == ["presales", "legal"]
    blocker = Blocker.objects.get()
    assert a.blocker == blocker and blocker.escalated_to == world.users["manager.east"]
    assert Notification.objects.filter(recipient=world.users["manager.east"], kind="blocker_escalated").count() == 1
    events = list(history_for(a))
    assert events[0].action == "create" and events[0].changes["opportunities"] == [None, [o.pk for o in opps[:3]]]
    assert verify().ok


@pytest.mark.parametrize("case, field", [
    ("four", "opportunity_ids"),
    ("none", "opportunity_ids"),
    ("duplicate", "opportunity_ids"),
    ("not_own", "opportunity_ids[1]"),
    ("closed", "opportunity_ids[0]"),
    ("three_departments", "departments"),
    ("unknown_department", "departments"),
    ("blocker_without_record", "blocker_id"),
    ("someone_elses_blocker", "blocker_id"),
])
def test_bad_alignment_names_the_field_and_saves_nothing(world, opps, case, field):
    rep, other = world.users["rep.east1"], world.users["rep.east2"]
    ids = [opps[0].pk]
    kw = {"opportunity_ids": ids, "departments": [], "has_blocker": False}
    if case == "four":
        kw["opportunity_ids"] = [o.pk for o in opps]
    elif case == "none":
        kw["opportunity_ids"] = []
    elif case == "duplicate":
        kw["opportunity_ids"] = [opps[0].pk, opps[0].pk]
    elif case == "not_own":
        kw["opportunity_ids"] = [opps[0].pk, world.opps["rep.east2"].pk]
    elif case == "closed":
        opportunity_move_stage(actor=rep, opportunity=opps[0], stage=world.stages["won"])
    elif case == "three_departments":
        kw["departments"] = ["presales", "delivery", "finance"]
    elif case == "unknown_department":
        kw["departments"] = ["marketing"]
    elif case == "blocker_without_record":
        kw["has_blocker"] = True
    elif case == "someone_elses_blocker":
        theirs = Blocker.objects.create(title="别人的卡点", owner=other)
        kw.update(has_blocker=True, blocker_id=theirs.pk)
    events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        submit(world, **kw)
    assert field in exc.value.errors, exc.value.errors
    assert not WeeklyAlignment.objects.exists()
    assert AuditEvent.objects.count() == events


def test_bad_new_blocker_is_not_created_either(world, opps):
    with pytest.raises(ValidationFailed) as exc:
        submit(world, opportunity_ids=[o.pk for o in opps], has_blocker=True, new_blocker={"title": "卡点"})
    assert set(exc.value.errors) == {"opportunity_ids"}
    assert not Blocker.objects.exists() and not WeeklyAlignment.objects.exists()


def test_second_submission_before_the_deadline_updates_with_audit(world, opps):
    a = submit(world, opportunity_ids=[opps[0].pk], now=at(MONDAY, 9))
    b = submit(world, opportunity_ids=[opps[2].pk, opps[1].pk], departments=["finance"], version=a.version)
    assert b.pk == a.pk and b.version == 2 and WeeklyAlignment.objects.count() == 1
    assert [i.opportunity_id for i in b.items.order_by("rank")] == [opps[2].pk, opps[1].pk]
    last = list(history_for(b))[-1]
    assert last.action == "update"
    assert last.changes == {"departments": [[], ["finance"]],
                            "opportunities": [[opps[0].pk], [opps[2].pk, opps[1].pk]]}
    with pytest.raises(StaleVersion):
        submit(world, opportunity_ids=[opps[0].pk], version=1)


def test_submitting_after_the_deadline_is_refused(world, opps):
    submit(world, opportunity_ids=[opps[0].pk])
    with pytest.raises(ValidationFailed) as exc:
        submit(world, week_start=MONDAY, opportunity_ids=[opps[1].pk], now=at(MONDAY, 12, 0))
    assert "week_start" in exc.value.errors
    a = WeeklyAlignment.objects.get()
    assert [i.opportunity_id for i in a.items.all()] == [opps[0].pk]  # locked, unchanged


def test_after_the_deadline_the_open_week_is_next_week(world, opps):
    a = submit(world, opportunity_ids=[opps[0].pk], now=at(MONDAY, 15))
    assert a.week_start == MONDAY + dt.timedelta(days=7)
    with pytest.raises(ValidationFailed) as exc:
        submit(world, week_start=MONDAY + dt.timedelta(days=14), opportunity_ids=[opps[0].pk], now=at(MONDAY, 15))
    assert "week_start" in exc.value.errors


@override_settings(TUIJIN_ALIGNMENT_DEADLINE="FRI 18:00")
def test_deadline_is_configurable(world, opps):
    assert rules.deadline_for(MONDAY) == at(MONDAY + dt.timedelta(days=4), 18)
    a = submit(world, opportunity_ids=[opps[0].pk], now=at(MONDAY + dt.timedelta(days=4), 17, 59))
    assert a.week_start == MONDAY


def test_manager_sees_who_has_not_submitted_by_the_deadline(world, opps):
    submit(world, opportunity_ids=[opps[0].pk])
    manager = world.users["manager.east"]
    before = alignment_status(user=manager, week_start=MONDAY, now=BEFORE)
    assert not before["deadline_passed"]
    after = alignment_status(user=manager, week_start=MONDAY, now=at(MONDAY, 12))
    assert after["deadline_passed"] and after["submitted"] == 1 and after["missing"] == 1
    assert [r["rep"].username for r in after["rows"] if r["missing"]] == ["rep.east2"]
    # manager.south's subtree only has rep.south1
    south = alignment_status(user=world.users["manager.south"], week_start=MONDAY, now=at(MONDAY, 12))
    assert [r["rep"].username for r in south["rows"]] == ["rep.south1"]
    assert [u.username for u in missing_reps(week_start=MONDAY)] == ["rep.east2", "rep.south1"]


def test_missing_reps_are_reminded_once_with_their_manager_in_cc(world, opps):
    submit(world, opportunity_ids=[opps[0].pk])
    assert alignment_remind_missing(now=BEFORE) == 0  # not before the deadline
    assert alignment_remind_missing(now=at(MONDAY, 12, 10)) == 2
    assert alignment_remind_missing(now=at(MONDAY, 13, 10)) == 0  # hourly rerun: nothing new
    got = sorted(Notification.objects.filter(kind="alignment_missing").values_list(
        "recipient__username", "is_cc"))
    assert got == [("manager.east", True), ("manager.south", True), ("rep.east2", False), ("rep.south1", False)]
