"""A known forecasting history in the week of Monday 2026-03-02, built straight in the database.

Services only accept reports for recent days, so history is written directly: this is
test setup, not a path the application offers.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tuijin.forecasting.models import DailyReport, ForecastEvidence, ForecastLine
from tuijin.pipeline.models import Opportunity
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

WEEK = dt.date(2026, 3, 2)
FRI = dt.date(2026, 2, 27)


def at(day: dt.date, hour: int = 15) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def deal(world, username, name, amount, *, won_on: dt.date | None = None, customer=None):
    user = world.users[username]
    opp = opportunity_create(actor=user, customer=customer or world.customers[username], name=name,
                             amount=str(amount))
    if won_on:
        opp = opportunity_move_stage(actor=user, opportunity=opp, stage=world.stages["won"], version=opp.version)
        Opportunity.objects.filter(pk=opp.pk).update(closed_at=at(won_on))
    return opp


def report(world, username, day, lines, *, status="submitted"):
    r = DailyReport.objects.create(rep=world.users[username], date=day, summary="历史日报", status=status,
                                   submitted_at=at(day, 18) if status == "submitted" else None)
    for i, (opp, amount, expected, confidence) in enumerate(lines):
        ln = ForecastLine.objects.create(report=r, position=i, opportunity=opp, amount=amount,
                                         expected_sign_date=expected, confidence=confidence)
        ForecastEvidence.objects.create(line=ln, activity=world.activities[username])
    return r


def build(world):
    """east1: forecast 150,000 for the week, 90,000 of it signed, plus an unforecast 40,000 win;
    east2: forecast 200,000, all signed. Month of March: east1 forecast 180,000."""
    a = deal(world, "rep.east1", "A单", 90000, won_on=dt.date(2026, 3, 4))
    b = deal(world, "rep.east1", "B单", 50000)
    c = deal(world, "rep.east1", "C单", 70000, won_on=dt.date(2026, 3, 3))
    d = deal(world, "rep.east1", "D单", 30000)
    e = deal(world, "rep.east1", "E单", 999)
    deal(world, "rep.east1", "F单", 40000, won_on=dt.date(2026, 3, 6))
    g = deal(world, "rep.east2", "G单", 200000, won_on=dt.date(2026, 3, 3))
    report(world, "rep.east1", dt.date(2026, 2, 26), [(e, 999, dt.date(2026, 3, 3), "commit")])  # superseded
    report(world, "rep.east1", FRI, [
        (a, 100000, dt.date(2026, 3, 4), "commit"),
        (b, 50000, dt.date(2026, 3, 5), "likely"),
        (c, 70000, dt.date(2026, 3, 3), "upside"),       # upside is not a forecast
        (d, 30000, dt.date(2026, 3, 20), "commit"),      # outside the week, inside the month
    ])
    report(world, "rep.east1", WEEK, [(e, 5, dt.date(2026, 3, 4), "commit")])  # inside the week: not a snapshot
    report(world, "rep.east1", dt.date(2026, 2, 25), [], status="draft")
    report(world, "rep.east2", FRI, [(g, 200000, dt.date(2026, 3, 3), "commit")])
    return {"a": a, "b": b, "c": c, "d": d, "g": g}
