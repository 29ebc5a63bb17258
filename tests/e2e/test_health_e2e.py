"""End to end in Debian's Chromium: a rep fills in the weekly three-sentence alignment on a phone-sized
screen; the manager then sees it (and who has not submitted) on the team health page."""

from __future__ import annotations

import os

import pytest

from tuijin.health import rules
from tuijin.health.models import Blocker, WeeklyAlignment

from ..browser import SHOTS
from ..browser import login_page as _login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_rep_submits_alignment_on_a_phone_and_manager_sees_it(world, live_server, browser):  # noqa: F811
    base = live_server.url
    opp = world.opps["rep.east1"]
    phone = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True,
                                has_touch=True)
    page = _login(phone, base, "rep.east1")
    page.goto(f"{base}/health/")
    form = page.locator("#alignment-form")
    assert form.is_visible()
    # Fits the phone: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.check(f"#top-{opp.pk}")
    page.check("#dept-presales")
    page.check("#dept-legal")
    page.check("#blocker-yes")
    page.fill("#blocker-title", "医院设备科要求补充资质文件")
    submit = page.locator("#alignment-submit")
    box = submit.bounding_box()
    assert box["width"] > 300  # a full-width, thumb-sized button on the phone
    with page.expect_navigation():
        submit.tap()
    assert page.locator("#alignment-submitted").is_visible()
    assert page.locator(f"#top-{opp.pk}").is_checked()
    page.screenshot(path=os.path.join(SHOTS, "health-alignment-phone.png"), full_page=True)

    a = WeeklyAlignment.objects.get(rep=world.users["rep.east1"])
    assert [i.opportunity_id for i in a.items.all()] == [opp.pk]
    assert a.departments == ["presales", "legal"] and a.has_blocker
    assert a.blocker == Blocker.objects.get(title="医院设备科要求补充资质文件")
    week = a.week_start
    assert week == rules.open_week()

    desk = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    mpage = _login(desk, base, "manager.east")
    mpage.goto(f"{base}/health/?week={week:%Y-%m-%d}")
    row = mpage.locator('tr[data-rep="rep.east1"]')
    assert row.locator('[data-alignment="submitted"]').is_visible()
    assert opp.name in row.inner_text()
    assert "售前" in row.inner_text() and "医院设备科要求补充资质文件" in row.inner_text()
    other = mpage.locator('tr[data-rep="rep.east2"]')
    assert other.locator('[data-alignment="submitted"]').count() == 0
    assert mpage.locator('tr[data-rep="rep.south1"]').count() == 0
    mpage.screenshot(path=os.path.join(SHOTS, "health-manager.png"), full_page=True)
    # The figure behind the light leads to the rep's records.
    with mpage.expect_navigation():
        row.locator("a").first.click()
    assert f"/health/reps/{world.users['rep.east1'].pk}/" in mpage.url
    assert opp.name in mpage.locator("#rep-opportunities").inner_text()
    assert opp.name in mpage.locator("#rep-alignments").inner_text()
