"""Periodic jobs of the core app: planner statistics (core.dbstats) once a night, and the daily
change-trail checkpoint (core.audit.checkpoint_write), whose line is also sent to the admins."""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from . import audit
from .dbstats import refresh_statistics

NIGHTLY_LOCAL_HOUR = 3
CHECKPOINT_LOCAL_HOUR = 23  # late, so the line covers the day's work


@db_periodic_task(crontab(minute="40"))
@lock_task("core-db-statistics")
def refresh_statistics_nightly(force: bool = False):
    # Huey's crontab is UTC; the hourly trigger checks the local hour (as the other nightly jobs do).
    if not force and timezone.localtime(timezone.now()).hour != NIGHTLY_LOCAL_HOUR:
        return None
    return refresh_statistics()


def audit_checkpoint_and_send(*, now=None) -> audit.Checkpoint:
    """Write a checkpoint and send it to the admins; if it is refused, send the alarm and re-raise."""
    # core sits below notify (docs/architecture.md); the sending lives in notify, imported only here.
    from tuijin.notify.audit_alerts import audit_checkpoint_failed_send, audit_checkpoint_send

    try:
        checkpoint = audit.checkpoint_write(now=now)
    except audit.CheckpointError as exc:
        audit_checkpoint_failed_send(error=str(exc))
        raise
    audit_checkpoint_send(checkpoint=checkpoint)
    return checkpoint


@db_periodic_task(crontab(minute="50"))
@lock_task("core-audit-checkpoint")
def audit_checkpoint_daily(force: bool = False):
    if not force and timezone.localtime(timezone.now()).hour != CHECKPOINT_LOCAL_HOUR:
        return None
    return audit_checkpoint_and_send().seq
