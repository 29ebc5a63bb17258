"""Periodic jobs of the core app: planner statistics (core.dbstats) once a night.

The daily change-trail checkpoint is written by core.audit but sent to the admins, so its job is
notify.tasks.audit_checkpoint_daily (core sits below notify)."""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from .dbstats import refresh_statistics

NIGHTLY_LOCAL_HOUR = 3


@db_periodic_task(crontab(minute="40"))
@lock_task("core-db-statistics")
def refresh_statistics_nightly(force: bool = False):
    # Huey's crontab is UTC; the hourly trigger checks the local hour (as the other nightly jobs do).
    if not force and timezone.localtime(timezone.now()).hour != NIGHTLY_LOCAL_HOUR:
        return None
    return refresh_statistics()
