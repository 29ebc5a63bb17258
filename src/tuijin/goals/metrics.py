"""How each KPI (MetricKind) is computed from the records — never typed in (SPEC G1, P6).

Every metric is registered in code under its MetricKind.key and provides:

- `per_owner(start, end, owners)`: one GROUP BY query returning
  {owner_id: (numerator, denominator)}; a scope's value combines its owners'
  parts (sum of numerators, or sum of numerators / sum of denominators for
  ratios and averages), so a whole org tree is computed with one query;
- `records(start, end, owners)`: (record kind, queryset) of the rows behind
  the figure, so every figure can link to them.

`owners` is a set of user ids, or a queryset of ids (a subquery). Periods are
inclusive dates, turned into [start 00:00, end+1 00:00) in the site's time zone.
The precise formulas are documented in docs/goals.md.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import (
    Case,
    Count,
    DateField,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.utils import timezone

from tuijin.customers.models import Customer
from tuijin.followups.models import Activity
from tuijin.org.models import OrgUnit, User
from tuijin.pipeline.models import Opportunity, Stage

ZERO = Decimal("0")
CENT = Decimal("0.01")
REPEAT_WINDOW = dt.timedelta(days=183)  # "within 6 months"
REFERENCE_TAGS = ("标杆客户", "标杆案例")


def q2(value) -> Decimal:
    return Decimal(value or 0).quantize(CENT, rounding=ROUND_HALF_UP)


def day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """Inclusive dates → half-open aware datetimes."""
    return day_start(start), day_start(end + dt.timedelta(days=1))


def add_months(day: dt.date, months: int) -> dt.date:
    m = day.month - 1 + months
    y = day.year + m // 12
    m = m % 12 + 1
    return dt.date(y, m, min(day.day, calendar.monthrange(y, m)[1]))


def month_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    start = day.replace(day=1)
    return start, add_months(start, 1) - dt.timedelta(days=1)


def quarter_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    start = dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return start, add_months(start, 3) - dt.timedelta(days=1)


def local_month(field: str, first: dt.date, last: dt.date) -> Case:
    """The local month (first day, in TIME_ZONE) of a datetime column, computed by the database.

    `TruncMonth` on SQLite calls a Python function for every row (Django's
    `django_datetime_trunc`), which dominated grouped-by-month aggregates over
    100,000 deals. Here the month boundaries of [first, last] are computed in
    Python as aware datetimes (so any time zone, with or without DST, is
    right) and the database only compares: `CASE WHEN col < b1 THEN m0 WHEN
    col < b2 THEN m1 ...`. Rows outside [first, last] (and NULLs) give NULL;
    filter the range first. Works the same on SQLite and PostgreSQL.
    """
    whens = []
    month = first.replace(day=1)
    lower = day_start(month)
    while month <= last:
        nxt = add_months(month, 1)
        whens.append(When(**{f"{field}__gte": lower, f"{field}__lt": day_start(nxt)}, then=Value(month)))
        month, lower = nxt, day_start(nxt)
    return Case(*whens, default=None, output_field=DateField())


def previous_period(start: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The previous comparable period (环比): the previous month/quarter/year, else the same length before."""
    if start.day == 1 and (end + dt.timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        p_start = add_months(start, -months)
        return p_start, start - dt.timedelta(days=1)
    length = (end - start).days + 1
    return start - dt.timedelta(days=length), start - dt.timedelta(days=1)


def unit_owner_ids(unit: OrgUnit) -> QuerySet:
    """Everyone in the unit's subtree, as a subquery."""
    return User.objects.filter(org_unit__path__startswith=unit.path).values("pk")


def _owner_filter(qs: QuerySet, owners, field: str = "owner_id") -> QuerySet:
    if owners is None:
        return qs
    return qs.filter(**{f"{field}__in": owners})


def _won() -> QuerySet:
    return Opportunity.objects.filter(stage__kind=Stage.Kind.WON)


def _won_in(start, end, owners) -> QuerySet:
    s, e = bounds(start, end)
    return _owner_filter(_won().filter(closed_at__gte=s, closed_at__lt=e), owners)


def _first_won_in(s: dt.datetime, e: dt.datetime, owners) -> QuerySet:
    """Won deals closed in [s, e) that are the customer's first won deal ever."""
    earlier = _won().filter(customer_id=OuterRef("customer_id"), closed_at__lt=OuterRef("closed_at"))
    return _owner_filter(
        _won().filter(closed_at__gte=s, closed_at__lt=e).annotate(has_earlier=Exists(earlier)).filter(
            has_earlier=False), owners)


@dataclass(frozen=True)
class Metric:
    key: str
    ratio: bool  # combine as sum(num)/sum(den) (× scale) instead of sum(num)
    scale: Decimal
    record_kind: str  # opportunity / customer / activity
    _per_owner: Callable
    _records: Callable

    def per_owner(self, start: dt.date, end: dt.date, owners=None) -> dict[int, tuple[Decimal, Decimal]]:
        return {
            row["owner_id"]: (Decimal(row["num"] or 0), Decimal(row.get("den") or 0))
            for row in self._per_owner(start, end, owners)
        }

    def combine(self, parts) -> Decimal:
        """The scope's value from its owners' (numerator, denominator) parts."""
        num = sum((p[0] for p in parts), ZERO)
        if not self.ratio:
            return q2(num)
        den = sum((p[1] for p in parts), ZERO)
        return q2(num * self.scale / den) if den else ZERO

    def value(self, start: dt.date, end: dt.date, owners=None) -> Decimal:
        return self.combine(self.per_owner(start, end, owners).values())

    def records(self, start: dt.date, end: dt.date, owners=None) -> QuerySet:
        return self._records(start, end, owners)


# --------------------------------------------------------------------------- the registered metrics

def _revenue_rows(start, end, owners):
    return _won_in(start, end, owners).order_by().values("owner_id").annotate(num=Sum("amount"))


def _first_order_rows(start, end, owners):
    s, e = bounds(start, end)
    return _first_won_in(s, e, owners).order_by().values("owner_id").annotate(num=Sum("amount"), den=Count("id"))


def _first_order_records(start, end, owners):
    s, e = bounds(start, end)
    return _first_won_in(s, e, owners)


def _repeat_cohort(start, end, owners):
    """First won deals closed in the 6 months up to the period's end, marked when a second one followed."""
    _s, e = bounds(start, end)
    later = _won().filter(
        customer_id=OuterRef("customer_id"),
        closed_at__gt=OuterRef("closed_at"),
        closed_at__lt=e,
        closed_at__lte=ExpressionWrapper(OuterRef("closed_at") + REPEAT_WINDOW, output_field=DateTimeField()),
    )
    return _first_won_in(e - REPEAT_WINDOW, e, owners).annotate(has_second=Exists(later))


def _repeat_rows(start, end, owners):
    return _repeat_cohort(start, end, owners).order_by().values("owner_id").annotate(
        num=Count("id", filter=Q(has_second=True)), den=Count("id"))


def _reference_records(start, end, owners):
    s, e = bounds(start, end)
    qs = _owner_filter(Customer.objects.filter(created_at__gte=s, created_at__lt=e), owners)
    return qs.filter(pk__in=reference_customer_ids(qs))


def reference_customer_ids(qs: QuerySet) -> list[int]:
    """Customers of `qs` carrying a reference tag.

    JSON "contains" is not portable (SQLite lacks it), so tags are checked in
    Python over the period's new customers only — a small set.
    """
    return [pk for pk, tags in qs.values_list("pk", "tags") if set(tags or ()) & set(REFERENCE_TAGS)]


def _reference_rows(start, end, owners):
    return _reference_records(start, end, owners).order_by().values("owner_id").annotate(num=Count("id"))


def _lead_records(start, end, owners):
    s, e = bounds(start, end)
    return _owner_filter(
        Customer.objects.filter(created_at__gte=s, created_at__lt=e).filter(
            Q(status=Customer.Status.LEAD) | ~Q(source="")), owners)


def _lead_rows(start, end, owners):
    return _lead_records(start, end, owners).order_by().values("owner_id").annotate(num=Count("id"))


def _activity_records(start, end, owners):
    s, e = bounds(start, end)
    return _owner_filter(Activity.objects.filter(occurred_at__gte=s, occurred_at__lt=e), owners)


def _activity_rows(start, end, owners):
    return _activity_records(start, end, owners).order_by().values("owner_id").annotate(num=Count("id"))


METRICS: dict[str, Metric] = {
    m.key: m
    for m in [
        Metric("signed_revenue", False, Decimal(1), "opportunity", _revenue_rows, _won_in),
        Metric("new_customer_first_order_avg", True, Decimal(1), "opportunity", _first_order_rows,
               _first_order_records),
        Metric("repeat_deal_rate_6m", True, Decimal(100), "opportunity", _repeat_rows, _repeat_cohort),
        Metric("reference_cases", False, Decimal(1), "customer", _reference_rows, _reference_records),
        Metric("new_leads", False, Decimal(1), "customer", _lead_rows, _lead_records),
        Metric("activities", False, Decimal(1), "activity", _activity_rows, _activity_records),
    ]
}


def register(metric: Metric) -> None:
    """More metric kinds: add a MetricKind row with this key and register its functions here."""
    METRICS[metric.key] = metric


def get_metric(key: str) -> Metric:
    return METRICS[key]


def value_for_unit(key: str, unit: OrgUnit, start: dt.date, end: dt.date) -> Decimal:
    return get_metric(key).value(start, end, unit_owner_ids(unit))


def value_for_user(key: str, user_id: int, start: dt.date, end: dt.date) -> Decimal:
    return get_metric(key).value(start, end, {user_id})
