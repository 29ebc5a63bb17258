"""Inbox page (unread first, mark one / all read, open the record, nobody sees another's), the robots admin
page (admin only, secrets never shown back, test message, outbox with retry), constant query counts."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tuijin.notify.models import Notification, OutboxMessage, Robot
from tuijin.notify.services import notify


def _n(user, key, title=None, link="/customers/"):
    return notify(recipients=[user], kind="k", title=title or f"通知 {key}", link=link, dedupe_key=key,
                  email=False, robots=False)[0]


def test_inbox_lists_unread_first_and_the_badge_counts_them(org, login):
    rep = org.users["rep.east1"]
    old_unread = _n(rep, "a", "较早的未读")
    read = _n(rep, "b", "已读的新通知")
    newest_unread = _n(rep, "c", "最新的未读")
    Notification.objects.filter(pk=read.pk).update(read_at=read.created_at)
    _n(org.users["rep.east2"], "x", "别人的通知")
    resp = login(rep).get("/notifications/")
    body = resp.content.decode()
    assert resp.status_code == 200
    assert body.index("最新的未读") < body.index("较早的未读") < body.index("已读的新通知")
    assert "别人的通知" not in body
    assert 'id="unread-count">2<' in body
    unread_only = login(rep).get("/notifications/?unread=1").content.decode()
    assert "已读的新通知" not in unread_only and "较早的未读" in unread_only
    assert old_unread.pk and newest_unread.pk


def test_open_marks_read_and_goes_to_the_record(org, login):
    rep = org.users["rep.east1"]
    n = _n(rep, "open", link="/customers/42/")
    resp = login(rep).post(f"/notifications/{n.pk}/open")
    assert resp.status_code == 302 and resp["Location"] == "/customers/42/"
    n.refresh_from_db()
    assert n.read_at is not None


def test_open_never_redirects_off_site(org, login):
    rep = org.users["rep.east1"]
    n = _n(rep, "evil", link="https://evil.example.com/")
    resp = login(rep).post(f"/notifications/{n.pk}/open")
    assert resp["Location"] == "/notifications/"


def test_mark_one_and_all_read(org, login):
    rep = org.users["rep.east1"]
    a, b, c = _n(rep, "1"), _n(rep, "2"), _n(rep, "3")
    client = login(rep)
    assert client.post(f"/notifications/{a.pk}/read", {"next": "/notifications/"}).status_code == 302
    assert set(Notification.objects.filter(read_at__isnull=True).values_list("pk", flat=True)) == {b.pk, c.pk}
    client.post("/notifications/read-all")
    assert not Notification.objects.filter(recipient=rep, read_at__isnull=True).exists()
    assert client.get("/notifications/read-all").status_code == 405  # writes are POST only


def test_another_users_notification_is_404_and_untouched(org, login):
    theirs = _n(org.users["rep.south1"], "theirs")
    client = login(org.users["rep.east1"])
    assert client.post(f"/notifications/{theirs.pk}/open").status_code == 404
    assert client.post(f"/notifications/{theirs.pk}/read").status_code == 404
    theirs.refresh_from_db()
    assert theirs.read_at is None


def _queries(client, url):
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        resp = client.get(url)
    assert resp.status_code == 200
    return len(ctx.captured_queries)


def test_inbox_and_admin_lists_have_constant_query_counts(org, login, make_robot):
    rep, admin = org.users["rep.east1"], org.users["admin"]
    rep_client, admin_client = login(rep), login(admin)

    def fill(start, n):
        for i in range(start, start + n):
            _n(rep, f"q{i}")
            make_robot(["wecom", "dingtalk", "feishu"][i % 3])
            notify(recipients=[rep], kind="k", title=f"q{i}", dedupe_key=f"qq{i}", email=True)

    fill(0, 2)
    pages = ["/notifications/", "/notifications/?unread=1"]
    admin_pages = ["/notifications/robots/", "/notifications/outbox/", "/notifications/outbox/?status=pending"]
    few = [_queries(rep_client, u) for u in pages] + [_queries(admin_client, u) for u in admin_pages]
    fill(2, 12)
    many = [_queries(rep_client, u) for u in pages] + [_queries(admin_client, u) for u in admin_pages]
    assert few == many
    assert OutboxMessage.objects.count() > 20


@pytest.mark.parametrize("username", ["rep.east1", "manager.east", "director", "finance"])
def test_robots_and_outbox_pages_are_admin_only(org, login, make_robot, username):
    robot = make_robot("wecom")
    client = login(org.users[username])
    for url in ["/notifications/robots/", "/notifications/robots/new/", f"/notifications/robots/{robot.pk}/edit/",
                "/notifications/outbox/"]:
        assert client.get(url).status_code == 403, url
    for url in [f"/notifications/robots/{robot.pk}/test", f"/notifications/robots/{robot.pk}/active",
                "/notifications/robots/new/"]:
        assert client.post(url, {"active": "0", "name": "x", "platform": "wecom"}).status_code == 403, url
    robot.refresh_from_db()
    assert robot.is_active and Robot.objects.count() == 1 and not OutboxMessage.objects.exists()


def test_admin_creates_edits_and_tests_a_robot_without_seeing_the_secret(org, login, robot_server):
    admin = login(org.users["admin"])
    secret = "SEC0123456789abcdefSECRETTAIL"
    url = robot_server.add("dingtalk", "ding-admin", secret)
    resp = admin.post("/notifications/robots/new/", {
        "name": "华东销售群", "platform": "dingtalk", "webhook_url": url, "secret": secret,
        "kinds": "health.red, report.monthly", "max_per_minute": "10", "is_active": "on",
    })
    assert resp.status_code == 302, resp.content.decode()[:2000]
    robot = Robot.objects.get()
    assert robot.kinds == ["health.red", "report.monthly"] and robot.secret == secret
    listing = admin.get("/notifications/robots/").content.decode()
    assert "华东销售群" in listing and secret not in listing and "ding-admin" not in listing
    assert "••••TAIL" in listing
    edit = admin.get(f"/notifications/robots/{robot.pk}/edit/").content.decode()
    assert secret not in edit and "••••TAIL" in edit
    # Saving the form with the secret left blank keeps it.
    resp = admin.post(f"/notifications/robots/{robot.pk}/edit/", {
        "name": "华东销售群", "platform": "dingtalk", "webhook_url": url, "secret": "",
        "kinds": "", "max_per_minute": "20", "is_active": "on",
    })
    assert resp.status_code == 302
    robot.refresh_from_db()
    assert robot.secret == secret and robot.kinds == [] and robot.max_per_minute == 20
    # The test button queues a message; a sweep delivers it, signed (verified by the stand-in server).
    resp = admin.post(f"/notifications/robots/{robot.pk}/test")
    assert resp.status_code == 302 and resp["Location"].endswith(f"?robot={robot.pk}")
    message = OutboxMessage.objects.get(robot=robot, kind="robot.test")
    from tuijin.notify.delivery import outbox_deliver_due

    outbox_deliver_due()
    message.refresh_from_db()
    assert message.status == "sent" and robot_server.count("dingtalk", "ding-admin") == 1


def test_bad_robot_input_shows_errors_and_saves_nothing(org, login):
    admin = login(org.users["admin"])
    resp = admin.post("/notifications/robots/new/", {
        "name": "", "platform": "feishu", "webhook_url": "https://open.feishu.cn/wrong/path", "max_per_minute": "500",
    })
    assert resp.status_code == 422
    body = resp.content.decode()
    assert "请填写名称" in body and "地址格式与所选平台不符" in body and "每分钟上限应在 1 到 100 之间" in body
    assert not Robot.objects.exists()


def test_outbox_page_shows_errors_and_retry_requeues(org, login, make_robot, robot_server):
    robot = make_robot("wecom")
    notify(recipients=[org.users["rep.east1"]], kind="k", title="失败的消息", dedupe_key="f1", email=False)
    row = OutboxMessage.objects.get(robot=robot)
    OutboxMessage.objects.filter(pk=row.pk).update(status="failed", attempts=8,
                                                   last_error="errcode 93000: invalid webhook url")
    admin = login(org.users["admin"])
    page = admin.get("/notifications/outbox/?status=failed").content.decode()
    assert "失败的消息" in page and "errcode 93000: invalid webhook url" in page and 'class="btn btn-outline-primary btn-sm outbox-retry"' in page
    robots_page = admin.get("/notifications/robots/").content.decode()
    assert 'href="/notifications/outbox/?status=failed" id="failed-count"' in robots_page  # the figure links to its rows
    resp = admin.post(f"/notifications/outbox/{row.pk}/retry", {"next": "/notifications/outbox/?status=failed"})
    assert resp.status_code == 302
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("pending", 0)


def test_a_webhook_on_an_internal_host_is_refused_on_the_page(org, login):
    admin = login(org.users["admin"])
    resp = admin.post("/notifications/robots/new/", {
        "name": "内网", "platform": "wecom", "webhook_url": "http://127.0.0.1:6379/cgi-bin/webhook/send?key=x",
        "max_per_minute": "20", "is_active": "on",
    })
    assert resp.status_code == 422
    assert "平台官方地址" in resp.content.decode() and "qyapi.weixin.qq.com" in resp.content.decode()
    assert not Robot.objects.exists()
