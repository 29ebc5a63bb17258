"""End to end in Debian's Chromium: a rep opens their goal board (gauges drawn by ECharts), follows a
figure to the records behind it; the director sees the attenuation flags of the cascade."""

from __future__ import annotations

import pytest
from django.utils import timezone

from tuijin.goals.services import (
    key_result_create,
    metric_kinds_seed,
    objective_create,
    period_create,
    target_allocate,
)
from tuijin.pipeline.models import Opportunity

from ..browser import SHOTS
from ..browser import login_page as _login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _goals(world):
    """A quarter objective for the current quarter; rep.east1's won deal this quarter."""
    metric_kinds_seed()  # a transactional test starts from a flushed database: no migration data
    u = world.users
    today = timezone.localdate()
    opp = world.opps["rep.east1"]
    Opportunity.objects.filter(pk=opp.pk).update(stage=world.stages["won"], closed_at=timezone.now(),
                                                 amount=88000)
    period = period_create(actor=u["director"], kind="quarter", start=today)
    objective = objective_create(actor=u["director"], period=period, title="提升客户生命周期价值")
    kr = key_result_create(actor=u["director"], objective=objective, metric="signed_revenue", target="400000")
    root = kr.targets.get()
    east = target_allocate(actor=u["director"], parent=root, children=[
        {"unit": world.units["east"].pk, "value": "300000"}]).targets[0]
    sh = target_allocate(actor=u["director"], parent=east, children=[
        {"unit": world.units["shanghai"].pk, "value": "200000"}]).targets[0]
    rep = target_allocate(actor=u["director"], parent=sh, children=[
        {"user": u["rep.east1"].pk, "value": "150000"}]).targets[0]
    return kr, rep, opp, today


def test_rep_follows_a_board_figure_to_its_records(world, live_server, browser):  # noqa: F811
    kr, rep_target, opp, _today = _goals(world)
    base = live_server.url
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = _login(context, base, "rep.east1")
    page.goto(f"{base}/goals/board/")
    assert page.evaluate("typeof window.echarts") == "object"
    # The gauge was drawn by ECharts (it leaves a canvas in the container).
    page.wait_for_selector("#gauge-0 canvas")
    card = page.locator('.kpi-card[data-metric="signed_revenue"]')
    text = card.inner_text().replace(",", "")
    assert "¥150000" in text and "¥88000" in text
    page.screenshot(path=f"{SHOTS}/goal-board.png", full_page=True)
    link = card.locator("a.figure-link")
    with page.expect_navigation():
        link.click()
    assert f"/goals/figures/{rep_target.pk}/records" in page.url
    assert "数据来源" in page.locator("#records-title").inner_text()
    rows = page.locator("#opportunities tbody tr")
    assert rows.count() == 1 and opp.name in rows.first.inner_text()
    with page.expect_navigation():
        rows.first.locator("a").first.click()
    assert f"/opportunities/{opp.pk}/" in page.url
    # Someone else's board is not there.
    resp = page.goto(f"{base}/goals/board/{world.users['rep.east2'].pk}/")
    assert resp.status == 404
    context.close()


def test_director_sees_attenuation_on_a_phone(world, live_server, browser):  # noqa: F811
    kr, _rep, _opp, _today = _goals(world)
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = _login(context, live_server.url, "director")
    page.goto(f"{live_server.url}/goals/key-results/{kr.pk}/")
    page.wait_for_selector("#chart-growth canvas")
    # No baseline history here: the flags are the children sums (300k of 400k, ...).
    assert page.locator('#attenuation-flags li[data-kind="sum_short"]').count() == 3
    page.screenshot(path=f"{SHOTS}/goal-cascade-phone.png", full_page=True)
    context.close()
