"""Extreme date and page parameters on the goals, health and forecasting pages and API answer 4xx or a page —
never a 500 (the bug class of `/goals/board/?on=9999-12-31`)."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.goals.services import report_generate

pytestmark = pytest.mark.django_db

EXTREMES = ["9999-12-31", "0001-01-01", "1e20", "-1", str(2**63), "", "abc"]


def _urls(cascade, org, report) -> list[tuple[str, str]]:
    """(url with {v} where the value goes, parameter name)."""
    t, o, rep = cascade.company.pk, cascade.objective.pk, org.users["rep.east1"].pk
    return [
        # goals pages
        ("/goals/?on={v}", "on"),
        (f"/goals/objectives/{o}/?on={{v}}", "on"),
        ("/goals/board/?on={v}", "on"),
        (f"/goals/board/{rep}/?on={{v}}", "on"),
        ("/goals/team/?on={v}", "on"),
        (f"/goals/figures/{t}/records?on={{v}}", "on"),
        (f"/goals/figures/{t}/records?page={{v}}", "page"),
        (f"/goals/reports/{report.pk}/records?row={{v}}", "row"),
        (f"/goals/reports/{report.pk}/records?row=0&page={{v}}", "page"),
        # goals API
        ("/api/goals/objectives?on={v}", "on"),
        (f"/api/goals/objectives/{o}?on={{v}}", "on"),
        (f"/api/goals/targets/{t}?on={{v}}", "on"),
        (f"/api/goals/targets/{t}/records?on={{v}}", "on"),
        (f"/api/goals/targets/{t}/records?page={{v}}", "page"),
        (f"/api/goals/targets/{t}/records?page_size={{v}}", "page_size"),
        ("/api/goals/boards/me?on={v}", "on"),
        ("/api/goals/boards/team?on={v}", "on"),
        (f"/api/goals/boards/{rep}?on={{v}}", "on"),
        (f"/api/goals/reports/{report.pk}/records?row={{v}}", "row"),
        (f"/api/goals/reports/{report.pk}/records?row=0&page={{v}}", "page"),
        (f"/api/goals/reports/{report.pk}/records?row=0&page_size={{v}}", "page_size"),
        # health
        ("/health/?week={v}", "week"),
        ("/health/pools/?page={v}", "page"),
        ("/api/health/alignments?week={v}", "week"),
        ("/api/health/alignments?page={v}", "page"),
        ("/api/health/alignments?page_size={v}", "page_size"),
        ("/api/health/alignments/missing?week={v}", "week"),
        # forecasting
        ("/forecasts/?date={v}", "date"),
        ("/forecasts/corrections/?page={v}", "page"),
        ("/forecasts/accuracy/?start={v}", "start"),
        ("/forecasts/accuracy/?end={v}", "end"),
        ("/forecasts/accuracy/records?start={v}", "start"),
        ("/api/forecasts/reports?date={v}", "date"),
        ("/api/forecasts/reports?date_from={v}", "date_from"),
        ("/api/forecasts/reports?date_to={v}", "date_to"),
        ("/api/forecasts/reports?page={v}", "page"),
        ("/api/forecasts/reports?page_size={v}", "page_size"),
        ("/api/forecasts/missing?date={v}", "date"),
        ("/api/forecasts/corrections?page={v}", "page"),
        ("/api/forecasts/corrections?page_size={v}", "page_size"),
        ("/api/forecasts/accuracy?start={v}", "start"),
        ("/api/forecasts/accuracy?end={v}", "end"),
        ("/api/forecasts/accuracy/records?start={v}", "start"),
    ]


@pytest.mark.parametrize("value", EXTREMES)
def test_extreme_parameters_give_no_server_error(cascade, org, login, value):
    report, _ = report_generate(actor=org.users["director"], start=dt.date(2026, 1, 1))
    failures = []
    for username in ["director", "manager.east"]:
        client = login(org.users[username])
        client.raise_request_exception = False
        for url, param in _urls(cascade, org, report):
            url = url.format(v=value)
            resp = client.get(url)
            if resp.status_code >= 500:
                failures.append(f"{username} {url} → {resp.status_code}")
            elif resp.status_code in (400, 422) and value and url.startswith("/api/"):
                if param not in resp.content.decode():  # a refused value names the parameter
                    failures.append(f"{username} {url} → {resp.status_code} without naming {param}")
    assert not failures, "\n".join(failures)


def test_the_reported_board_dates_name_the_parameter(cascade, org, login, api_client):
    page = login(org.users["rep.east1"])
    api = api_client(org.users["rep.east1"])
    for value in ["9999-12-31", "0001-01-01"]:
        resp = page.get(f"/goals/board/?on={value}")
        assert resp.status_code == 400 and "on：" in resp.content.decode()
        resp = api.get(f"/api/goals/boards/me?on={value}")
        assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["query", "on"]
    # The edges of the accepted range still work.
    assert page.get("/goals/board/?on=2000-01-01").status_code == 200
    assert api.get("/api/goals/boards/me?on=2100-12-31").status_code == 200
    resp = api.get(f"/api/goals/targets/{cascade.rep.pk}/records?page={2**63}")
    assert resp.status_code == 200 and resp.json()["items"] == []
