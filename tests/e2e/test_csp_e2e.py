"""End to end in Debian's Chromium under the real Content-Security-Policy: the main pages load without a
single policy violation, and their scripts still work (charts drawn, Kanban drag saved, auto-submitting
filters, the loss-reason toggle, Swagger UI)."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.pipeline.models import Opportunity
from tuijin.pipeline.services import opportunity_create

from ..browser import SHOTS
from ..browser import login_page as _login
from .test_goals_e2e import _goals
from .test_kanban_e2e import _drag

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Runs before any page script and outside the page's policy: records every violation the browser reports.
WATCH = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI + " " + (e.sourceFile || "") + ":" + e.lineNumber);
});
"""


class Watch:
    def __init__(self, context):
        self.console: list[str] = []
        context.add_init_script(WATCH)

    def attach(self, page):
        page.on("console", lambda msg: self.console.append(f"{msg.type}: {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"pageerror: {err}"))
        return page

    def check(self, page, url):
        violations = page.evaluate("window.__csp")
        policy_console = [m for m in self.console if "Content Security Policy" in m or "pageerror" in m]
        assert not violations and not policy_console, (url, violations, policy_console)


def test_main_pages_run_under_the_policy_without_violations(world, live_server, browser):
    _goals(world)  # a goal board with figures; it marks rep.east1's opportunity won
    base = live_server.url
    customer = world.customers["rep.east1"]
    opp = opportunity_create(actor=world.users["rep.east1"], customer=customer, name="CSP测试商机", amount="1000",
                             expected_close_date=dt.date(2027, 6, 30))
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    watch = Watch(context)
    page = watch.attach(_login(context, base, "rep.east1"))

    pages = {
        "/": None,
        "/customers/": None,
        f"/customers/{customer.pk}/": None,
        "/opportunities/kanban/": None,
        f"/opportunities/{opp.pk}/": None,
        "/activities/": None,
        "/goals/board/": "#gauge-0 canvas",  # a goal board: ECharts gauges
        "/forecasts/accuracy/": "#chart-deviation canvas",  # a report page: ECharts chart
        "/forecasts/": None,
        "/health/": None,
        "/notifications/": None,
        "/api/docs": "#swagger-ui .information-container",  # Swagger UI (ninja's static files)
    }
    for path, drawn in pages.items():
        response = page.goto(f"{base}{path}")
        assert response.status == 200, path
        assert "script-src" in response.headers["content-security-policy"]
        if drawn:
            page.wait_for_selector(drawn)
        page.wait_for_load_state("networkidle")
        watch.check(page, path)
    page.screenshot(path=f"{SHOTS}/csp-swagger.png")

    # Bootstrap's, htmx's and our own scripts run: the customer filter refreshes the table via htmx.
    page.goto(f"{base}/customers/")
    with page.expect_response(lambda r: "/customers/?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.fill("#f-q", customer.name[:6])
        page.press("#f-q", "End")  # htmx listens for keyup (fill() types no keys)
    assert customer.name in page.locator("#customer-table").inner_text()
    watch.check(page, "customers filter")

    # The opportunity page's loss-reason fields (static opportunity.js) appear only for the lost stage.
    page.goto(f"{base}/opportunities/{opp.pk}/")
    assert page.locator("#loss-fields").is_hidden()
    page.select_option("#stage-select", str(world.stages["lost"].pk))
    assert page.locator("#loss-fields").is_visible()
    watch.check(page, "loss toggle")

    # Kanban: the pipeline select submits its form (data-autosubmit in app.js), a drag saves.
    page.goto(f"{base}/opportunities/kanban/")
    with page.expect_navigation():
        page.select_option("select[name=scope]", "mine")
    assert "scope=mine" in page.url
    survey = world.stages["survey"]
    card = page.locator(f'[data-opportunity-id="{opp.pk}"]')
    with page.expect_response(lambda r: r.url.endswith(f"/opportunities/{opp.pk}/stage")) as resp_info:
        _drag(page, card, page.locator(f'.kanban-cards[data-stage-id="{survey.pk}"]'))
    assert resp_info.value.status == 200
    page.wait_for_function(f"document.querySelector('[data-opportunity-id=\"{opp.pk}\"]').dataset.version === '2'")
    assert Opportunity.objects.get(pk=opp.pk).stage_id == survey.pk
    watch.check(page, "kanban drag")
    context.close()


def test_manager_workbench_charts_render_under_the_policy(world, live_server, browser):
    base = live_server.url
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    watch = Watch(context)
    page = watch.attach(_login(context, base, "manager.east"))
    page.goto(f"{base}/")
    page.wait_for_selector("#chart-stage canvas")
    page.screenshot(path=f"{SHOTS}/csp-workbench.png", full_page=True)
    watch.check(page, "/")
    # The error page's back link works without a javascript: URL.
    page.goto(f"{base}/customers/")
    page.goto(f"{base}/customers/?owner_id={2**63}")
    assert "owner_id" in page.locator(".alert-danger").inner_text()
    with page.expect_navigation():
        page.click("a[data-history-back]")
    assert page.url.endswith("/customers/")
    watch.check(page, "error page")
    context.close()
