"""Helpers shared by the page views of every app: paging, htmx partial detection, mapping service errors
to responses. In core so that domain apps' own pages (goals, health, forecasting) need not import `web`."""

from __future__ import annotations

import datetime as dt

from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from tuijin.core.errors import ValidationFailed
from tuijin.core.paging import CappedPaginator
from tuijin.core.params import INT64_MAX, INT64_MIN

PAGE_SIZE = 25
STALE_MESSAGE = _("该记录已被他人修改，请刷新页面后重试")


def is_htmx_partial(request) -> bool:
    """An htmx swap wants only the fragment; a history restore wants the whole page."""
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def paginate(request, qs, per_page: int = PAGE_SIZE, *, when_large=None):
    """A page of qs; the count is capped (core.paging), when_large gives the query shape for capped lists."""
    return CappedPaginator(qs, per_page, when_large=when_large).get_page(request.GET.get("page"))


def int_or_none(value) -> int | None:
    """Lenient: None for anything that is not a 64-bit integer (query filters use core.params instead)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if INT64_MIN <= number <= INT64_MAX else None


def date_or_none(value) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None


def start_of_day(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def apply_errors(form, exc: ValidationFailed, field_map: dict[str, str] | None = None) -> None:
    """Put each service message next to its field; unknown fields go to the form's top."""
    for key, messages in exc.errors.items():
        name = (field_map or {}).get(key, key)
        for message in messages:
            if name in form.fields:
                form.add_error(name, message)
            else:
                form.add_error(None, message)


def error_page(request, message, *, status: int, title=None):
    return render(
        request, "web/error.html", {"title": title or _("无法完成操作"), "message": message}, status=status
    )
