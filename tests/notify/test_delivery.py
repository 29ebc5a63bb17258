"""Delivery from the outbox against a local server that checks each platform's format and signature:
e-mail, WeCom, DingTalk (加签), Feishu (签名校验); retries with backoff, giving up, fail-fast on bad
configuration, per-robot rate limits, the platforms' own rate-limit answers, leases of dead workers."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
from django.core import mail
from django.utils import timezone

from tuijin.notify import delivery, transports
from tuijin.notify.delivery import outbox_deliver_due
from tuijin.notify.models import OutboxMessage, RobotSend
from tuijin.notify.services import notify, outbox_message_retry


def _robot_rows(robot):
    return OutboxMessage.objects.filter(robot=robot)


def _send(org, key, title="红灯提醒：王强 5 天未更新商机", body="请今天跟进上海瑞金医院 CT 项目。", robots=True):
    return notify(recipients=[org.users["rep.east1"]], kind="health.red", title=title, body=body,
                  link="/opportunities/?owner_id=5", dedupe_key=key, email=False, robots=robots)


def _make_due(qs):
    qs.update(next_attempt_at=timezone.now() - dt.timedelta(seconds=1))


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.TUIJIN_BASE_URL = "https://crm.example.cn"


# -- formats and signatures -------------------------------------------------------------------

@pytest.mark.parametrize("platform", ["wecom", "dingtalk", "feishu"])
def test_each_platform_gets_its_real_format_and_a_valid_signature(org, make_robot, robot_server, platform):
    robot = make_robot(platform)
    _send(org, f"fmt-{platform}")
    report = outbox_deliver_due()
    row = _robot_rows(robot).get()
    assert report.sent == [row.pk], (report, row.last_error, robot_server.rejected)
    assert (row.status, row.attempts) == ("sent", 1) and row.sent_at is not None
    assert robot_server.rejected == []
    [d] = robot_server.delivered
    assert d.platform == platform
    assert "红灯提醒：王强 5 天未更新商机" in d.text and "上海瑞金医院" in d.text
    assert "https://crm.example.cn/opportunities/?owner_id=5" in d.text
    if platform == "wecom":
        assert d.payload["msgtype"] == "markdown" and set(d.payload) == {"msgtype", "markdown"}
    elif platform == "dingtalk":
        assert d.payload["msgtype"] == "markdown" and d.payload["markdown"]["title"].startswith("红灯提醒")
        assert {"access_token", "timestamp", "sign"} <= set(d.query)
        assert abs(int(d.query["timestamp"]) - time.time() * 1000) < 60_000  # milliseconds
    else:
        assert d.payload["msg_type"] == "post"
        assert d.payload["content"]["post"]["zh_cn"]["title"].startswith("红灯提醒")
        assert abs(int(d.payload["timestamp"]) - time.time()) < 60  # seconds
        assert d.payload["sign"]


def test_unsigned_dingtalk_and_feishu_robots_work_without_signature_fields(org, make_robot, robot_server):
    ding = make_robot("dingtalk", secret="")
    fei = make_robot("feishu", secret="")
    _send(org, "unsigned")
    outbox_deliver_due()
    assert set(_robot_rows(ding).values_list("status", flat=True)) == {"sent"}
    assert set(_robot_rows(fei).values_list("status", flat=True)) == {"sent"}
    by_platform = {d.platform: d for d in robot_server.delivered}
    assert "sign" not in by_platform["dingtalk"].query
    assert "sign" not in by_platform["feishu"].payload


def test_signatures_match_the_documented_algorithms():
    """Feishu uses "timestamp\\nsecret" as the HMAC key over an empty message; DingTalk the secret as key."""
    import base64
    import hashlib
    import hmac

    secret, ts = "SECabc", 1599360473
    feishu = base64.b64encode(hmac.new(f"{ts}\n{secret}".encode(), b"", hashlib.sha256).digest()).decode()
    dingtalk = base64.b64encode(hmac.new(secret.encode(), f"{ts}\n{secret}".encode(), hashlib.sha256).digest()).decode()
    assert transports.feishu_sign(secret, ts) == feishu
    assert transports.dingtalk_sign(secret, ts) == dingtalk
    assert feishu != dingtalk


@pytest.mark.parametrize("platform,code", [("dingtalk", 310000), ("feishu", 19021)])
def test_a_stale_timestamp_is_refused_by_the_platform(org, make_robot, robot_server, platform, code):
    robot = make_robot(platform)
    url, payload = transports.robot_request(robot, title="t", body="b", link="", now=time.time() - 7200)
    status, raw = transports._post_json(url, payload)
    answer = json.loads(raw)
    assert status == 200 and answer.get("errcode", answer.get("code")) == code
    assert robot_server.rejected == [(platform, "stale timestamp")]


@pytest.mark.parametrize("platform,code", [("dingtalk", "errcode 310000"), ("feishu", "code 19021")])
def test_wrong_secret_fails_fast_with_the_platform_error(org, make_robot, robot_server, platform, code):
    robot = make_robot(platform)
    robot.secret = "SECsomething-else-entirely"
    robot.save()
    _send(org, f"wrong-secret-{platform}")
    report = outbox_deliver_due()
    row = _robot_rows(robot).get()
    assert report.failed == [row.pk]
    assert (row.status, row.attempts) == ("failed", 1)  # no pointless retries of a bad configuration
    assert code in row.last_error
    assert robot_server.count() == 0


def test_unknown_wecom_key_fails_fast(org, make_robot, robot_server):
    robot = make_robot("wecom")
    robot.webhook_url = robot.webhook_url.replace("key=", "key=nosuch")
    robot.save()
    _send(org, "bad-key")
    outbox_deliver_due()
    row = _robot_rows(robot).get()
    assert row.status == "failed" and "93000" in row.last_error


def test_long_bodies_are_cut_to_the_platform_limit(org, make_robot, robot_server):
    robot = make_robot("wecom")
    _send(org, "long", body="很长的内容" * 2000)
    outbox_deliver_due()
    assert _robot_rows(robot).get().status == "sent"
    assert len(robot_server.delivered[0].text.encode()) <= 4096


def test_email_is_sent_through_djangos_backend_with_an_absolute_link(org):
    rep = org.users["rep.east1"]
    rep.email = "wang.qiang@example.cn"
    rep.save()
    notify(recipients=[rep], kind="report.monthly", title="11 月目标偏差分析报告", body="华东区缺口 ¥120,000",
           link="/goals/reports/7/", dedupe_key="mail-1", robots=False)
    report = outbox_deliver_due()
    row = OutboxMessage.objects.get(channel="email")
    assert report.sent == [row.pk] and row.status == "sent"
    [msg] = mail.outbox
    assert msg.to == ["wang.qiang@example.cn"] and msg.subject == "11 月目标偏差分析报告"
    assert "华东区缺口 ¥120,000" in msg.body and "https://crm.example.cn/goals/reports/7/" in msg.body


def test_email_backend_error_is_retried(org, settings):
    settings.EMAIL_BACKEND = "tests.notify.test_delivery.BrokenBackend"
    rep = org.users["rep.east1"]
    rep.email = "a@example.cn"
    rep.save()
    notify(recipients=[rep], kind="k", title="t", dedupe_key="mail-broken", robots=False)
    outbox_deliver_due()
    row = OutboxMessage.objects.get(channel="email")
    assert (row.status, row.attempts) == ("pending", 1) and "mail error" in row.last_error


class BrokenBackend:
    def __init__(self, *a, **k):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP server down")


# -- retries, backoff, giving up --------------------------------------------------------------

def test_failures_are_retried_with_exponential_backoff_until_sent(org, make_robot, robot_server):
    robot = make_robot("dingtalk")
    _send(org, "retry")
    robot_server.fail_next(1, "http500")
    robot_server.fail_next(1, "busy")
    row = _robot_rows(robot)
    waits = []
    for _ in range(2):
        before = timezone.now()
        outbox_deliver_due()
        r = row.get()
        assert r.status == "pending"
        waits.append(round((r.next_attempt_at - before).total_seconds()))
        _make_due(row)
    assert waits == [30, 60]
    assert "errcode -1" in row.get().last_error  # the platform's "system busy" is retried, not fatal
    outbox_deliver_due()
    r = row.get()
    assert (r.status, r.attempts) == ("sent", 3)
    assert robot_server.count() == 1


def test_after_max_attempts_the_message_fails_and_an_admin_can_retry_it(org, make_robot, robot_server, settings):
    settings.TUIJIN_NOTIFY_MAX_ATTEMPTS = 3
    robot = make_robot("feishu")
    _send(org, "give-up")
    robot_server.fail_next(3, "http500")
    row = _robot_rows(robot)
    for _ in range(3):
        outbox_deliver_due()
        _make_due(row.filter(status="pending"))
    r = row.get()
    assert (r.status, r.attempts) == ("failed", 3) and "HTTP 500" in r.last_error
    assert outbox_deliver_due().claimed == 0  # failed rows are left alone
    outbox_message_retry(actor=org.users["admin"], message=r)
    outbox_deliver_due()
    assert row.get().status == "sent" and robot_server.count() == 1


def test_timeouts_are_retried(org, make_robot, robot_server, settings):
    settings.TUIJIN_NOTIFY_HTTP_TIMEOUT = 1
    robot = make_robot("wecom")
    _send(org, "slow")
    robot_server.fail_next(1, "slow")
    outbox_deliver_due()
    r = _robot_rows(robot).get()
    assert r.status == "pending" and "network error" in r.last_error


def test_disabled_robot_messages_fail_visibly(org, make_robot, robot_server):
    robot = make_robot("wecom")
    _send(org, "then-disabled")
    robot.is_active = False
    robot.save()
    outbox_deliver_due()
    r = _robot_rows(robot).get()
    assert r.status == "failed" and "disabled" in r.last_error and robot_server.count() == 0


# -- rate limits ------------------------------------------------------------------------------

def test_robot_limit_postpones_the_rest_without_dropping_them(org, make_robot, robot_server):
    robot = make_robot("wecom", max_per_minute=3)
    for i in range(5):
        _send(org, f"burst-{i}", title=f"提醒 {i}")
    report = outbox_deliver_due()
    assert len(report.sent) == 3 and len(report.postponed) == 2
    assert robot_server.count() == 3 and robot_server.rejected == []
    first_send = RobotSend.objects.filter(robot=robot).order_by("at").first().at
    waiting = _robot_rows(robot).filter(status="pending")
    assert waiting.count() == 2
    for r in waiting:
        assert r.attempts == 0  # waiting for the window is not a failed attempt
        assert dt.timedelta(seconds=59) < r.next_attempt_at - first_send < dt.timedelta(seconds=61)
    assert outbox_deliver_due().claimed == 0  # not due yet
    # A minute later the window has room again.
    RobotSend.objects.filter(robot=robot).update(at=timezone.now() - dt.timedelta(seconds=61))
    _make_due(waiting)
    assert len(outbox_deliver_due().sent) == 2
    assert robot_server.count() == 5
    assert sorted(d.text.split("\n")[0] for d in robot_server.delivered) == [f"**提醒 {i}**" for i in range(5)]


def test_default_limit_keeps_within_the_platform_limit(org, make_robot, robot_server):
    """25 messages to one DingTalk robot: the server (enforcing 20/min) never has to refuse one."""
    robot = make_robot("dingtalk")
    for i in range(25):
        _send(org, f"many-{i}")
    outbox_deliver_due()
    assert robot_server.count() == 20 and robot_server.rejected == []
    assert _robot_rows(robot).filter(status="pending").count() == 5


@pytest.mark.parametrize("platform,wait", [("wecom", 60), ("dingtalk", 600), ("feishu", 60)])
def test_platform_rate_limit_answer_postpones_without_counting_an_attempt(org, make_robot, robot_server,
                                                                           platform, wait):
    robot = make_robot(platform)
    _send(org, f"rl-{platform}")
    robot_server.fail_next(1, "rate")
    before = timezone.now()
    report = outbox_deliver_due()
    r = _robot_rows(robot).get()
    assert report.postponed == [r.pk]
    assert (r.status, r.attempts) == ("pending", 0)
    assert round((r.next_attempt_at - before).total_seconds()) == wait


# -- claims and leases ------------------------------------------------------------------------

def test_rows_held_by_a_dead_worker_are_reclaimed_after_the_lease(org, make_robot, robot_server):
    robot = make_robot("feishu")
    _send(org, "lease")
    claimed = delivery._claim("dead-worker-token", 10, None)  # a worker claimed it, then died
    assert [m.pk for m in claimed] == list(_robot_rows(robot).values_list("pk", flat=True))
    assert outbox_deliver_due().claimed == 0  # still leased
    _robot_rows(robot).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    assert len(outbox_deliver_due().sent) == 1
    assert robot_server.count() == 1
    assert _robot_rows(robot).get().status == "sent"


def test_a_late_worker_cannot_overwrite_the_new_owners_result(org, make_robot, robot_server):
    robot = make_robot("wecom")
    _send(org, "late")
    [old] = delivery._claim("old-token", 10, None)
    _robot_rows(robot).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    outbox_deliver_due()  # the new owner sends it
    outcome = delivery._record_failure(old, "old-token", 1, transports.SendFailure("timed out"))
    assert outcome == "skipped"
    assert delivery._deliver_one(old, "old-token") == "skipped"  # nor send it again
    assert _robot_rows(robot).get().status == "sent" and robot_server.count() == 1


def test_the_documented_at_least_once_window(org, make_robot, robot_server):
    """A worker that dies after the platform accepted, before it wrote "sent": the row is sent again."""
    robot = make_robot("wecom")
    _send(org, "window")
    [m] = delivery._claim("dies-after-send", 10, None)
    transports.send(m)  # accepted by the platform... and the worker dies here
    _robot_rows(robot).update(lease_until=timezone.now() - dt.timedelta(seconds=1))
    outbox_deliver_due()
    assert robot_server.count() == 2  # no loss; one duplicate, as docs/notifications.md states


def test_running_the_sweep_twice_sends_each_message_once(org, make_robot, robot_server):
    robots = [make_robot(p) for p in ("wecom", "dingtalk", "feishu")]
    for i in range(4):
        _send(org, f"twice-{i}", title=f"提醒 {i}")
    outbox_deliver_due()
    outbox_deliver_due()
    assert robot_server.count() == 12
    keys = [(d.token, d.text) for d in robot_server.delivered]
    assert len(set(keys)) == 12
    for robot in robots:
        assert set(_robot_rows(robot).values_list("status", flat=True)) == {"sent"}


def test_a_stored_robot_outside_the_allow_list_is_never_contacted(org, make_robot, robot_server, settings):
    """A robot saved before the allow-list (or after it was narrowed) fails at once, without a request."""
    robot = make_robot("wecom")
    _send(org, "legacy-host")
    settings.TUIJIN_ROBOT_ALLOWED_HOSTS = ["qyapi.weixin.qq.com"]
    outbox_deliver_due()
    row = _robot_rows(robot).get()
    assert row.status == "failed" and "not allowed" in row.last_error
    assert robot_server.count() == 0 and robot_server.rejected == []


def test_a_webhook_redirect_is_not_followed(org, make_robot, robot_server, monkeypatch):
    import http.server
    import threading

    hits = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/internal")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST  # urllib follows a 302 after a POST with a GET

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        robot = make_robot("wecom")
        type(robot).objects.filter(pk=robot.pk).update(
            webhook_url=f"http://127.0.0.1:{httpd.server_address[1]}/cgi-bin/webhook/send?key=r")
        _send(org, "redirect")
        outbox_deliver_due()
    finally:
        httpd.shutdown()
        httpd.server_close()
    row = _robot_rows(robot).get()
    assert hits == ["/cgi-bin/webhook/send?key=r"] and row.status != "sent" and "302" in row.last_error
