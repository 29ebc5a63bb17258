"""Scheduler wiring: `tuijin worker` schedules periodic jobs unless told not to; the outbox sweep runs every
minute, delivers what is due and prunes the rate-limit window; the immediate task after notify() delivers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from tuijin import cli
from tuijin.notify import tasks
from tuijin.notify.models import OutboxMessage, RobotSend
from tuijin.notify.services import notify


@pytest.fixture
def manage_calls(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "_manage", lambda args: calls.append(args) or 0)
    return calls


def test_worker_schedules_periodic_jobs_by_default(manage_calls, monkeypatch):
    monkeypatch.delenv("TUIJIN_WORKER_PERIODIC", raising=False)
    cli.main(["worker"])
    assert manage_calls == [["run_huey"]]


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_extra_workers_are_started_without_the_scheduler(manage_calls, monkeypatch, value):
    monkeypatch.setenv("TUIJIN_WORKER_PERIODIC", value)
    cli.main(["worker", "--max-delay", "1"])
    assert manage_calls == [["run_huey", "--max-delay", "1", "--no-periodic"]]


def test_no_periodic_flag_passes_through(manage_calls, monkeypatch):
    monkeypatch.delenv("TUIJIN_WORKER_PERIODIC", raising=False)
    cli.main(["worker", "--no-periodic"])
    assert manage_calls == [["run_huey", "--no-periodic"]]


def test_the_sweep_is_a_periodic_task_every_minute():
    assert tasks.outbox_sweep.task_class in HUEY._registry._periodic_tasks
    assert tasks.deliver_outbox.task_class not in HUEY._registry._periodic_tasks
    sweep = tasks.outbox_sweep.task_class()
    minute = timezone.now().replace(second=0, microsecond=0)
    assert all(sweep.validate_datetime(minute + dt.timedelta(minutes=i)) for i in range(0, 120, 7))


def test_periodic_sweep_delivers_due_rows_and_prunes_the_window(org, make_robot, robot_server):
    robot = make_robot("feishu")
    RobotSend.objects.create(robot=robot, at=timezone.now() - dt.timedelta(hours=2))
    notify(recipients=[org.users["rep.east1"]], kind="k", title="周期任务", dedupe_key="tick", email=False)
    assert tasks.outbox_sweep.call_local() == 1
    assert robot_server.count() == 1
    assert RobotSend.objects.filter(at__lt=timezone.now() - dt.timedelta(hours=1)).count() == 0
    assert tasks.outbox_sweep.call_local() == 0  # a second tick sends nothing again


@pytest.mark.django_db(transaction=True)
def test_notify_delivers_right_after_commit(org, make_robot, robot_server):
    """Under pytest Huey runs inline, so the immediate task's effect is visible at once."""
    make_robot("wecom")
    with transaction.atomic():
        notify(recipients=[org.users["rep.east1"]], kind="k", title="立即送达", dedupe_key="now", email=False)
        assert robot_server.count() == 0
    assert robot_server.count() == 1
    assert OutboxMessage.objects.get(channel="robot").status == "sent"
