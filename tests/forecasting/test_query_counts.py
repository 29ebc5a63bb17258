"""No N+1: report list, report detail, corrections and accuracy run the same number of queries
with few and with many rows, in pages and in the API."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.forecasting.models import (
    CorrectionItem,
    CorrectionRequest,
    DailyReport,
    ForecastEvidence,
    ForecastLine,
)

from .dataset import WEEK, at, deal


def _queries(client, url) -> int:
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
    assert resp.status_code == 200, (url, resp.status_code)
    return len(ctx.captured_queries)


class Filler:
    """Adds, per step, a submitted report on a past day for both east reps with forecast lines,
    evidence, a won deal, and a correction request."""

    def __init__(self, world):
        self.world, self.done = world, 0

    def add(self, n):
        for i in range(self.done, self.done + n):
            day = WEEK - dt.timedelta(days=1 + i)
            for username in ("rep.east1", "rep.east2"):
                user = self.world.users[username]
                report = DailyReport.objects.create(rep=user, date=day, summary="s", status="submitted",
                                                    submitted_at=at(day, 18))
                for j in range(2):
                    opp = deal(self.world, username, f"商机{i}-{j}", 1000 * (j + 1),
                               won_on=WEEK + dt.timedelta(days=j) if j else None)
                    ln = ForecastLine.objects.create(report=report, position=j, opportunity=opp, amount=1000,
                                                     expected_sign_date=WEEK + dt.timedelta(days=j),
                                                     confidence="commit")
                    ForecastEvidence.objects.create(line=ln, activity=self.world.activities[username])
                req = CorrectionRequest.objects.create(report=report, requested_by=user, reason="r")
                CorrectionItem.objects.create(request=req, line=ln, old_amount=1000, old_expected_sign_date=WEEK,
                                              old_confidence="commit", new_amount=900)
        self.done += n


PAGES = ["/forecasts/", "/forecasts/?scope=team", "/forecasts/corrections/?awaiting=0", "/forecasts/corrections/",
         f"/forecasts/accuracy/?start={WEEK - dt.timedelta(days=35)}&end={WEEK}",
         f"/forecasts/accuracy/?period=month&group=region&start={WEEK - dt.timedelta(days=60)}&end={WEEK}",
         f"/forecasts/accuracy/records?period=week&start={WEEK}&group=company&key=0&which=forecast",
         f"/forecasts/accuracy/records?period=week&start={WEEK}&group=company&key=0&which=won",
         "/api/forecasts/reports", "/api/forecasts/corrections", "/api/forecasts/missing",
         f"/api/forecasts/accuracy?start={WEEK - dt.timedelta(days=35)}&end={WEEK}&group=team",
         f"/api/forecasts/accuracy/records?period=week&start={WEEK}&group=company&key=0&which=missed"]


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director", "finance"])
def test_list_pages_and_accuracy_have_constant_query_counts(world, login, username):
    client = login(world.users[username])
    filler = Filler(world)
    filler.add(2)
    few = {url: _queries(client, url) for url in PAGES}
    filler.add(8)
    many = {url: _queries(client, url) for url in PAGES}
    assert few == many


def test_report_detail_has_constant_query_count(world, login):
    client = login(world.users["rep.east1"])
    report = DailyReport.objects.create(rep=world.users["rep.east1"], date=WEEK, summary="s")
    url = f"/forecasts/reports/{report.pk}/"

    def add_lines(start, n):
        for j in range(start, start + n):
            opp = deal(world, "rep.east1", f"明细{j}", 1000)
            ln = ForecastLine.objects.create(report=report, position=j, opportunity=opp, amount=1000,
                                             expected_sign_date=WEEK, confidence="likely")
            ForecastEvidence.objects.create(line=ln, activity=world.activities["rep.east1"])

    add_lines(0, 2)
    few = (_queries(client, url), _queries(client, f"/api/forecasts/reports/{report.pk}"))
    add_lines(2, 10)
    many = (_queries(client, url), _queries(client, f"/api/forecasts/reports/{report.pk}"))
    assert few == many
