"""Delivering the outbox: claim due rows safely, send each once, record the outcome, retry with backoff.

Guarantee (see docs/notifications.md): a message is never lost and is sent once,
except in one window no webhook can close — a worker that dies after the
platform accepted the request but before it recorded "sent". That row is sent
again after its lease runs out (at-least-once). Everything else is exactly once:

- Claiming takes rows with `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (SQLite
  serialises writers with BEGIN IMMEDIATE), stamps them `sending` with this run's
  token and a lease, and commits — two workers never hold the same row.
- Just before sending, the row's lease is renewed *conditionally on the token*; a
  worker whose row was taken over (lease ran out) skips it.
- The outcome is written conditionally on the token too, so a slow worker cannot
  overwrite a newer owner's result.
- Robot rate limits: a sliding window over `RobotSend` rows, counted under a lock
  on the robot row, so concurrent workers together stay within `max_per_minute`;
  messages over the limit wait (status pending, later `next_attempt_at`), never dropped.

Delivery attempts are not change-trail (audit) events: the row itself keeps attempts,
last error and times, and appending to the hash chain on every send would serialise
all workers on its head. Admin actions on the outbox are audited (notify.services).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import F, Min, Q
from django.utils import timezone

from . import conf, transports
from .models import OutboxMessage, Robot, RobotSend

logger = logging.getLogger(__name__)

WINDOW = dt.timedelta(seconds=60)
S = OutboxMessage.Status


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    postponed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return sum(len(v) for v in (self.sent, self.retrying, self.failed, self.postponed, self.skipped))


def outbox_deliver_due(*, limit: int | None = None, only_ids: list[int] | None = None) -> DeliveryReport:
    """Claim the due rows (at most `limit`) and deliver them one by one; returns what happened."""
    token = uuid.uuid4().hex
    report = DeliveryReport()
    for message in _claim(token, limit or conf.batch_size(), only_ids):
        outcome = _deliver_one(message, token)
        getattr(report, outcome).append(message.pk)
    return report


def _due_filter(now):
    # Pending rows whose time has come, and rows a dead (or hung) worker left in flight.
    return Q(status=S.PENDING, next_attempt_at__lte=now) | Q(status=S.SENDING, lease_until__lte=now)


def _claim(token: str, limit: int, only_ids: list[int] | None) -> list[OutboxMessage]:
    now = timezone.now()
    with transaction.atomic():
        qs = OutboxMessage.objects.filter(_due_filter(now)).order_by("next_attempt_at", "id")
        if only_ids is not None:
            qs = qs.filter(pk__in=only_ids)
        if connection.features.has_select_for_update_skip_locked:
            qs = qs.select_for_update(skip_locked=True)
        ids = list(qs.values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        OutboxMessage.objects.filter(pk__in=ids).update(
            status=S.SENDING, claim_token=token, lease_until=now + dt.timedelta(seconds=conf.lease_seconds())
        )
    return list(
        OutboxMessage.objects.filter(pk__in=ids, claim_token=token)
        .select_related("robot", "recipient").order_by("next_attempt_at", "id")
    )


def _mine(message: OutboxMessage, token: str):
    return OutboxMessage.objects.filter(pk=message.pk, claim_token=token, status=S.SENDING)


def _take_slot(message: OutboxMessage, token: str, now) -> str | None:
    """Renew the lease and, for robots, take a rate-limit slot; None when the message may be sent now."""
    lease = now + dt.timedelta(seconds=conf.lease_seconds())
    with transaction.atomic():
        if message.channel == OutboxMessage.Channel.ROBOT and message.robot_id:
            # The robot row lock makes count-then-insert atomic across workers.
            robot = Robot.objects.select_for_update().filter(pk=message.robot_id).first()
            if robot is None or not robot.is_active:
                updated = _mine(message, token).update(
                    status=S.FAILED, lease_until=None, last_error="机器人已停用或已删除 / robot disabled or deleted"
                )
                return "failed" if updated else "skipped"
            recent = RobotSend.objects.filter(robot=robot, at__gt=now - WINDOW)
            used = recent.count()
            limit = max(robot.max_per_minute, 1)
            if used >= limit:
                frees_at = recent.order_by("at").values_list("at", flat=True)[used - limit] + WINDOW
                updated = _mine(message, token).update(
                    status=S.PENDING, lease_until=None, next_attempt_at=frees_at + dt.timedelta(milliseconds=50)
                )
                return "postponed" if updated else "skipped"
            if not _mine(message, token).update(lease_until=lease, attempts=F("attempts") + 1, last_attempt_at=now):
                return "skipped"
            RobotSend.objects.create(robot=robot, at=now)
            return None
        if not _mine(message, token).update(lease_until=lease, attempts=F("attempts") + 1, last_attempt_at=now):
            return "skipped"
        return None


def _deliver_one(message: OutboxMessage, token: str) -> str:
    now = timezone.now()
    outcome = _take_slot(message, token, now)
    if outcome is not None:
        return outcome
    attempts = message.attempts + 1
    try:
        transports.send(message)
    except transports.SendFailure as exc:
        return _record_failure(message, token, attempts, exc)
    except Exception as exc:  # a bug or an unexpected library error: keep the message, retry later
        logger.exception("outbox message %s: unexpected error while sending", message.pk)
        return _record_failure(message, token, attempts, transports.SendFailure(repr(exc)))
    updated = _mine(message, token).update(status=S.SENT, sent_at=timezone.now(), lease_until=None)
    if not updated:
        # Someone took the row over while we were sending: this is the at-least-once window.
        logger.warning("outbox message %s was sent after its lease was taken over", message.pk)
    return "sent"


def _record_failure(message: OutboxMessage, token: str, attempts: int, exc: transports.SendFailure) -> str:
    now = timezone.now()
    error = str(exc)[:2000]
    logger.warning("outbox message %s attempt %s failed (%s): %s", message.pk, attempts, exc.kind, error)
    if exc.kind == transports.RATE_LIMITED:
        # The platform's own limit: wait it out; this does not count as a failed attempt.
        wait = dt.timedelta(seconds=exc.retry_after or 60)
        updated = _mine(message, token).update(
            status=S.PENDING, lease_until=None, next_attempt_at=now + wait, last_error=error,
            attempts=F("attempts") - 1,
        )
        return "postponed" if updated else "skipped"
    if exc.kind == transports.CONFIG or attempts >= conf.max_attempts():
        updated = _mine(message, token).update(status=S.FAILED, lease_until=None, last_error=error)
        return "failed" if updated else "skipped"
    wait = dt.timedelta(seconds=conf.backoff_seconds(attempts))
    updated = _mine(message, token).update(
        status=S.PENDING, lease_until=None, next_attempt_at=now + wait, last_error=error
    )
    return "retrying" if updated else "skipped"


def outbox_next_due_in() -> float | None:
    """Seconds until the next pending row (or expired lease) is due; None when nothing waits."""
    agg = OutboxMessage.objects.filter(status__in=[S.PENDING, S.SENDING]).aggregate(
        pending=Min("next_attempt_at", filter=Q(status=S.PENDING)),
        lease=Min("lease_until", filter=Q(status=S.SENDING)),
    )
    times = [t for t in (agg["pending"], agg["lease"]) if t is not None]
    if not times:
        return None
    return max((min(times) - timezone.now()).total_seconds(), 0.0)


def robot_sends_prune(*, older_than: dt.timedelta = dt.timedelta(hours=1)) -> int:
    """Drop rate-limit window rows nobody will count again."""
    deleted, _ = RobotSend.objects.filter(at__lt=timezone.now() - older_than).delete()
    return deleted
