"""Periodic jobs of the health app (thin Huey wrappers around health.services).

Huey's crontab runs in UTC by default, so the jobs fire every hour and decide
by the *local* hour (settings.TIME_ZONE) whether it is their time: lights are
evaluated at 09:00 (a reminder at the start of the working day, not at 3 a.m.);
missing-alignment reminders go out at the first run after the weekly deadline.
Both are idempotent (one notification per red episode / per rep and week).
"""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task, lock_task

from . import services

LIGHTS_LOCAL_HOUR = 9


@db_periodic_task(crontab(minute="5"))
@lock_task("health-lights")
def evaluate_lights_hourly():
    now = timezone.now()
    if timezone.localtime(now).hour != LIGHTS_LOCAL_HOUR:
        return None
    return services.lights_evaluate(now=now)


@db_task()
def evaluate_lights_now():
    """On demand (the health page's button, the API)."""
    return services.lights_evaluate(now=timezone.now())


@db_periodic_task(crontab(minute="10"))
@lock_task("health-alignment-reminders")
def remind_missing_alignments():
    return services.alignment_remind_missing(now=timezone.now())
