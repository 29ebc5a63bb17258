"""Forecast accuracy (SPEC R4): forecast vs actually signed, per rep, team, region and period.

Definitions (also in docs/forecasting.md):

* Period: an ISO week (Monday–Sunday) or a calendar month, in local time.
* Snapshot: for each rep and period, the rep's last *submitted* report dated
  in the 7 days before the period starts — the forecast made going into it.
* Forecast F: sum of the snapshot's commit and likely lines whose expected
  signing date falls in the period (each opportunity once: a report names an
  opportunity at most once). Upside lines are not a forecast.
* Actual A: the won amount of those forecast opportunities closed (won) within
  the period. Separately, "won (all)" is every deal the rep won in the period,
  forecast or not.
* Deviation rate: |F − A| / F — how far the forecast was off, as a share of
  what was promised (the article's 280万 forecast vs 143万 signed = 49%).
  No forecast, no rate.
* Missed lines: forecast lines whose opportunity was not won within the period.

Everything is computed from a fixed number of queries, whatever the size.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from tuijin.org.models import OrgUnit, User
from tuijin.pipeline.models import Opportunity, Stage

from .models import DailyReport, ForecastLine
from .selectors import visible_rep_ids

LOOKBACK_DAYS = 7
FORECAST_CONFIDENCE = (ForecastLine.Confidence.COMMIT, ForecastLine.Confidence.LIKELY)
GROUPS = ("rep", "team", "region", "company")
ZERO = decimal.Decimal("0.00")
EARLIEST, LATEST = dt.date(2000, 1, 1), dt.date(2100, 12, 31)


@dataclass(frozen=True)
class Period:
    kind: str
    start: dt.date
    end: dt.date  # exclusive

    @property
    def label(self) -> str:
        if self.kind == "month":
            return self.start.strftime("%Y-%m")
        iso = self.start.isocalendar()
        return f"{iso.year}-W{iso.week:02d}"

    def contains(self, day: dt.date) -> bool:
        return self.start <= day < self.end


def period_of(kind: str, day: dt.date) -> Period:
    if kind == "month":
        start = day.replace(day=1)
        days = calendar.monthrange(start.year, start.month)[1]
        return Period("month", start, start + dt.timedelta(days=days))
    start = day - dt.timedelta(days=day.weekday())
    return Period("week", start, start + dt.timedelta(days=7))


def periods_between(kind: str, first: dt.date, last: dt.date) -> list[Period]:
    out, p = [], period_of(kind, first)
    while p.start <= last:
        out.append(p)
        p = period_of(kind, p.end)
    return out


def default_range(kind: str, today: dt.date | None = None) -> tuple[dt.date, dt.date]:
    """The last 12 weeks or 6 months up to and including the current one."""
    today = today or timezone.localdate()
    if kind == "month":
        first = today.replace(day=1)
        for _i in range(5):
            first = (first - dt.timedelta(days=1)).replace(day=1)
        return first, today
    return today - dt.timedelta(weeks=11), today


def rate(forecast: decimal.Decimal, actual: decimal.Decimal) -> decimal.Decimal | None:
    if not forecast:
        return None
    return (abs(forecast - actual) / forecast).quantize(decimal.Decimal("0.0001"))


class LineRow(NamedTuple):
    """The columns of a forecast line the figures need (full ForecastLine objects are fetched only for
    the lines a page lists: missed lines, the records behind one figure)."""

    pk: int
    report_id: int
    rep_id: int
    amount: decimal.Decimal
    expected_sign_date: dt.date
    opportunity_id: int
    opp_amount: decimal.Decimal
    opp_kind: str
    opp_closed_at: dt.datetime | None


@dataclass
class Cell:
    """The figures of one group in one period, with the records behind them (as light rows / counts)."""

    forecast: decimal.Decimal = ZERO
    actual: decimal.Decimal = ZERO
    won_all: decimal.Decimal = ZERO
    won_count: int = 0
    lines: list = field(default_factory=list)      # forecast lines (LineRow)
    hits: list = field(default_factory=list)       # forecast lines whose opportunity was won in the period

    @property
    def deviation(self) -> decimal.Decimal | None:
        return rate(self.forecast, self.actual)

    @property
    def missed(self) -> list:
        hit_ids = {ln.pk for ln in self.hits}
        return [ln for ln in self.lines if ln.pk not in hit_ids]


def _aware(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _local_date(value: dt.datetime, tz=None) -> dt.date:
    return value.astimezone(tz or timezone.get_current_timezone()).date()


class Accuracy:
    """Computes forecast vs actual for the reps `user` may see, over the periods of a range."""

    def __init__(self, *, user: User, kind: str = "week", start: dt.date | None = None,
                 end: dt.date | None = None, rep_ids: set[int] | None = None):
        self.kind = "month" if kind == "month" else "week"
        d_start, d_end = default_range(self.kind)
        # Clamped: dates near the calendar's ends would overflow period arithmetic.
        start, end = (min(max(d, EARLIEST), LATEST) if d else None for d in (start, end))
        self.periods = periods_between(self.kind, start or d_start, end or d_end)[:60]
        ids = visible_rep_ids(user)
        if rep_ids is not None:
            ids = rep_ids if ids is None else ids & rep_ids
        self.rep_ids = ids
        self._load()

    # -- loading: one query each ------------------------------------------------------------------------

    def _load(self) -> None:
        if not self.periods:
            self.lines, self.won_totals, self.users, self.units, self.snapshot = [], [], {}, {}, {}
            return
        first, last = self.periods[0], self.periods[-1]
        reports = DailyReport.objects.filter(
            status=DailyReport.Status.SUBMITTED,
            date__gte=first.start - dt.timedelta(days=LOOKBACK_DAYS), date__lt=last.start,
        )
        if self.rep_ids is not None:
            reports = reports.filter(rep_id__in=self.rep_ids)
        by_rep: dict[int, list[tuple[dt.date, int]]] = defaultdict(list)
        for pk, rep_id, day in reports.values_list("pk", "rep_id", "date"):
            by_rep[rep_id].append((day, pk))
        self.snapshot: dict[tuple[int, Period], int] = {}
        for rep_id, rows in by_rep.items():
            rows.sort()
            for p in self.periods:
                lo = p.start - dt.timedelta(days=LOOKBACK_DAYS)
                candidates = [pk for day, pk in rows if lo <= day < p.start]
                if candidates:
                    self.snapshot[(rep_id, p)] = candidates[-1]
        wanted = set(self.snapshot.values())
        # Light rows, not model instances: at 200 reps × 12 weeks (≈ 9,000 lines, 8,000 wins) building full
        # objects with their related rows took seconds. Objects are fetched for the lines a page lists.
        self.lines = [LineRow(*r) for r in (
            ForecastLine.objects.filter(report_id__in=wanted, confidence__in=FORECAST_CONFIDENCE)
            .order_by("report__date", "report_id", "position", "id")
            .values_list("id", "report_id", "report__rep_id", "amount", "expected_sign_date", "opportunity_id",
                         "opportunity__amount", "opportunity__stage__kind", "opportunity__closed_at"))
        ] if wanted else []
        # Won deals: summed and counted per owner and period by the database (periods as local-time bounds).
        bucket = Case(*[When(closed_at__gte=_aware(p.start), closed_at__lt=_aware(p.end), then=Value(i))
                        for i, p in enumerate(self.periods)], default=None, output_field=IntegerField())
        won = self._won_qs(first.start, last.end)
        self.won_totals = [
            (r["owner_id"], self.periods[r["pi"]], r["total"] or ZERO, r["n"])
            for r in won.order_by().annotate(pi=bucket).values("pi", "owner_id")
            .annotate(total=Sum("amount"), n=Count("id")).order_by("pi", "owner_id") if r["pi"] is not None]
        user_ids = {ln.rep_id for ln in self.lines} | {o for o, _p, _t, _n in self.won_totals} | {
            rep for rep, _p in self.snapshot}
        self.users = {u.pk: u for u in User.objects.filter(pk__in=user_ids).select_related("org_unit")}
        self.units = {u.pk: u for u in OrgUnit.objects.all()}

    def _won_qs(self, start: dt.date, end: dt.date):
        """Deals won in [start, end) (local dates, end exclusive) by the reps in scope."""
        won = Opportunity.objects.filter(stage_id__in=list(Stage.objects.filter(kind=Stage.Kind.WON).values_list(
            "pk", flat=True)), closed_at__isnull=False, closed_at__gte=_aware(start), closed_at__lt=_aware(end))
        return won if self.rep_ids is None else won.filter(owner_id__in=self.rep_ids)

    # -- grouping --------------------------------------------------------------------------------------

    def region_of(self, unit: OrgUnit | None) -> OrgUnit | None:
        if unit is None:
            return None
        for pk in (int(x) for x in unit.path.strip("/").split("/") if x):
            candidate = self.units.get(pk)
            if candidate is not None and candidate.kind == OrgUnit.Kind.REGION:
                return candidate
        return None

    def key_of(self, group: str, rep_id: int):
        user = self.users.get(rep_id)
        if group == "rep":
            return rep_id
        if group == "company":
            return 0
        unit = self.units.get(user.org_unit_id) if user and user.org_unit_id else None
        if group == "region":
            region = self.region_of(unit)
            return region.pk if region else None
        return unit.pk if unit else None

    def label_of(self, group: str, key) -> str:
        if group == "company":
            return _("全部")
        if key is None:
            return _("未分组")
        if group == "rep":
            u = self.users.get(key)
            return u.label if u else f"#{key}"
        unit = self.units.get(key)
        return unit.name if unit else f"#{key}"

    def cells(self, group: str = "rep") -> dict[tuple, Cell]:
        """{(key, period): Cell} for every group key and period with any forecast or win (computed once per
        group: the page asks for the table, the series and the missed lines)."""
        group = group if group in GROUPS else "rep"
        cache = self.__dict__.setdefault("_cell_cache", {})
        if group not in cache:
            cache[group] = self._cells(group)
        return cache[group]

    def _cells(self, group: str) -> dict[tuple, Cell]:
        tz = timezone.get_current_timezone()
        out: dict[tuple, Cell] = defaultdict(Cell)
        period_by_report = {pk: p for (_rep, p), pk in self.snapshot.items()}
        for line in self.lines:
            p = period_by_report.get(line.report_id)
            if p is None or not p.contains(line.expected_sign_date):
                continue
            cell = out[(self.key_of(group, line.rep_id), p)]
            cell.forecast += line.amount
            cell.lines.append(line)
            if line.opp_kind == Stage.Kind.WON and line.opp_closed_at and p.contains(
                    _local_date(line.opp_closed_at, tz)):
                cell.actual += line.opp_amount
                cell.hits.append(line)
        for owner_id, p, total, n in self.won_totals:
            cell = out[(self.key_of(group, owner_id), p)]
            cell.won_all += total
            cell.won_count += n
        return dict(out)

    def table(self, group: str = "rep") -> list[dict]:
        """Rows ordered by period then label, each with its figures and record links."""
        cells = self.cells(group)
        base = reverse("forecasting:accuracy_records")  # once, not four times per row
        rows = []
        for (key, p), cell in cells.items():
            rows.append({
                "group": group, "key": key, "label": self.label_of(group, key), "period": p,
                "forecast": cell.forecast, "actual": cell.actual, "won_all": cell.won_all,
                "deviation": cell.deviation,
                "deviation_pct": float(cell.deviation * 100) if cell.deviation is not None else None,
                "line_count": len(cell.lines), "hit_count": len(cell.hits),
                "missed_count": len(cell.missed), "won_count": cell.won_count,
                "links": {w: records_url(kind=self.kind, start=p.start, group=group, key=key, which=w, base=base)
                          for w in ("forecast", "hit", "missed", "won")},
            })
        rows.sort(key=lambda r: (r["period"].start, r["label"]))
        return rows

    def series(self) -> list[dict]:
        """Company-wide (everything visible) figures per period, for the chart."""
        cells = self.cells("company")
        out = []
        for p in self.periods:
            cell = cells.get((0, p), Cell())
            out.append({"period": p, "label": p.label, "forecast": cell.forecast, "actual": cell.actual,
                        "won_all": cell.won_all, "deviation": cell.deviation,
                        "link": records_url(kind=self.kind, start=p.start, group="company", key=0,
                                            which="forecast")})
        return out

    def _full_lines(self, rows: list) -> list[ForecastLine]:
        """ForecastLine objects (with report, rep, opportunity, customer, stage) for light rows, in order."""
        objs = ForecastLine.objects.select_related(
            "report", "report__rep", "opportunity", "opportunity__customer", "opportunity__stage", "opportunity__owner"
        ).in_bulk([r.pk for r in rows])
        return [objs[r.pk] for r in rows if r.pk in objs]

    def missed_lines(self, limit: int | None = None) -> list[dict]:
        """Missed forecast lines (company-wide, by period), at most `limit` of them as full objects."""
        cells = self.cells("company")
        picked = []
        for p in self.periods:
            cell = cells.get((0, p))
            if cell is not None:
                picked += [(p, ln) for ln in cell.missed]
        if limit is not None:
            picked = picked[:limit]
        full = {ln.pk: ln for ln in self._full_lines([ln for _p, ln in picked])}
        return [{"period": p, "line": full[ln.pk], "outcome": outcome(full[ln.pk], p)}
                for p, ln in picked if ln.pk in full]

    def records(self, *, start: dt.date, group: str, key, which: str):
        """The records behind one figure: forecast/missed lines, or the won opportunities (hit, won)."""
        p = period_of(self.kind, min(max(start, EARLIEST), LATEST))
        cell = self.cells(group).get((key, p), Cell())
        if which == "won":
            won = (self._won_qs(p.start, p.end).select_related("customer", "owner", "stage")
                   .order_by("closed_at", "id"))
            return [o for o in won if self.key_of(group, o.owner_id) == key]
        if which == "hit":
            # The won opportunities of the hit lines, whose amounts add up to the actual figure.
            return [ln.opportunity for ln in self._full_lines(cell.hits)]
        return self._full_lines(cell.missed if which == "missed" else cell.lines)


def outcome(line: ForecastLine, p: Period) -> str:
    opp = line.opportunity
    if opp.stage.kind == Stage.Kind.WON and opp.closed_at:
        day = _local_date(opp.closed_at)
        if p.contains(day):
            return _("已签约")
        return _("签约于%(day)s（不在本期）") % {"day": day.isoformat()}
    if opp.stage.kind == Stage.Kind.LOST:
        return _("已输单")
    return _("仍在跟进（%(stage)s）") % {"stage": opp.stage}


def records_url(*, kind: str, start: dt.date, group: str, key, which: str, base: str | None = None) -> str:
    # Built by hand: a table of 200 reps × 12 weeks has ~10,000 links, and urlencode was most of the page's
    # time. Every part is a fixed word, an ISO date or an integer (nothing to escape); anything else is
    # encoded the slow way.
    if kind in ("week", "month") and group in GROUPS and which in ("forecast", "hit", "missed", "won") and (
            key is None or isinstance(key, int)):
        query = f"period={kind}&start={start.isoformat()}&group={group}&which={which}"
        if key is not None:
            query += f"&key={key}"
    else:
        params = {"period": kind, "start": start.isoformat(), "group": group, "which": which}
        if key is not None:
            params["key"] = key
        query = urlencode(params)
    return (base or reverse("forecasting:accuracy_records")) + "?" + query
