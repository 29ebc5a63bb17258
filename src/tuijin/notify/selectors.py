"""Reads: a user's own notifications (nobody sees another's), and the robots/outbox for admins."""

from __future__ import annotations

from django.db.models import BooleanField, Count, ExpressionWrapper, Q, QuerySet

from tuijin.core.errors import Forbidden, NotFound
from tuijin.org.models import User

from .models import Notification, OutboxMessage, Robot


def notification_list(*, user: User, unread_only: bool = False) -> QuerySet[Notification]:
    """The user's inbox: unread first, then newest first."""
    qs = Notification.objects.filter(recipient=user)
    if unread_only:
        qs = qs.filter(read_at__isnull=True)
    return qs.annotate(
        is_read=ExpressionWrapper(Q(read_at__isnull=False), output_field=BooleanField())
    ).order_by("is_read", "-created_at", "-id")


def notification_get(*, user: User, pk: int) -> Notification:
    """One of the user's own notifications; another user's is NotFound (404), like a missing one."""
    try:
        return Notification.objects.get(pk=pk, recipient=user)
    except (Notification.DoesNotExist, ValueError, TypeError):
        raise NotFound("notification")


def unread_count(*, user: User) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).count()


def _require_admin(user: User) -> None:
    if user is None or getattr(user, "role", None) != User.Role.ADMIN:
        raise Forbidden("admin only")


def robot_list(*, user: User) -> QuerySet[Robot]:
    _require_admin(user)
    return Robot.objects.select_related("org_unit").order_by("name", "id")


def robot_get(*, user: User, pk: int) -> Robot:
    _require_admin(user)
    try:
        return Robot.objects.select_related("org_unit").get(pk=pk)
    except (Robot.DoesNotExist, ValueError, TypeError):
        raise NotFound("robot")


def outbox_list(*, user: User, status: str = "", channel: str = "", robot_id: int | None = None
                ) -> QuerySet[OutboxMessage]:
    """The outbox for admins, newest first; filter by status, channel or robot."""
    _require_admin(user)
    qs = OutboxMessage.objects.select_related("robot", "recipient").order_by("-id")
    if status in OutboxMessage.Status.values:
        qs = qs.filter(status=status)
    if channel in OutboxMessage.Channel.values:
        qs = qs.filter(channel=channel)
    if robot_id:
        qs = qs.filter(robot_id=robot_id)
    return qs


def outbox_get(*, user: User, pk: int) -> OutboxMessage:
    _require_admin(user)
    try:
        return OutboxMessage.objects.select_related("robot").get(pk=pk)
    except (OutboxMessage.DoesNotExist, ValueError, TypeError):
        raise NotFound("outbox message")


def outbox_status_counts(*, user: User) -> dict[str, int]:
    """{status: count} for the outbox page's filter badges (each links to its filtered list)."""
    _require_admin(user)
    rows = OutboxMessage.objects.values("status").annotate(n=Count("id")).order_by()
    counts = {s: 0 for s in OutboxMessage.Status.values}
    counts.update({r["status"]: r["n"] for r in rows})
    return counts
