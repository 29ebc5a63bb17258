"""End to end on a phone (390x844) in Debian's Chromium: a rep files today's report — adds a forecast
line, links evidence, acknowledges the outlier warning, submits — and sees it locked; the manager then
sees it without edit controls."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tuijin.forecasting.models import DailyReport
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

from ..browser import SHOTS
from ..browser import login_page as _login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "locale": "zh-CN"}


def _no_overflow(page):
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0


def test_rep_files_report_on_a_phone_and_it_locks(world, live_server, browser):
    rep = world.users["rep.east1"]
    customer, opp, act = world.customers["rep.east1"], world.opps["rep.east1"], world.activities["rep.east1"]
    # The customer signed 100,000 before, so 200,000 is a +100% outlier.
    signed = opportunity_create(actor=rep, customer=customer, name="去年的单", amount="100000")
    opportunity_move_stage(actor=rep, opportunity=signed, stage=world.stages["won"], version=signed.version)
    base = live_server.url
    context = browser.new_context(**PHONE)
    page = _login(context, base, "rep.east1")
    page.goto(f"{base}/forecasts/")
    _no_overflow(page)
    with page.expect_navigation():
        page.click("#file-today")
    report = DailyReport.objects.get(rep=rep)
    assert page.url.endswith(f"/forecasts/reports/{report.pk}/")
    assert act.conclusion in page.inner_text("#today-activities")
    page.fill("#summary", "拜访设备科，确认预算")
    with page.expect_navigation():
        page.click("#summary-form button[type=submit]")

    # Choosing the opportunity loads that customer's evidence over htmx.
    with page.expect_response(lambda r: "/evidence-options" in r.url):
        page.select_option("#add-opportunity", str(opp.pk))
    evidence = page.locator(f'#evidence-options input[value="{act.pk}"]')
    evidence.wait_for()
    evidence.check()
    page.fill("#add-amount", "200000")
    page.fill("#add-date", (timezone.localdate() + dt.timedelta(days=7)).isoformat())
    page.select_option("#add-confidence", "commit")
    _no_overflow(page)
    page.screenshot(path=f"{SHOTS}/forecast-add-line-phone.png", full_page=True)
    with page.expect_navigation():
        page.click("#add-line-submit")
    line = report.lines.get()
    warning = page.locator(f"#outlier-{line.pk}")
    assert "+100.0%" in warning.inner_text()

    # Submitting before acknowledging is refused with the reason named on the line.
    with page.expect_navigation():
        page.click("#submit-report")
    assert "请填写原因确认" in page.inner_text(f"#line-{line.pk}")
    page.fill(f"#outlier-{line.pk} input[name=outlier_reason]", "客户新院区开业，采购量翻倍")
    with page.expect_navigation():
        page.click(f"#outlier-{line.pk} button[type=submit]")
    with page.expect_navigation():
        page.click("#submit-report")

    page.wait_for_selector("#locked-badge")
    assert page.locator("#add-line-form").count() == 0
    assert page.locator("#submit-report").count() == 0
    assert page.locator("#summary-form").count() == 0
    assert "客户新院区开业，采购量翻倍" in page.inner_text(f"#outlier-{line.pk}")
    assert page.locator("#request-correction").is_visible()
    _no_overflow(page)
    page.screenshot(path=f"{SHOTS}/forecast-locked-phone.png", full_page=True)
    report.refresh_from_db()
    line.refresh_from_db()
    assert report.status == "submitted"
    assert line.is_outlier and line.outlier_reason and list(line.evidence.values_list("activity_id", flat=True)) == [
        act.pk]
    context.close()

    # The manager sees the locked report, with no edit controls.
    context = browser.new_context(**PHONE)
    page = _login(context, base, "manager.east")
    page.goto(f"{base}/forecasts/reports/{report.pk}/")
    assert page.locator("#locked-badge").is_visible()
    assert page.locator("#add-line-form").count() == 0
    context.close()

    context = browser.new_context(**PHONE)
    page = _login(context, base, "rep.south1")
    assert page.goto(f"{base}/forecasts/reports/{report.pk}/").status == 404
    context.close()


def test_accuracy_chart_renders(world, live_server, browser):
    from tests.forecasting.dataset import WEEK, build

    build(world)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = _login(context, live_server.url, "director")
    page.goto(f"{live_server.url}/forecasts/accuracy/?start={WEEK}&end={WEEK}")
    page.wait_for_selector("#chart-deviation canvas")
    assert "华东大区" in page.inner_text("#accuracy-table")  # a director starts at regions
    page.goto(f"{live_server.url}/forecasts/accuracy/?start={WEEK}&end={WEEK}&group=rep")
    page.wait_for_selector("#chart-deviation canvas")
    assert "40.0%" in page.inner_text("#accuracy-table")
    page.screenshot(path=f"{SHOTS}/forecast-accuracy.png", full_page=True)
    context.close()
