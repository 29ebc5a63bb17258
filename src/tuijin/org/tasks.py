"""Periodic jobs of the org app: expired login-throttle counters are deleted once an hour."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from .throttle import throttle_purge


@db_periodic_task(crontab(minute="17"))
@lock_task("org-login-throttle-purge")
def login_throttle_purge_hourly():
    # Expired counters already count as zero; deleting them only keeps the table small under a spraying attack.
    return throttle_purge()
