"""End to end in Debian's Chromium: log in through the form, drag a Kanban card to the next stage,
see it saved and in the change trail; another region's rep gets 404; the customer list fits a phone."""

from __future__ import annotations

import pytest

from tuijin.pipeline.models import Opportunity

from ..browser import SHOTS
from ..browser import login_page as _login

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

def _drag(page, source, target):
    """Real mouse moves in steps: SortableJS (in fallback mode) follows mouse events only."""
    s, t = source.bounding_box(), target.bounding_box()
    page.mouse.move(s["x"] + s["width"] / 2, s["y"] + s["height"] / 2)
    page.mouse.down()
    page.mouse.move(s["x"] + s["width"] / 2 + 10, s["y"] + s["height"] / 2 + 10, steps=5)
    page.mouse.move(t["x"] + t["width"] / 2, t["y"] + 30, steps=20)
    page.mouse.up()


def test_drag_card_to_next_stage_is_saved_and_traced(world, live_server, browser):
    opp = world.opps["rep.east1"]
    qualify, survey = world.stages["qualify"], world.stages["survey"]
    assert opp.stage_id == qualify.pk
    base = live_server.url
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = _login(context, base, "rep.east1")
    page.goto(f"{base}/opportunities/kanban/")
    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("typeof window.Sortable") == "function"
    assert page.evaluate("typeof window.bootstrap") == "object"
    # Bootstrap's stylesheet really loaded (navbar is a flex container only with it).
    assert page.evaluate("getComputedStyle(document.querySelector('.navbar')).display") == "flex"
    card = page.locator(f'[data-opportunity-id="{opp.pk}"]')
    assert card.get_attribute("data-version") == "1"
    assert page.locator(f'.kanban-cards[data-stage-id="{qualify.pk}"] [data-opportunity-id="{opp.pk}"]').count() == 1
    page.screenshot(path=f"{SHOTS}/kanban-before.png", full_page=True)

    target = page.locator(f'.kanban-cards[data-stage-id="{survey.pk}"]')
    with page.expect_response(lambda r: r.url.endswith(f"/opportunities/{opp.pk}/stage")) as resp_info:
        _drag(page, card, target)
    assert resp_info.value.status == 200
    page.wait_for_function(
        f"document.querySelector('[data-opportunity-id=\"{opp.pk}\"]').dataset.version === '2'"
    )
    opp.refresh_from_db()
    assert opp.stage_id == survey.pk and opp.version == 2

    page.reload()
    assert page.locator(f'.kanban-cards[data-stage-id="{survey.pk}"] [data-opportunity-id="{opp.pk}"]').count() == 1
    page.screenshot(path=f"{SHOTS}/kanban-after.png", full_page=True)

    page.goto(f"{base}/opportunities/{opp.pk}/")
    history = page.locator('#history [data-action="stage_change"]')
    assert history.count() == 1
    assert str(survey) in history.inner_text()
    page.screenshot(path=f"{SHOTS}/opportunity.png", full_page=True)
    context.close()

    other = browser.new_context(locale="zh-CN")
    page = _login(other, base, "rep.south1")
    response = page.goto(f"{base}/opportunities/{opp.pk}/")
    assert response.status == 404
    other.close()


def test_drop_on_lost_asks_reason_and_cancel_puts_card_back(world, live_server, browser):
    opp = world.opps["rep.east1"]
    lost = world.stages["lost"]
    context = browser.new_context(viewport={"width": 2100, "height": 900}, locale="zh-CN")
    page = _login(context, live_server.url, "rep.east1")
    page.goto(f"{live_server.url}/opportunities/kanban/")
    card = page.locator(f'[data-opportunity-id="{opp.pk}"]')
    _drag(page, card, page.locator(f'.kanban-cards[data-stage-id="{lost.pk}"]'))
    page.wait_for_selector("#loss-modal.show")
    page.screenshot(path=f"{SHOTS}/kanban-lost-modal.png")
    page.click("#loss-modal-cancel")
    page.wait_for_selector("#loss-modal", state="hidden")
    page.wait_for_selector(".modal-backdrop", state="detached")  # the fading backdrop would catch the mouse
    assert page.locator(f'.kanban-cards[data-stage-id="{opp.stage_id}"] [data-opportunity-id="{opp.pk}"]').count() == 1
    # Now confirm with a reason: saved as lost with that reason.
    _drag(page, card, page.locator(f'.kanban-cards[data-stage-id="{lost.pk}"]'))
    page.wait_for_selector("#loss-modal.show")
    page.select_option("#loss-modal-reason", "budget")
    with page.expect_response(lambda r: r.url.endswith(f"/opportunities/{opp.pk}/stage")) as resp_info:
        page.click("#loss-modal-ok")
    assert resp_info.value.status == 200
    opp.refresh_from_db()
    assert opp.stage_id == lost.pk and opp.loss_reason == "budget"
    context.close()


def test_stale_card_is_refused_and_moved_back(world, live_server, browser):
    from tuijin.pipeline.services import opportunity_update

    opp = world.opps["rep.east1"]
    context = browser.new_context(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    page = _login(context, live_server.url, "rep.east1")
    page.goto(f"{live_server.url}/opportunities/kanban/")
    # Someone else edits the opportunity after the board was loaded.
    opportunity_update(actor=world.users["manager.east"], opportunity=opp, amount="123456")
    card = page.locator(f'[data-opportunity-id="{opp.pk}"]')
    with page.expect_response(lambda r: r.url.endswith(f"/opportunities/{opp.pk}/stage")) as resp_info:
        _drag(page, card, page.locator(f'.kanban-cards[data-stage-id="{world.stages["survey"].pk}"]'))
    assert resp_info.value.status == 409
    page.wait_for_selector("#kanban-alert:not(.d-none)")
    assert "该记录已被他人修改" in page.inner_text("#kanban-alert")
    qualify = world.stages["qualify"]
    assert page.locator(f'.kanban-cards[data-stage-id="{qualify.pk}"] [data-opportunity-id="{opp.pk}"]').count() == 1
    assert Opportunity.objects.get(pk=opp.pk).stage_id == qualify.pk
    context.close()


def test_customer_list_fits_a_phone(world, live_server, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    page = _login(context, live_server.url, "manager.east")
    page.goto(f"{live_server.url}/customers/")
    assert page.locator("#customers").is_visible()
    assert world.customers["rep.east2"].name in page.inner_text("#customers")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, overflow
    # The nav collapses behind the toggler on a phone.
    assert page.locator(".navbar-toggler").is_visible()
    assert not page.locator("#main-nav").is_visible()
    page.screenshot(path=f"{SHOTS}/customers-phone.png", full_page=True)
    page.goto(f"{live_server.url}/customers/{world.customers['rep.east1'].pk}/")
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    page.screenshot(path=f"{SHOTS}/customer-phone.png", full_page=True)
    page.goto(f"{live_server.url}/")
    page.screenshot(path=f"{SHOTS}/home-manager-phone.png", full_page=True)
    context.close()


def test_filter_change_refreshes_table_via_htmx_and_charts_render(world, live_server, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = _login(context, live_server.url, "manager.east")
    page.goto(f"{live_server.url}/customers/")
    page.evaluate("window.__marker = 1")  # survives only if the page is not reloaded
    with page.expect_response(lambda r: "/customers/?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.select_option("select[name=scope]", "mine")
    page.wait_for_function("!document.querySelector('#customers').innerText.includes('测试客户1号医院')")
    assert page.evaluate("window.__marker") == 1
    assert "scope=mine" in page.url
    assert world.customers["manager.east"].name in page.inner_text("#customers")
    context.close()

    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = _login(context, live_server.url, "director")
    assert page.evaluate("typeof window.echarts") == "object"
    page.wait_for_selector("#chart-stage canvas")
    page.wait_for_selector("#chart-region canvas")
    page.screenshot(path=f"{SHOTS}/home-director.png", full_page=True)
    context.close()
