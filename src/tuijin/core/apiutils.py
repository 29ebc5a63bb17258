"""Shared pieces for the ninja routers of every app: pagination, history output, error shapes, the owner
picked by id and body field names in errors (customers and pipeline both take `owner_id`)."""

from __future__ import annotations

import datetime as dt
import decimal
from contextlib import contextmanager
from typing import Annotated, Any

from django.contrib.auth import get_user_model
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from ninja import Schema
from pydantic import PlainSerializer, WithJsonSchema

from .errors import ValidationFailed
from .paging import page_slice

MAX_PAGE_SIZE = 200
# Beyond any real list; keeps OFFSET inside 64 bits (the fuzzing suite sent page=10**22: a 500 on SQLite).
MAX_PAGE = 1_000_000


CENT = decimal.Decimal("0.01")
MONEY_JSON_SCHEMA = {"type": "string", "format": "money", "pattern": r"^-?\d+\.\d{2}$", "example": "1278906.80"}


def money(value) -> str | None:
    """An amount as the API writes it: a string with exactly two decimals ("4080000.00"), half up; None stays None.

    Decimal columns come back from aggregates with the database's scale ("1278906.80000000" on PostgreSQL
    sums, "4080000" on SQLite), so every amount in a response goes through here (docs/api.md)."""
    if value is None:
        return None
    return f"{decimal.Decimal(str(value)).quantize(CENT, rounding=decimal.ROUND_HALF_UP):f}"


# The type of every money field in a response schema (never in request bodies: clients may send "100000").
Money = Annotated[decimal.Decimal, PlainSerializer(money, return_type=str), WithJsonSchema(MONEY_JSON_SCHEMA)]


class HistoryEvent(Schema):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    request_id: str
    changes: dict[str, Any]


class PageMeta(Schema):
    """Every paged list response carries these beside its items."""

    count: int
    count_capped: bool = False


class HistoryOut(Schema):
    items: list[HistoryEvent]
    count: int


def paginate(qs: QuerySet, page: int, page_size: int, *, when_large=None) -> dict:
    """{"items": [...], "count": N, "count_capped": bool} with page clamped to sane bounds.

    count is exact up to core.paging.COUNT_CAP; above it, count is the cap and count_capped is true.
    """
    page = min(max(int(page or 1), 1), MAX_PAGE)
    page_size = min(max(int(page_size or 20), 1), MAX_PAGE_SIZE)
    items, count, capped = page_slice(qs, page=page, page_size=page_size, when_large=when_large)
    return {"items": items, "count": count, "count_capped": capped}


def history_out(events) -> dict:
    items = [
        {
            "seq": e.seq,
            "at": e.created_at,
            "actor": e.actor.label if e.actor else e.actor_label,
            "action": e.action,
            "request_id": e.request_id,
            "changes": e.changes,
        }
        for e in events
    ]
    return {"items": items, "count": len(items)}


def validation_detail(errors: dict[str, list[str]], where: str = "body") -> list[dict]:
    """Same shape as ninja's own 422 errors, so clients handle one format."""
    return [
        {"type": "value_error", "loc": [where, *field.split(".")], "msg": msg}
        for field, msgs in errors.items()
        for msg in msgs
    ]


class OwnerOut(Schema):
    id: int
    username: str
    display_name: str


def owner_for(request, owner_id: int | None):
    """The user behind `owner_id`; whether the caller may assign them is the service's rule (owner_check)."""
    if owner_id is None:
        return request.user
    owner = get_user_model().objects.filter(pk=owner_id).first()
    if owner is None:  # the service's own wording for someone you may not pick: a missing id reveals nothing
        raise ValidationFailed({"owner_id": _("不可选择该负责人：只能指定你自己或你团队中的人员")})
    return owner


@contextmanager
def body_fields(**names: str):
    """Services name model fields (`owner`); the API reports the body field the client sent (`owner_id`)."""
    try:
        yield
    except ValidationFailed as exc:
        raise ValidationFailed({names.get(k, k): v for k, v in exc.errors.items()}) from exc
