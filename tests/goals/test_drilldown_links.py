"""Class test: every drill-down link a user is shown — in the goals, health and forecasting API responses
and pages — opens for that user (no 403, 404 or 500). A figure the user may see but whose records they may
not (the company figure on a rep's objectives) is shown without a link."""

from __future__ import annotations

import datetime as dt
import json
import re
from urllib.parse import urlsplit

import pytest

from tests.forecasting.helpers import submitted_report
from tuijin.demo.org import LOGINS
from tuijin.goals.models import Target
from tuijin.goals.services import report_generate

pytestmark = pytest.mark.django_db

ON = "2026-02-14"
HREF = re.compile(r'href="(/[^"#]*)"')
# Navigation that is not a drill-down: assets, signing out, language switching, downloads checked elsewhere.
SKIP = ("/static/", "/vendor/", "/accounts/logout", "/logout", "/i18n/", "/lang")


def _json_links(value) -> list[str]:
    if isinstance(value, dict):
        return [link for v in value.values() for link in _json_links(v)]
    if isinstance(value, list):
        return [link for v in value for link in _json_links(v)]
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//"):
        return [value]
    return []


def _links(resp) -> list[str]:
    if resp["Content-Type"].startswith("application/json"):
        return _json_links(json.loads(resp.content))
    if resp["Content-Type"].startswith("text/html"):
        # The page's own content (the site navigation in base.html is not a drill-down).
        html = resp.content.decode()
        main = html[html.find("<main"):html.rfind("</main>")]
        return [h.replace("&amp;", "&") for h in HREF.findall(main)]
    return []


def _seeds(cascade, org, report) -> list[str]:
    o, kr = cascade.objective.pk, cascade.kr.pk
    rep = org.users["rep.east1"].pk
    return [
        f"/api/goals/objectives?on={ON}", f"/api/goals/objectives/{o}?on={ON}",
        f"/api/goals/key-results/{kr}/attenuation", f"/api/goals/boards/me?on={ON}",
        f"/api/goals/boards/team?on={ON}", f"/api/goals/boards/{rep}?on={ON}",
        "/api/goals/reports", f"/api/goals/reports/{report.pk}",
        *[f"/api/goals/targets/{pk}?on={ON}" for pk in Target.objects.values_list("pk", flat=True)],
        "/api/health/lights", "/api/health/alignments", "/api/health/alignments/missing", "/api/health/blockers",
        "/api/forecasts/reports", "/api/forecasts/missing", "/api/forecasts/corrections",
        "/api/forecasts/accuracy", "/api/forecasts/accuracy?group=region", "/api/forecasts/accuracy?group=team",
        f"/goals/?on={ON}", f"/goals/objectives/{o}/?on={ON}", f"/goals/key-results/{kr}/",
        f"/goals/board/?on={ON}", f"/goals/team/?on={ON}", "/goals/reports/", f"/goals/reports/{report.pk}/",
        "/health/", "/health/pools/",
        "/forecasts/", "/forecasts/accuracy/", "/forecasts/accuracy/?group=region", "/forecasts/corrections/",
    ]


def _drilldown(link: str) -> bool:
    path = urlsplit(link).path
    if path.startswith(SKIP) or path.endswith(("/excel", "/pdf", "/export")):
        return False
    return True


def test_every_link_shown_to_every_role_opens(world, cascade, org, login):
    # Deals in the cascade's quarter so figures and report rows have records behind them.
    from tests.goals.conftest import deal

    for name in ["rep.east1", "rep.east2", "rep.south1"]:
        deal(org, org.users[name], 50000, closed=dt.date(2026, 1, 20))
    report, _ = report_generate(actor=org.users["director"], start=dt.date(2026, 1, 1))
    submitted_report(world)
    seeds = _seeds(cascade, org, report)
    failures, checked = [], 0
    for username, *_rest in LOGINS:
        client = login(org.users[username])
        client.raise_request_exception = False
        seen: set[str] = set()
        for seed in seeds:
            resp = client.get(seed)
            if resp.status_code >= 500:
                failures.append(f"{username}: seed {seed} → {resp.status_code}")
            if resp.status_code != 200:
                continue  # a page the role may not open is fine; its links are what is checked
            for link in _links(resp):
                if link in seen or not _drilldown(link):
                    continue
                seen.add(link)
                status = client.get(link).status_code
                checked += 1
                if status in (403, 404) or status >= 500:
                    failures.append(f"{username}: {seed} links {link} → {status}")
    assert checked > 100  # the scenario really produces links
    assert not failures, "\n".join(failures)


def test_company_figure_is_unlinked_for_those_who_cannot_open_its_records(cascade, org, api_client):
    def company(username):
        body = api_client(org.users[username]).get(f"/api/goals/objectives?on={ON}").json()
        return body["items"][0]["key_results"][0]["company"]

    for username in ["rep.south1", "manager.east", "finance"]:
        figure = company(username)
        assert figure["target"] == "390000.00" and figure["records"] is None and figure["page"] is None
    assert company("director")["records"] == f"/api/goals/targets/{cascade.company.pk}/records?on={ON}"
    # The attenuation chain shows a rep the ancestors for context, without record links.
    levels = api_client(org.users["rep.east1"]).get(f"/api/goals/key-results/{cascade.kr.pk}/attenuation").json()
    linked = {lv["id"]: lv["records"] is not None for lv in levels["levels"]}
    assert linked == {cascade.company.pk: False, cascade.east.pk: False, cascade.shanghai.pk: False,
                      cascade.rep.pk: True}
