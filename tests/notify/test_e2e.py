"""End to end in Debian's Chromium: a rep sees the unread badge, opens the inbox, follows a notification to
its record (it turns read, the badge goes); an admin adds a signed DingTalk robot through the form and its
test message reaches the local DingTalk stand-in with a valid signature."""

from __future__ import annotations

import pytest

from tuijin.notify.models import Notification, Robot
from tuijin.notify.services import notify

from ..browser import login_page

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]



def _login(browser, base, username):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    return login_page(context, base, username)


def test_rep_follows_a_notification_to_its_record(world, live_server, browser):
    rep = world.users["rep.east1"]
    customer = world.customers["rep.east1"]
    notify(recipients=[rep], kind="health.red", title="红灯：客户 14 天未联系", body="请今天联系客户。",
           link=f"/customers/{customer.pk}/", dedupe_key="e2e-1", email=False)
    notify(recipients=[rep], kind="report.monthly", title="月度报告已生成", dedupe_key="e2e-2", email=False)
    page = _login(browser, live_server.url, "rep.east1")
    assert page.inner_text("#unread-count") == "2"
    page.click("#nav-inbox")
    page.wait_for_url("**/notifications/")
    items = page.locator("#notifications .list-group-item")
    assert items.count() == 2
    with page.expect_navigation():
        page.click("text=红灯：客户 14 天未联系")
    assert page.url.endswith(f"/customers/{customer.pk}/")
    assert customer.name in page.content()
    assert page.inner_text("#unread-count") == "1"
    assert Notification.objects.filter(recipient=rep, read_at__isnull=True).count() == 1
    page.goto(f"{live_server.url}/notifications/")
    with page.expect_navigation():
        page.click("#read-all")
    assert page.locator("#unread-count").count() == 0


def test_admin_adds_a_dingtalk_robot_and_its_test_message_arrives_signed(world, live_server, browser,
                                                                         robot_server):
    url = robot_server.add("dingtalk", "e2e-ding", "SECe2e-secret-value-0001")
    page = _login(browser, live_server.url, "admin")
    page.goto(f"{live_server.url}/notifications/")
    page.click("#robots-link")
    page.click("#robot-new")
    page.fill("#id_name", "华东销售群")
    page.select_option("#id_platform", "dingtalk")
    page.fill("#id_webhook_url", url)
    page.fill("#id_secret", "SECe2e-secret-value-0001")
    page.fill("#id_max_per_minute", "20")
    with page.expect_navigation():
        page.click("#robot-form button[type=submit]")
    assert page.url.endswith("/notifications/robots/")
    assert "华东销售群" in page.content() and "SECe2e-secret-value-0001" not in page.content()
    robot = Robot.objects.get()
    with page.expect_navigation():
        page.click(f"#robot-{robot.pk} .robot-test")
    # The test message was queued; under pytest Huey delivers at commit, so it is already sent.
    assert robot_server.count("dingtalk", "e2e-ding") == 1 and robot_server.rejected == []
    row = page.locator("#outbox tbody tr").first
    assert row.get_attribute("data-status") == "sent"
