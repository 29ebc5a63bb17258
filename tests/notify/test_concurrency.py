"""Two schedulers by mistake, several workers at once (real threads on PostgreSQL): every message reaches the
local robot server exactly once, per-robot limits hold across workers, and a notification job run twice
at the same time creates each notification once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from tuijin.notify.delivery import outbox_deliver_due
from tuijin.notify.models import Notification, OutboxMessage, RobotSend
from tuijin.notify.services import notify

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="real row locks need PostgreSQL; on SQLite writers are serialised and "
           "test_delivery.test_running_the_sweep_twice_sends_each_message_once is the check",
)
pytestmark = [postgres_only, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _no_inline_delivery(monkeypatch):
    # Under pytest Huey runs tasks inline at commit; here the rows must wait for the racing workers.
    from tuijin.notify import tasks

    monkeypatch.setattr(tasks, "deliver_outbox", lambda: None)


def _threads(n, work):
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def runner(i):
        try:
            barrier.wait(timeout=30)
            results[i] = work(i)
        except Exception as exc:  # asserted on by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    return results


def _drain(i):
    """One worker: sweep in small batches until nothing is left for it."""
    sent = []
    for _ in range(50):
        report = outbox_deliver_due(limit=2)
        sent += report.sent
        if report.claimed == 0:
            break
    return sent


def test_four_workers_sweeping_at_once_send_every_message_exactly_once(org, make_robot, robot_server):
    robots = [make_robot(p) for p in ("wecom", "dingtalk", "feishu")]
    for i in range(6):
        notify(recipients=[org.users["rep.east1"]], kind="k", title=f"并发消息 {i}", dedupe_key=f"c{i}",
               email=False)
    assert OutboxMessage.objects.count() == 18
    results = _threads(4, _drain)
    assert not [r for r in results if isinstance(r, Exception)], results
    sent_ids = [pk for r in results for pk in r]
    assert len(sent_ids) == len(set(sent_ids)) == 18
    assert robot_server.count() == 18
    seen = [(d.platform, d.text) for d in robot_server.delivered]
    assert len(set(seen)) == 18  # no message twice
    assert set(OutboxMessage.objects.values_list("status", flat=True)) == {"sent"}
    assert RobotSend.objects.count() == 18
    assert len(robots) == 3


def test_robot_limit_holds_across_concurrent_workers(org, make_robot, robot_server):
    robot = make_robot("dingtalk", max_per_minute=5)
    for i in range(12):
        notify(recipients=[org.users["rep.east1"]], kind="k", title=f"限流 {i}", dedupe_key=f"rl{i}", email=False)
    _threads(4, _drain)
    assert robot_server.count() == 5 and robot_server.rejected == []
    rows = OutboxMessage.objects.filter(robot=robot)
    assert rows.filter(status="sent").count() == 5
    assert rows.filter(status="pending", attempts=0).count() == 7


def test_the_same_notification_job_twice_at_once_notifies_once(org, make_robot, robot_server):
    make_robot("feishu")
    rep, manager = org.users["rep.east1"], org.users["manager.east"]

    def job(i):
        return notify(recipients=[rep], cc=[manager], kind="health.red", title="红灯：5 天未更新商机",
                      link="/opportunities/", dedupe_key="red-light:rep.east1:2026-11-27")

    results = _threads(4, job)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sum(len(r) for r in results) == 2  # rep + manager, created by whichever run got there first
    assert Notification.objects.count() == 2
    assert OutboxMessage.objects.filter(channel="robot").count() == 1
    assert OutboxMessage.objects.filter(channel="email").count() == 2
    _threads(2, _drain)
    assert robot_server.count() == 1
