"""Query parameters of the goals pages and API: a day (`on`) within sane bounds.

A day far outside any plan (0001-01-01, 9999-12-31) made date arithmetic in
the boards overflow (a 500). Days are refused outside DATE_MIN..DATE_MAX with
a message naming the parameter: 422 on the API, a 400 page on the web.
"""

from __future__ import annotations

import datetime as dt

from django.utils.translation import gettext as _

from tuijin.core.params import BadParameter

# Narrower than core.params' 1900..2999: goal periods are planned within these years.
DATE_MIN = dt.date(2000, 1, 1)
DATE_MAX = dt.date(2100, 12, 31)


def day(value, *, field: str = "on") -> dt.date | None:
    """The ISO day in `value`, None when blank; BadParameter when unparsable or outside DATE_MIN..DATE_MAX."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, dt.date):
        parsed = value
    else:
        try:
            parsed = dt.date.fromisoformat(str(value).strip())
        except ValueError:
            raise BadParameter(field, _("请输入有效日期（YYYY-MM-DD）"))
    if not (DATE_MIN <= parsed <= DATE_MAX):
        raise BadParameter(field, _("日期须在 %(min)s 到 %(max)s 之间") % {
            "min": DATE_MIN.isoformat(), "max": DATE_MAX.isoformat()})
    return parsed
