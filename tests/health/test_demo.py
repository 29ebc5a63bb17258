"""The demo's grading and health data: graded customers, three weeks of alignments with rep.east2 missing
this week, and rep.east2 red with one reminder (CC manager.east)."""

from __future__ import annotations

import datetime as dt

from tuijin.customers.models import Customer
from tuijin.demo.generate import generate
from tuijin.health import rules
from tuijin.health.models import HealthEpisode, WeeklyAlignment
from tuijin.health.selectors import compute_lights
from tuijin.notify.models import Notification
from tuijin.org.models import User


def test_demo_grades_aligns_and_turns_the_quiet_rep_red(db):
    generate(reps=5, customers=40, months=3, seed=7)
    assert not Customer.objects.filter(grade="").exists()
    grades = set(Customer.objects.values_list("grade", flat=True))
    assert {"standard", "growth"} <= grades and len(grades) >= 3
    this_week = rules.week_start_of(rules.local_today())
    weeks = set(WeeklyAlignment.objects.values_list("week_start", flat=True))
    assert weeks == {this_week - dt.timedelta(days=14), this_week - dt.timedelta(days=7), this_week}
    east2 = User.objects.get(username="rep.east2")
    assert not WeeklyAlignment.objects.filter(rep=east2, week_start=this_week).exists()
    assert WeeklyAlignment.objects.filter(week_start=this_week).count() >= 3
    assert compute_lights(reps=[east2])[0]["light"] == "red"
    episode = HealthEpisode.objects.get(rep=east2, ended_at__isnull=True)
    notes = Notification.objects.filter(kind="red_light", dedupe_key=f"red_light:{episode.pk}")
    assert sorted(notes.values_list("recipient__username", "is_cc")) == [("manager.east", True),
                                                                         ("rep.east2", False)]
    assert Notification.objects.filter(kind="red_light", recipient=east2).count() == 1
