"""Huey tasks of tuijin.notify: the outbox sweep (every minute, on worker start, and right after notify()),
and the daily change-trail checkpoint sent to the admins.

All three run the same idempotent `outbox_deliver_due`, so running it twice — two
schedulers by mistake, or an immediate kick racing the minute tick — sends nothing twice.
Retries due within the next minute get a sweep scheduled for their time instead of
waiting for the next tick.
"""

from __future__ import annotations

import logging
import time

from django.core.cache import cache
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task, lock_task, on_startup

from .audit_alerts import audit_checkpoint_and_send
from .delivery import outbox_deliver_due, outbox_next_due_in, robot_sends_prune

logger = logging.getLogger(__name__)

MAX_ROUNDS = 20  # full batches per run before yielding the worker to other tasks


def _sweep() -> int:
    sent = 0
    for _ in range(MAX_ROUNDS):
        report = outbox_deliver_due()
        sent += len(report.sent)
        if report.claimed == 0:
            break
    _schedule_follow_up()
    return sent


def _schedule_follow_up() -> None:
    if HUEY.immediate:
        return  # tests and inline mode: nobody would run a scheduled task
    wait = outbox_next_due_in()
    if wait is None or wait >= 60:
        return  # the minute tick will pick it up
    # One follow-up per second bucket, whichever worker asks first.
    key = f"notify:sweep-at:{int(time.time() + wait)}"
    try:
        if not cache.add(key, 1, timeout=120):
            return
    except Exception:  # cache down: schedule anyway, the sweep is idempotent
        logger.warning("cache unavailable while scheduling an outbox follow-up sweep")
    deliver_outbox.schedule(delay=max(wait, 1))


@db_task()
def deliver_outbox() -> int:
    """Deliver what is due now (enqueued after notify() commits outbox rows)."""
    return _sweep()


@db_periodic_task(crontab(minute="*"))
def outbox_sweep() -> int:
    """The safety net: every minute, deliver whatever is due (retries, leases that ran out)."""
    robot_sends_prune()
    return _sweep()


@on_startup()
def _sweep_on_start() -> None:
    # A worker that (re)starts after downtime delivers what waited, without waiting for the next tick.
    if not HUEY.immediate:
        try:
            deliver_outbox()
        except Exception:
            logger.exception("could not enqueue the start-up outbox sweep")


def kick_delivery() -> None:
    """Ask a worker to deliver now. Never raises: if the queue is down the minute sweep still delivers."""
    try:
        deliver_outbox()
    except Exception:
        logger.exception("could not enqueue outbox delivery; the periodic sweep will deliver it")


CHECKPOINT_LOCAL_HOUR = 23  # late, so the line covers the day's work


@db_periodic_task(crontab(minute="50"))
@lock_task("core-audit-checkpoint")  # the lock's name from when the job lived in core.tasks
def audit_checkpoint_daily(force: bool = False):
    """The change-trail checkpoint (core.audit), written and sent to the admins once a day (docs/audit.md)."""
    # Huey's crontab is UTC; the hourly trigger checks the local hour (as the other nightly jobs do).
    if not force and timezone.localtime(timezone.now()).hour != CHECKPOINT_LOCAL_HOUR:
        return None
    return audit_checkpoint_and_send().seq
