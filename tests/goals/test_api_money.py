"""Goal figures in yuan (reports, attenuation, targets, boards, records) are two-decimal strings in the API;
the class test over all endpoints is tests/api/test_money.py."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.api.test_money import TWO_DECIMALS, _money_values
from tuijin.goals.services import report_generate

from .conftest import deal


@pytest.mark.django_db
def test_goal_reports_and_figures_carry_two_decimals(cascade, org, api_client):
    deal(org, org.users["rep.east1"], "12345.6", closed=dt.date(2026, 2, 10))
    report, _created = report_generate(actor=org.users["director"], start="2026-02-01")
    client = api_client(org.users["director"])
    urls = [f"/api/goals/reports/{report.pk}", f"/api/goals/key-results/{cascade.kr.pk}/attenuation",
            f"/api/goals/targets/{cascade.east.pk}?on=2026-02-14",
            f"/api/goals/targets/{cascade.rep.pk}/records?on=2026-02-14", "/api/goals/boards/team?on=2026-02-14"]
    checked = 0
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.content)
        for path, value in _money_values(resp.json()):
            checked += 1
            assert value is None or (isinstance(value, str) and TWO_DECIMALS.match(value)), (url, path, value)
    assert checked > 10
