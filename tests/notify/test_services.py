"""notify(): dedupe keys, cc, e-mail and robot outbox rows, robot filters; a queue that is down never fails
the caller; mark-read only touches the actor's own notifications; robot services validate and audit."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, NotFound, ValidationFailed
from tuijin.notify import tasks
from tuijin.notify.models import Notification, OutboxMessage, Robot
from tuijin.notify.services import (
    notification_mark_read,
    notify,
    outbox_message_retry,
    robot_create,
    robot_send_test,
    robot_update,
)


def _notify(users, key="k1", **kw):
    kw.setdefault("kind", "health.red")
    kw.setdefault("title", "红灯提醒")
    return notify(recipients=users, dedupe_key=key, link="/opportunities/", **kw)


def test_same_dedupe_key_twice_gives_one_notification_and_one_outbox_row_per_channel(org, make_robot):
    rep, manager = org.users["rep.east1"], org.users["manager.east"]
    rep.email, manager.email = "rep@example.com", "mgr@example.com"
    rep.save(), manager.save()
    robot = make_robot("dingtalk")
    first = notify(recipients=[rep], cc=[manager], kind="health.red", title="红灯", dedupe_key="red:1",
                   link="/x/")
    second = notify(recipients=[rep], cc=[manager], kind="health.red", title="红灯", dedupe_key="red:1",
                    link="/x/")
    assert len(first) == 2 and second == []
    assert Notification.objects.filter(dedupe_key="red:1").count() == 2
    assert Notification.objects.get(recipient=manager).is_cc is True
    emails = OutboxMessage.objects.filter(channel="email")
    assert sorted(emails.values_list("to_email", flat=True)) == ["mgr@example.com", "rep@example.com"]
    assert OutboxMessage.objects.filter(channel="robot", robot=robot).count() == 1


def test_inactive_users_and_duplicates_in_the_list_are_skipped(org):
    rep = org.users["rep.east2"]
    gone = org.users["rep.south1"]
    gone.is_active = False
    gone.save()
    created = _notify([rep, rep, gone], key="k-dup", cc=[rep])
    assert [n.recipient for n in created] == [rep]


def test_email_false_and_users_without_address_write_no_email_row(org):
    rep = org.users["rep.east1"]
    rep.email = ""
    rep.save()
    _notify([rep], key="no-mail")
    other = org.users["rep.east2"]
    other.email = "x@example.com"
    other.save()
    _notify([other], key="opt-out", email=False)
    assert not OutboxMessage.objects.filter(channel="email").exists()


def test_robots_receive_only_their_kinds_and_their_org_subtree(org, make_robot):
    everything = make_robot("wecom")
    only_reports = make_robot("feishu", kinds=["report.monthly"])
    east_unit = org.users["rep.east1"].org_unit
    region = east_unit
    while region.parent_id and region.kind != "region":
        region = region.parent
    east_only = make_robot("dingtalk", org_unit=region)
    _notify([org.users["rep.east1"]], key="east-red")
    _notify([org.users["rep.south1"]], key="south-red")
    rows = OutboxMessage.objects.filter(channel="robot")
    assert set(rows.filter(robot=everything).values_list("dedupe_key", flat=True)) == {
        f"robot:{everything.pk}:east-red", f"robot:{everything.pk}:south-red"}
    assert not rows.filter(robot=only_reports).exists()
    assert list(rows.filter(robot=east_only).values_list("dedupe_key", flat=True)) == [f"robot:{east_only.pk}:east-red"]


def test_disabled_robots_get_nothing(org, make_robot):
    robot = make_robot("wecom", is_active=False)
    _notify([org.users["rep.east1"]], key="k-disabled")
    assert not OutboxMessage.objects.filter(robot=robot).exists()


@pytest.mark.django_db(transaction=True)
def test_queue_down_does_not_fail_the_caller_and_rows_stay_committed(org, make_robot, monkeypatch, caplog):
    """Redis unavailable: enqueueing after commit raises, notify() returns normally, the rows wait."""
    make_robot("wecom")

    def broken_enqueue(*a, **k):
        raise ConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(tasks, "deliver_outbox", broken_enqueue)
    with caplog.at_level(logging.ERROR, logger="tuijin.notify.tasks"):
        with transaction.atomic():
            created = _notify([org.users["rep.east1"]], key="redis-down")
    assert len(created) == 1
    assert "could not enqueue outbox delivery" in caplog.text
    row = OutboxMessage.objects.get(channel="robot")
    assert row.status == "pending" and row.attempts == 0


@pytest.mark.django_db(transaction=True)
def test_notify_kicks_delivery_after_commit_only(org, make_robot, monkeypatch):
    make_robot("wecom")
    kicked = []
    monkeypatch.setattr(tasks, "deliver_outbox", lambda: kicked.append(OutboxMessage.objects.count()))
    with transaction.atomic():
        _notify([org.users["rep.east1"]], key="kick")
        assert kicked == []  # nothing is enqueued while the caller's transaction is open
    rows = OutboxMessage.objects.count()
    assert rows == 2 and kicked == [rows]  # e-mail + robot, already committed when the worker is asked
    _notify([org.users["rep.east1"]], key="kick")  # dedupe: no new rows, no new kick
    assert kicked == [rows]
    with transaction.atomic():  # a job notifying many people asks for delivery once
        for i in range(5):
            _notify([org.users["rep.east2"]], key=f"batch-{i}")
    assert len(kicked) == 2


def test_mark_read_touches_only_own_notifications_and_foreign_ids_are_not_found(org):
    a, b = org.users["rep.east1"], org.users["rep.east2"]
    na = _notify([a], key="m1")[0]
    nb = _notify([b], key="m1")[0]
    with pytest.raises(NotFound):
        notification_mark_read(actor=a, notification_ids=[na.pk, nb.pk])
    na.refresh_from_db(), nb.refresh_from_db()
    assert na.read_at is None and nb.read_at is None  # nothing written on error
    assert notification_mark_read(actor=a, notification_ids=[na.pk]) == 1
    _notify([a], key="m2"), _notify([a], key="m3")
    assert notification_mark_read(actor=a) == 2
    nb.refresh_from_db()
    assert nb.read_at is None


def test_robot_services_are_admin_only(org, robot_server):
    url = robot_server.add("wecom", "k")
    for username in ["director", "manager.east", "rep.east1"]:
        with pytest.raises(Forbidden):
            robot_create(actor=org.users[username], name="x", platform="wecom", webhook_url=url)
    assert not Robot.objects.exists()


def test_robot_validation_names_each_field_and_saves_nothing(org):
    admin = org.users["admin"]
    with pytest.raises(ValidationFailed) as exc:
        robot_create(actor=admin, name="", platform="dingtalk", webhook_url="ftp://x", max_per_minute=50)
    assert set(exc.value.errors) == {"name", "webhook_url", "max_per_minute"}
    with pytest.raises(ValidationFailed) as exc:
        robot_create(actor=admin, name="钉钉", platform="dingtalk",
                     webhook_url="https://oapi.dingtalk.com/cgi-bin/webhook/send?key=abc")
    assert "webhook_url" in exc.value.errors  # a WeCom URL for a DingTalk robot
    with pytest.raises(ValidationFailed) as exc:
        robot_create(actor=admin, name="企微", platform="wecom", secret="SECabc",
                     webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc")
    assert "secret" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        robot_create(actor=admin, name="x", platform="feishu", kinds=[""],
                     webhook_url="https://open.feishu.cn/open-apis/bot/v2/hook/abc-123")
    assert "kinds" in exc.value.errors
    assert not Robot.objects.exists()


def test_robot_audit_never_contains_the_secret_or_the_url_credential(org):
    admin = org.users["admin"]
    secret = "SECverysecretvalue123456"
    robot = robot_create(actor=admin, name="钉钉群", platform="dingtalk", secret=secret,
                         webhook_url="https://oapi.dingtalk.com/robot/send?access_token=tokenvalue987654321")
    robot_update(actor=admin, robot=robot, secret="SECanothersecret000999", name="钉钉大群")
    robot_update(actor=admin, robot=robot, secret="", max_per_minute=10)  # blank keeps the secret
    robot.refresh_from_db()
    assert robot.secret == "SECanothersecret000999" and robot.max_per_minute == 10
    events = list(history_for(robot))
    assert [e.action for e in events] == ["create", "update", "update"]
    dumped = repr([e.changes for e in events])
    for credential in (secret, "SECanothersecret000999", "tokenvalue987654321"):
        assert credential not in dumped
    assert "secret" in events[1].changes and "secret" not in events[2].changes
    assert events[2].changes["max_per_minute"] == [20, 10]


def test_send_test_and_retry_queue_outbox_rows_with_an_audit_event(org, make_robot):
    admin = org.users["admin"]
    robot = make_robot("feishu")
    message = robot_send_test(actor=admin, robot=robot)
    assert message.status == "pending" and message.robot == robot and message.kind == "robot.test"
    OutboxMessage.objects.filter(pk=message.pk).update(status="failed", attempts=8, last_error="HTTP 500")
    message.refresh_from_db()
    retried = outbox_message_retry(actor=admin, message=message)
    assert (retried.status, retried.attempts) == ("pending", 0)
    assert [e.action for e in history_for(retried)] == ["retry"]
    OutboxMessage.objects.filter(pk=message.pk).update(status="sent")
    with pytest.raises(ValidationFailed):
        outbox_message_retry(actor=admin, message=message)
    with pytest.raises(Forbidden):
        outbox_message_retry(actor=org.users["director"], message=message)


# -- webhook host allow-list (security issue, item 3) ------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8000/cgi-bin/webhook/send?key=abc",  # the internal network
    "https://127.0.0.1/cgi-bin/webhook/send?key=abc",
    "http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc",  # the right host, but not https
    "https://qyapi.weixin.qq.com.evil.example/cgi-bin/webhook/send?key=abc",
    "https://qyapi.weixin.qq.com@169.254.169.254/cgi-bin/webhook/send?key=abc",
    "https://evil.example/cgi-bin/webhook/send?key=abc",
])
def test_robot_webhooks_only_point_at_the_platforms_hosts_over_https(org, url):
    with pytest.raises(ValidationFailed) as exc:
        robot_create(actor=org.users["admin"], name="x", platform="wecom", webhook_url=url)
    assert "qyapi.weixin.qq.com" in exc.value.errors["webhook_url"][0]
    assert not Robot.objects.exists()


def test_the_official_hosts_are_allowed_by_default(org):
    admin = org.users["admin"]
    for platform, url in [
        ("wecom", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc"),
        ("dingtalk", "https://oapi.dingtalk.com/robot/send?access_token=abc"),
        ("feishu", "https://open.feishu.cn/open-apis/bot/v2/hook/abc"),
        ("feishu", "https://OPEN.LARKSUITE.COM/open-apis/bot/v2/hook/abc"),
    ]:
        robot_create(actor=admin, name=platform, platform=platform, webhook_url=url)
    assert Robot.objects.count() == 4


def test_the_allow_list_is_a_setting_and_http_needs_an_explicit_entry(org, settings):
    admin = org.users["admin"]
    settings.TUIJIN_ROBOT_ALLOWED_HOSTS = ["robots.proxy.corp"]
    robot_create(actor=admin, name="a", platform="wecom",
                 webhook_url="https://robots.proxy.corp/cgi-bin/webhook/send?key=abc")
    with pytest.raises(ValidationFailed):  # the list replaces the defaults
        robot_create(actor=admin, name="b", platform="wecom",
                     webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=abc")
    with pytest.raises(ValidationFailed):
        robot_create(actor=admin, name="c", platform="wecom",
                     webhook_url="http://robots.proxy.corp/cgi-bin/webhook/send?key=abc")
    settings.TUIJIN_ROBOT_ALLOWED_HOSTS = ["http://robots.proxy.corp:8080"]
    robot_create(actor=admin, name="d", platform="wecom",
                 webhook_url="http://robots.proxy.corp:8080/cgi-bin/webhook/send?key=abc")
    with pytest.raises(ValidationFailed):  # the port is part of that entry
        robot_create(actor=admin, name="e", platform="wecom",
                     webhook_url="http://robots.proxy.corp:9090/cgi-bin/webhook/send?key=abc")
    assert sorted(Robot.objects.values_list("name", flat=True)) == ["a", "d"]
