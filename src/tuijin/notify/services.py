"""`notify(...)`: the one call domains use to tell people something (SPEC D1 outbound, G6, G7).

It writes in-app notifications and outbox rows inside the caller's transaction,
so a notification exists exactly when the change that caused it is committed.
Delivery of outbox rows (e-mail, robots) happens later in the worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone

from tuijin.org.models import User

from .models import Notification, OutboxMessage, Robot


def notify(
    *,
    recipients: Iterable[User],
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    dedupe_key: str,
    cc: Iterable[User] = (),
    email: bool = True,
    robots: bool = True,
) -> list[Notification]:
    """Notify `recipients` (and `cc`) once per `dedupe_key`; returns the notifications created now.

    Calling again with the same key creates nothing new, so periodic jobs can
    simply run again.
    """
    created: list[Notification] = []
    targets = [(u, False) for u in recipients] + [(u, True) for u in cc]
    seen: set[int] = set()
    with transaction.atomic():
        for user, is_cc in targets:
            if user is None or user.pk in seen or not user.is_active:
                continue
            seen.add(user.pk)
            n = _create_once(
                Notification,
                dict(recipient=user, dedupe_key=dedupe_key[:200]),
                dict(kind=kind, title=title[:200], body=body, link=link[:500], is_cc=is_cc),
            )
            if n is None:
                continue
            created.append(n)
            if email and user.email:
                _create_once(
                    OutboxMessage,
                    dict(dedupe_key=f"email:{user.pk}:{dedupe_key}"[:255]),
                    dict(channel=OutboxMessage.Channel.EMAIL, to_email=user.email, kind=kind,
                         subject=title[:200], body=body, link=link[:500], next_attempt_at=timezone.now()),
                )
        if robots and created:
            for robot in Robot.objects.filter(is_active=True):
                if robot.kinds and kind not in robot.kinds:
                    continue
                _create_once(
                    OutboxMessage,
                    dict(dedupe_key=f"robot:{robot.pk}:{dedupe_key}"[:255]),
                    dict(channel=OutboxMessage.Channel.ROBOT, robot=robot, kind=kind, subject=title[:200],
                         body=body, link=link[:500], next_attempt_at=timezone.now()),
                )
    return created


def _create_once(model, keys: dict, values: dict):
    """Insert unless the dedupe key exists; a concurrent insert of the same key is not an error."""
    if model.objects.filter(**keys).exists():
        return None
    try:
        with transaction.atomic():
            return model.objects.create(**keys, **values)
    except IntegrityError:
        return None


@transaction.atomic
def notification_mark_read(*, actor: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the actor's own notifications read (all unread when ids is None)."""
    qs = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    if notification_ids is not None:
        qs = qs.filter(pk__in=list(notification_ids))
    return qs.update(read_at=timezone.now())
