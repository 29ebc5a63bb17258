"""Time rules and adapters of the health app: ISO weeks, the alignment deadline, light settings, pace.

- Weeks are ISO weeks, named by their Monday (`week_start`).
- The deadline of a week is `settings.TUIJIN_ALIGNMENT_DEADLINE` ("MON 12:00"
  by default), a weekday and time in the site time zone (Asia/Shanghai),
  counted from that week's Monday: "MON 12:00" is Monday noon of the week
  itself, "FRI 18:00" its Friday evening.
- Pace comes from the goals app (`tuijin.goals.selectors.rep_pace`, or the
  bulk `reps_pace` when it exists); without it every rep has no pace and
  lights are decided by staleness alone.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import zoneinfo

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

WEEKDAYS = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
_DEADLINE_RE = re.compile(r"^\s*(MON|TUE|WED|THU|FRI|SAT|SUN)\s+([01]?\d|2[0-3]):([0-5]\d)\s*$", re.I)


def parse_deadline(text: str) -> tuple[int, dt.time]:
    """"MON 12:00" → (0, 12:00); ImproperlyConfigured on anything else."""
    m = _DEADLINE_RE.match(text or "")
    if not m:
        raise ImproperlyConfigured(
            f"TUIJIN_ALIGNMENT_DEADLINE must look like 'MON 12:00' (weekday HH:MM), not {text!r}")
    return WEEKDAYS.index(m.group(1).upper()), dt.time(int(m.group(2)), int(m.group(3)))


def week_start_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def local_today(now: dt.datetime | None = None) -> dt.date:
    return timezone.localtime(now or timezone.now()).date()


def deadline_for(week_start: dt.date) -> dt.datetime:
    weekday, at = parse_deadline(getattr(settings, "TUIJIN_ALIGNMENT_DEADLINE", "MON 12:00"))
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return dt.datetime.combine(week_start + dt.timedelta(days=weekday), at, tzinfo=tz)


def open_week(now: dt.datetime | None = None) -> dt.date:
    """The week a rep submits for now: this week before its deadline, else next week."""
    now = now or timezone.now()
    this = week_start_of(local_today(now))
    return this if now < deadline_for(this) else this + dt.timedelta(days=7)


def parse_week(value) -> dt.date | None:
    """A date ("2026-11-23") or ISO week ("2026-W48") → that week's Monday; None when unparsable."""
    if isinstance(value, dt.date):
        return week_start_of(value)
    text = str(value or "").strip()
    m = re.match(r"^(\d{4})-?W(\d{1,2})$", text, re.I)
    try:
        if m:
            return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
        return week_start_of(dt.date.fromisoformat(text))
    except ValueError:
        return None


def ratio_of(pace: dict | None) -> decimal.Decimal | None:
    if not pace:
        return None
    ratio = pace.get("ratio")
    if ratio is None:
        return None
    try:
        return decimal.Decimal(str(ratio))
    except decimal.InvalidOperation:
        return None


def _goals_selectors():
    try:
        from tuijin.goals import selectors
    except ImportError:  # the goals app does not provide pace yet
        return None
    return selectors


def paces(*, reps, on_date: dt.date) -> dict[int, dict | None]:
    """{rep id: rep_pace(...) or None} from the goals app; bulk when it offers `reps_pace`."""
    selectors = _goals_selectors()
    if selectors is None:
        return {r.pk: None for r in reps}
    bulk = getattr(selectors, "reps_pace", None)
    if bulk is not None:
        found = bulk(reps=reps, on_date=on_date) or {}
        return {r.pk: found.get(r.pk) for r in reps}
    one = getattr(selectors, "rep_pace", None)
    if one is None:
        return {r.pk: None for r in reps}
    return {r.pk: one(rep=r, on_date=on_date) for r in reps}
