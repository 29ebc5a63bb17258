"""One scheduler for periodic jobs, however many `tuijin worker` processes run (security issue, item 4).

Every worker started without --no-periodic runs Huey's scheduler, which asks `HUEY.read_periodic()` once a
minute which periodic tasks are due and enqueues them. `install()` wraps that call: it returns the due
tasks only while this process holds the scheduler lease (a `SchedulerLease` row with an expiry), and
nothing otherwise, so a second scheduling worker by mistake enqueues nothing.

The lease lasts `TUIJIN_SCHEDULER_LEASE_SECONDS` (45 s). Its holder renews it from a heartbeat thread every
third of that, and on each tick; a worker that dies stops renewing, and a standby worker takes the lease
at its first heartbeat after the expiry, then schedules from its next minute tick on. Taking and renewing
is one conditional UPDATE ("mine, or expired"), so two workers never both get it. A clean shutdown
releases the lease at once. Expiry is compared with each worker's clock: workers on several hosts need
synchronised clocks (NTP), off by much less than the lease.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import os
import socket
import threading
import uuid

from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import SchedulerLease

logger = logging.getLogger(__name__)

LEASE_NAME = "periodic"
HOLDER = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

_state = {"held": None, "heartbeat": None}
_state_lock = threading.Lock()


def lease_acquire(*, holder: str = HOLDER, now: dt.datetime | None = None) -> bool:
    """Take the lease if it is free or expired, or renew it if `holder` has it; True when `holder` has it now."""
    now = now or timezone.now()
    until = now + dt.timedelta(seconds=conf.scheduler_lease_seconds())
    with transaction.atomic():
        taken = SchedulerLease.objects.filter(name=LEASE_NAME).filter(Q(holder=holder) | Q(expires_at__lte=now))
        # Only a taker from another holder gets a new acquired_at; a renewal keeps it.
        if taken.filter(holder=holder).update(expires_at=until):
            return True
        if taken.update(holder=holder, expires_at=until, acquired_at=now):
            return True
        if SchedulerLease.objects.filter(name=LEASE_NAME).exists():
            return False
        try:
            with transaction.atomic():
                SchedulerLease.objects.create(name=LEASE_NAME, holder=holder, expires_at=until, acquired_at=now)
        except IntegrityError:  # another worker created it at the same moment
            return False
    return True


def lease_release(*, holder: str = HOLDER) -> bool:
    """Give the lease up (clean shutdown) so a standby worker takes over without waiting for the expiry."""
    return SchedulerLease.objects.filter(name=LEASE_NAME, holder=holder).delete()[0] > 0


def lease_holder() -> str | None:
    row = SchedulerLease.objects.filter(name=LEASE_NAME, expires_at__gt=timezone.now()).first()
    return row.holder if row else None


def holds_lease() -> bool:
    """Acquire or renew now; logs when this worker starts or stops being the scheduler."""
    # Called outside any request or task, so Django never recycles this thread's connection by itself:
    # drop one that broke (database restarted) or outlived CONN_MAX_AGE, or the lease could never be renewed.
    if not connection.in_atomic_block:  # (a caller's transaction, e.g. a test's, is left alone)
        close_old_connections()
    try:
        held = lease_acquire()
    except Exception:
        # Without the database we cannot know who schedules: do not, the jobs need the database anyway.
        logger.exception("scheduler lease: could not reach the database; not scheduling periodic jobs")
        if not connection.in_atomic_block:
            connection.close()
        held = False
    with _state_lock:
        before, _state["held"] = _state["held"], held
    if held and before is not True:
        logger.info("scheduler lease taken (%s): this worker schedules the periodic jobs", HOLDER)
    elif not held and before is not False:
        try:
            other = lease_holder()
        except Exception:
            other = "unknown"
        logger.info("scheduler lease held by %s: this worker stands by and schedules nothing", other)
    return held


def _heartbeat(stop: threading.Event) -> None:
    interval = max(conf.scheduler_lease_seconds() / 3, 0.5)
    while not stop.wait(interval):
        holds_lease()
        connection.close()  # this thread's own connection; do not hold SQLite or a pool slot between beats


def _start_heartbeat() -> None:
    with _state_lock:
        if _state["heartbeat"] is not None:
            return
        stop = threading.Event()
        thread = threading.Thread(target=_heartbeat, args=(stop,), name="tuijin-scheduler-lease", daemon=True)
        _state["heartbeat"] = (thread, stop)
    thread.start()
    atexit.register(_shutdown)


def _shutdown() -> None:
    beat = _state["heartbeat"]
    if beat is not None:
        beat[1].set()
    if _state["held"]:
        try:
            lease_release()
            logger.info("scheduler lease released (%s)", HOLDER)
        except Exception:
            logger.warning("could not release the scheduler lease; it expires by itself")


def install(huey) -> None:
    """Make `huey.read_periodic` (called by the consumer's scheduler only) answer only for the lease holder."""
    original = huey.read_periodic
    if getattr(original, "tuijin_lease_guard", False):
        return

    def read_periodic(timestamp):
        _start_heartbeat()  # first call: this process runs a scheduler, so it competes for the lease
        if not holds_lease():
            return []
        return original(timestamp)

    read_periodic.tuijin_lease_guard = True
    huey.read_periodic = read_periodic
