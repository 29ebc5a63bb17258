"""Health lights (SPEC G6): 5-day red with a frozen clock, one reminder per episode to rep + manager (CC),
a new episode after recovery, yellow/green from pace, configurable thresholds."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tuijin.core.audit import verify
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.health import tasks
from tuijin.health.models import HealthEpisode
from tuijin.health.selectors import compute_lights, lights
from tuijin.health.services import health_settings_update, lights_evaluate
from tuijin.notify.models import Notification
from tuijin.pipeline.models import Opportunity
from tuijin.pipeline.services import opportunity_move_stage, opportunity_update

DAY = dt.timedelta(days=1)


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0)


def progress(world, username, when):
    Opportunity.objects.filter(owner=world.users[username]).update(last_progress_at=when)


def light_of(world, username, now):
    return compute_lights(reps=[world.users[username]], now=now)[0]


def red_notes(world, username):
    return list(Notification.objects.filter(kind="red_light", title__contains=world.users[username].label)
                .values_list("recipient__username", "is_cc").order_by("recipient__username"))


def test_five_days_without_progress_turns_red_and_notifies_rep_and_manager_once(world, t0):
    for u in ["rep.east1", "rep.east2", "rep.south1"]:
        progress(world, u, t0)
    almost = t0 + 5 * DAY - dt.timedelta(minutes=1)
    assert light_of(world, "rep.east2", almost)["light"] == "green"
    assert lights_evaluate(now=almost)["opened"] == 0
    assert red_notes(world, "rep.east2") == []

    day5 = t0 + 5 * DAY  # exactly five days: stale
    row = light_of(world, "rep.east2", day5)
    assert row["light"] == "red" and row["days_since_update"] == 5
    assert row["reasons"] == [{"code": "stale", "light": "red", "days": 5, "threshold": 5}]
    counts = lights_evaluate(now=day5)
    assert counts["red"] == 3 and counts["opened"] == 3 and counts["notified"] == 3
    assert red_notes(world, "rep.east2") == [("manager.east", True), ("rep.east2", False)]
    note = Notification.objects.get(kind="red_light", recipient=world.users["rep.east2"])
    assert "已连续 5 天未更新任何商机" in note.body and note.link == f"/health/reps/{world.users['rep.east2'].pk}/"

    # The job runs again (next hour, next day): still one episode, still one reminder.
    lights_evaluate(now=day5 + dt.timedelta(hours=1))
    lights_evaluate(now=day5 + DAY)
    assert red_notes(world, "rep.east2") == [("manager.east", True), ("rep.east2", False)]
    assert HealthEpisode.objects.filter(rep=world.users["rep.east2"]).count() == 1
    assert verify().ok


def test_progress_closes_the_episode_and_a_new_stale_period_notifies_again(world, t0):
    rep = world.users["rep.east2"]
    start = t0 - 10 * DAY  # the frozen clock runs in the past, so the real update below is "later"
    progress(world, "rep.east2", start)
    lights_evaluate(now=start + 6 * DAY)
    first = HealthEpisode.objects.get(rep=rep)
    assert first.ended_at is None and first.notified_at == start + 6 * DAY

    # The rep updates an opportunity through the ordinary service: last_progress_at moves to the real now.
    opp = world.opps["rep.east2"]
    opportunity_update(actor=rep, opportunity=opp, amount="120000")
    progressed_at = Opportunity.objects.get(pk=opp.pk).last_progress_at
    later = progressed_at + dt.timedelta(hours=1)
    assert light_of(world, "rep.east2", later)["light"] == "green"
    assert lights_evaluate(now=later)["closed"] >= 1
    first.refresh_from_db()
    assert first.ended_at == later

    again = progressed_at + 5 * DAY
    lights_evaluate(now=again)
    episodes = list(HealthEpisode.objects.filter(rep=rep).order_by("started_at"))
    assert len(episodes) == 2 and episodes[1].ended_at is None and episodes[1].started_at == again
    assert red_notes(world, "rep.east2") == [("manager.east", True), ("manager.east", True),
                                             ("rep.east2", False), ("rep.east2", False)]


def test_rep_without_open_opportunities_is_red(world, t0):
    rep = world.users["rep.south1"]
    opportunity_move_stage(actor=rep, opportunity=world.opps["rep.south1"], stage=world.stages["won"])
    row = light_of(world, "rep.south1", timezone.now())
    assert row["light"] == "red" and row["open_deals"] == 0
    assert row["reasons"][0] == {"code": "no_open", "light": "red"}


@pytest.mark.parametrize("ratio, light", [(None, "green"), (0.95, "green"), (0.8, "green"), (0.79, "yellow"),
                                          (0.3, "yellow")])
def test_yellow_and_green_follow_pace(world, fake_pace, ratio, light):
    fake_pace({"rep.east1": ratio})
    row = light_of(world, "rep.east1", timezone.now())
    assert row["light"] == light
    assert (row["ratio"] is None) == (ratio is None)


def test_thresholds_are_configurable_by_admins(world, fake_pace):
    fake_pace({"rep.east1": 0.5, "rep.east2": 0.85})
    admin = world.users["admin"]
    with pytest.raises(Forbidden):
        health_settings_update(actor=world.users["manager.east"], stale_days=3)
    with pytest.raises(ValidationFailed) as exc:
        health_settings_update(actor=admin, stale_days="0", yellow_below="x", red_below="0.7")
    assert {"stale_days", "yellow_below"} <= set(exc.value.errors)
    health_settings_update(actor=admin, stale_days=2, yellow_below="0.9", red_below="0.6")
    now = timezone.now()
    assert light_of(world, "rep.east1", now)["light"] == "red"  # 0.5 < red_below 0.6
    assert light_of(world, "rep.east2", now)["light"] == "yellow"  # 0.85 < 0.9
    progress(world, "rep.south1", now - 2 * DAY)
    assert light_of(world, "rep.south1", now)["reasons"][0]["threshold"] == 2
    assert light_of(world, "rep.south1", now)["light"] == "red"


def test_lights_are_computed_for_all_reps_with_a_fixed_number_of_queries(world, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):
        rows = compute_lights(reps=list(world.users[u] for u in ["rep.east1", "rep.east2", "rep.south1"]),
                              now=timezone.now())
    assert [r["light"] for r in rows] == ["green"] * 3


def test_rep_sees_only_own_light_manager_the_subtree(world):
    assert [r["rep"].username for r in lights(user=world.users["rep.east1"])] == ["rep.east1"]
    assert sorted(r["rep"].username for r in lights(user=world.users["manager.east"])) == ["rep.east1", "rep.east2"]
    assert sorted(r["rep"].username for r in lights(user=world.users["director"])) == [
        "rep.east1", "rep.east2", "rep.south1"]


def test_daily_job_runs_at_nine_local_time(world, monkeypatch, t0):
    progress(world, "rep.east2", t0 - 10 * DAY)
    nine = timezone.localtime(t0).replace(hour=9, minute=5)
    monkeypatch.setattr(tasks.timezone, "now", lambda: nine.replace(hour=8))
    assert tasks.evaluate_lights_hourly.call_local() is None
    assert not HealthEpisode.objects.exists()
    monkeypatch.setattr(tasks.timezone, "now", lambda: nine)
    tasks.evaluate_lights_hourly.call_local()
    tasks.evaluate_lights_hourly.call_local()
    assert HealthEpisode.objects.filter(rep=world.users["rep.east2"]).count() == 1
    assert Notification.objects.filter(kind="red_light", recipient=world.users["rep.east2"]).count() == 1
