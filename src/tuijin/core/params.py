"""Parsing of query-string and form parameters (ids, whole numbers, dates) shared by every page and export.

A value the database or the date arithmetic cannot hold (an id beyond 64 bits, a day count of 10**20,
year 1) used to reach the query and come back as a 500. These helpers check the value where it enters
and raise `BadParameter` naming the parameter: pages answer 400 with the message
(`tuijin.web.middleware.BadParameterMiddleware`), the API 422 (it is a `ValidationFailed`).
An absent or empty parameter is simply "not given"; search text is limited in length.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from django.utils.translation import gettext as _

from .errors import ValidationFailed

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# Far enough for any business date, near enough that converting a day to an aware datetime in any
# time zone, or adding a year to it, cannot leave Python's date range.
DATE_MIN, DATE_MAX = dt.date(1900, 1, 1), dt.date(2999, 12, 31)

# ASCII digits only: int() also accepts other scripts' digits ("١٢") and "1_000".
_INT = re.compile(r"[+-]?[0-9]{1,19}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class BadParameter(ValidationFailed):
    """A query or form parameter that cannot be used; `name` is the parameter as the client sent it."""

    def __init__(self, name: str, message: str):
        self.name = name
        self.message = message
        super().__init__({name: [message]})


def _raw(params: Mapping, name: str) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def int_param(params: Mapping, name: str, *, default: int | None = None, min_value: int = INT64_MIN,
              max_value: int = INT64_MAX) -> int | None:
    """The whole number in params[name], default when absent or empty; BadParameter when not a whole
    number in [min_value, max_value]."""
    raw = _raw(params, name)
    if raw is None:
        return default
    value = int(raw) if _INT.fullmatch(raw) else None
    if value is None or not min_value <= value <= max_value:
        raise BadParameter(name, _("参数 %(name)s 无效：须为 %(min)s 到 %(max)s 之间的整数") % {
            "name": name, "min": min_value, "max": max_value})
    return value


def text_param(params: Mapping, name: str, *, max_length: int = 200) -> str:
    """Free text such as a search box, stripped; "" when absent. BadParameter when longer than
    max_length: SQLite refuses LIKE patterns over 50,000 bytes, and no search needs that much."""
    value = str(params.get(name) or "").strip()
    if len(value) > max_length:
        raise BadParameter(name, _("参数 %(name)s 无效：最多 %(max)s 个字符") % {"name": name, "max": max_length})
    return value


def id_param(params: Mapping, name: str) -> int | None:
    """A record id (a positive 64-bit integer), None when absent or empty."""
    return int_param(params, name, min_value=1)


def date_param(params: Mapping, name: str, *, default: dt.date | None = None) -> dt.date | None:
    """The date (YYYY-MM-DD) in params[name], default when absent or empty; BadParameter when it is
    not a real day between DATE_MIN and DATE_MAX."""
    raw = _raw(params, name)
    if raw is None:
        return default
    try:
        value = dt.date.fromisoformat(raw) if _DATE.fullmatch(raw) else None
    except ValueError:
        value = None
    if value is None or not DATE_MIN <= value <= DATE_MAX:
        raise BadParameter(name, _("参数 %(name)s 无效：须为 %(min)s 到 %(max)s 之间的日期（年-月-日）") % {
            "name": name, "min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()})
    return value
