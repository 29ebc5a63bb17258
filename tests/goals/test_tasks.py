"""The monthly report job: runs only on the configured day, once per period however often it runs."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tuijin.goals.models import GoalReport
from tuijin.goals.tasks import monthly_report_hourly, monthly_report_run
from tuijin.notify.models import Notification

pytestmark = pytest.mark.django_db


def _local(y, m, d, h):
    return timezone.make_aware(dt.datetime(y, m, d, h))


def test_report_generated_on_the_25th_once(cascade, org):
    assert monthly_report_run(_local(2026, 2, 24, 9)) is None
    assert monthly_report_run(_local(2026, 2, 25, 7)) is None  # before 08:00 local
    first = monthly_report_run(_local(2026, 2, 25, 8))
    again = monthly_report_run(_local(2026, 2, 25, 9))
    assert first == again and GoalReport.objects.count() == 1
    report = GoalReport.objects.get()
    assert (report.period_start, report.period_end, report.as_of) == (
        dt.date(2026, 2, 1), dt.date(2026, 2, 28), dt.date(2026, 2, 25))
    assert Notification.objects.filter(kind="goal_report", recipient=org.users["director"]).count() == 1


def test_report_day_is_configurable(cascade, settings):
    settings.TUIJIN_GOAL_REPORT_DAY = 20
    assert monthly_report_run(_local(2026, 2, 25, 9)) is None
    assert monthly_report_run(_local(2026, 2, 20, 9)) is not None


def test_periodic_task_twice_makes_one_report(cascade, monkeypatch):
    from tuijin.goals import tasks

    monkeypatch.setattr(tasks.timezone, "now", lambda: _local(2026, 3, 25, 10))
    monthly_report_hourly()
    monthly_report_hourly()  # the next hourly tick, or a second worker
    assert list(GoalReport.objects.values_list("period_start", flat=True)) == [dt.date(2026, 3, 1)]
