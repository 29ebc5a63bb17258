"""API of tuijin.notify: the caller's own notifications (list, one, unread count, mark read).

Another user's notification is a 404, exactly like a missing one.
"""

from __future__ import annotations

import datetime as dt

from ninja import Router, Schema

from tuijin.core.apiutils import PageMeta, paginate
from tuijin.core.errors import ValidationFailed
from tuijin.core.limits import bounded_list

from .selectors import notification_get, notification_list, unread_count
from .services import notification_mark_read

router = Router(tags=["notify"])


class NotificationOut(Schema):
    id: int
    kind: str
    title: str
    body: str
    link: str
    is_cc: bool
    created_at: dt.datetime
    read_at: dt.datetime | None = None


class NotificationPage(PageMeta):
    items: list[NotificationOut]


class UnreadCountOut(Schema):
    count: int
    records: str  # the list behind the figure (SPEC P6)


class MarkReadIn(Schema):
    ids: bounded_list(int, "ids") | None = None
    all: bool = False


class MarkReadOut(Schema):
    updated: int
    unread: int


@router.get("/notifications", response=NotificationPage)
def list_notifications(request, unread: bool = False, page: int = 1, page_size: int = 20):
    """The caller's notifications, unread first then newest; `unread=true` for unread only."""
    return paginate(notification_list(user=request.user, unread_only=unread), page, page_size)


@router.get("/notifications/unread-count", response=UnreadCountOut)
def get_unread_count(request):
    return {"count": unread_count(user=request.user), "records": "/api/notifications?unread=true"}


@router.post("/notifications/read", response={200: MarkReadOut, 404: dict, 422: dict})
def mark_read(request, payload: MarkReadIn):
    """Mark the given ids (or, with `all: true`, every unread notification) read."""
    if payload.all:
        updated = notification_mark_read(actor=request.user)
    elif payload.ids:
        updated = notification_mark_read(actor=request.user, notification_ids=payload.ids)
    else:
        raise ValidationFailed({"ids": ["请提供 ids 或 all=true / give ids or all=true"]})
    return {"updated": updated, "unread": unread_count(user=request.user)}


@router.get("/notifications/{notification_id}", response={200: NotificationOut, 404: dict})
def get_notification(request, notification_id: int):
    return notification_get(user=request.user, pk=notification_id)
