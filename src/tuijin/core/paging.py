"""Paging for every list (pages and API): counts are capped so a page never counts a huge visible set.

Measured at scale M (docs/benchmarks.md), a regional manager sees ~250,000 of 1,000,000
activities. Counting them exactly took 0.4–0.7 s on SQLite, longer than everything else on the
page; counting at most COUNT_CAP + 1 row ids (no ORDER BY, no joins) takes a few milliseconds
whatever the size. Lists above the cap show "10,000+" (pages) or `count_capped: true` (API):
nobody pages through ten thousand rows, they filter.

A selector can also supply a second query shape for those large lists (`when_large`): see
followups.selectors.activity_list(walk_time_index=True).
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.paginator import Paginator
from django.db.models import Func, IntegerField, QuerySet
from django.utils.functional import cached_property

COUNT_CAP = 10_000


class NoIndex(Func):
    """`+column`: the same value, but the database may not use the column's index for it.

    SQLite's documented way to steer its planner (PostgreSQL accepts unary plus too). Used for
    large visible sets: a visibility condition on owner/customer then no longer drives the plan,
    so the database walks the index of the list's sort order and stops after one page, instead
    of collecting every visible row through the owner/customer indexes and sorting them.
    """

    template = "+%(expressions)s"
    output_field = IntegerField()


def capped_count(qs: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """(count, capped): the exact count up to `cap` (default COUNT_CAP), else (cap, True)."""
    cap = COUNT_CAP if cap is None else cap
    n = qs.order_by().values("pk")[: cap + 1].count()
    return (cap, True) if n > cap else (n, False)


class CappedPaginator(Paginator):
    """Django's Paginator with a capped count and an optional query shape for capped lists."""

    def __init__(self, object_list, per_page, *, when_large: Callable[[], QuerySet] | None = None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.when_large = when_large
        self.capped = False

    @cached_property
    def count(self) -> int:
        n, self.capped = capped_count(self.object_list)
        if self.capped and self.when_large is not None:
            self.object_list = self.when_large()
        return n

    def page(self, number):
        # Django clamps the last page to `count`; a capped count is not the end of the list.
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.capped and top + self.orphans >= self.count:
            top = self.count
        return self._get_page(self.object_list[bottom:top], number, self)


def page_slice(qs: QuerySet, *, page: int, page_size: int,
               when_large: Callable[[], QuerySet] | None = None) -> tuple[list, int, bool]:
    """(rows, count, capped) for the API's page/page_size parameters (already clamped)."""
    count, capped = capped_count(qs)
    if capped and when_large is not None:
        qs = when_large()
    start = (page - 1) * page_size
    return list(qs[start : start + page_size]), count, capped
