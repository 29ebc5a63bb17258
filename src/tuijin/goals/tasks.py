"""Periodic job of tuijin.goals: the monthly goal deviation report on the configured day (SPEC G7).

Huey's crontab runs in UTC, so the job fires hourly and decides by the local
date and hour (settings.TIME_ZONE) whether it is the report day
(TUIJIN_GOAL_REPORT_DAY, default 25) at 08:00 or later. report_generate keeps
one report per period, so every later run that day (or a second worker)
returns the stored report without notifying again.
"""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from . import services

REPORT_LOCAL_HOUR = 8


def report_due(now) -> bool:
    local = timezone.localtime(now)
    return local.day == services.report_day() and local.hour >= REPORT_LOCAL_HOUR


def monthly_report_run(now=None):
    """Generate this month's report when due; returns the report id or None."""
    now = now or timezone.now()
    if not report_due(now):
        return None
    today = timezone.localtime(now).date()
    report, _created = services.report_generate(actor=None, start=today.replace(day=1), as_of=today,
                                                  scheduled=True)
    return report.pk


@db_periodic_task(crontab(minute="15"))
@lock_task("goals-monthly-report")
def monthly_report_hourly():
    return monthly_report_run()


@db_task()
def report_generate_now(start: str, end: str | None = None):
    """On demand from a script or the CLI: generate (or return) the report of a period (not broadcast)."""
    report, _created = services.report_generate(actor=None, start=start, end=end)
    return report.pk
