"""Scheduler wiring: `tuijin worker` schedules periodic jobs unless told not to; the outbox sweep runs every
minute, delivers what is due and prunes the rate-limit window; the immediate task after notify() delivers."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from tuijin import cli
from tuijin.notify import scheduler, tasks
from tuijin.notify.models import OutboxMessage, RobotSend, SchedulerLease
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


# -- one scheduler (security issue, item 4) -------------------------------------------------------------

def _minute():
    return timezone.now().replace(second=0, microsecond=0)


def test_the_lease_has_one_holder_until_it_expires(db, settings):
    settings.TUIJIN_SCHEDULER_LEASE_SECONDS = 30
    t0 = timezone.now()
    assert scheduler.lease_acquire(holder="A", now=t0)
    assert not scheduler.lease_acquire(holder="B", now=t0 + dt.timedelta(seconds=29))
    assert scheduler.lease_acquire(holder="A", now=t0 + dt.timedelta(seconds=20))  # renewed to t0+50 s
    assert not scheduler.lease_acquire(holder="B", now=t0 + dt.timedelta(seconds=49))
    assert scheduler.lease_acquire(holder="B", now=t0 + dt.timedelta(seconds=51))  # A stopped renewing
    assert not scheduler.lease_acquire(holder="A", now=t0 + dt.timedelta(seconds=52))
    assert SchedulerLease.objects.get().holder == "B"
    assert scheduler.lease_release(holder="A") is False  # only the holder can give it up
    assert scheduler.lease_release(holder="B") is True
    assert scheduler.lease_acquire(holder="A", now=t0 + dt.timedelta(seconds=53))  # free at once after release


def test_a_worker_without_the_lease_enqueues_no_periodic_task(db, monkeypatch):
    """The guard sits on HUEY.read_periodic, which the consumer's scheduler calls every minute."""
    monkeypatch.setattr(scheduler, "_start_heartbeat", lambda: None)
    assert getattr(HUEY.read_periodic, "tuijin_lease_guard", False)
    SchedulerLease.objects.create(name=scheduler.LEASE_NAME, holder="other-worker",
                                  expires_at=timezone.now() + dt.timedelta(minutes=5), acquired_at=timezone.now())
    assert HUEY.read_periodic(_minute()) == []
    SchedulerLease.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))  # the other one died
    due = HUEY.read_periodic(_minute())
    assert tasks.outbox_sweep.task_class in {type(t) for t in due}
    assert SchedulerLease.objects.get().holder == scheduler.HOLDER


@pytest.mark.django_db(transaction=True)
def test_two_real_workers_schedule_once_and_the_standby_takes_over(tmp_path):
    """Two `tuijin worker` processes with the scheduler on: only the lease holder enqueues periodic jobs;
    after it is killed (no release) the other takes the lease once it has expired."""
    from .test_faults import Worker, _env, _prepare_db, _wait

    env = _env(tmp_path, TUIJIN_SCHEDULER_LEASE_SECONDS="3")
    env.pop("TUIJIN_WORKER_PERIODIC", None)
    _prepare_db(env)
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = Worker(env, log_a)
    b = None
    try:
        _wait(lambda: "scheduler lease taken" in log_a.read_text(errors="replace"), 60, "A to take the lease", log_a)
        _wait(lambda: "Enqueueing periodic task" in log_a.read_text(errors="replace"), 30,
              "A to enqueue the periodic jobs of this minute", log_a)
        b = Worker(env, log_b)
        _wait(lambda: "stands by" in log_b.read_text(errors="replace"), 60, "B to stand by", log_b)
        text_b = log_b.read_text(errors="replace")
        assert "Enqueueing periodic task" not in text_b and "scheduler lease taken" not in text_b
        assert f":{a.proc.pid}:" in text_b  # B names the holder
        a.kill()  # SIGKILL: no release, B must wait for the expiry
        _wait(lambda: "scheduler lease taken" in log_b.read_text(errors="replace"), 30,
              "B to take over after the lease expired", log_b)
    finally:
        a.kill()
        if b is not None:
            b.stop()
    # A clean stop releases the lease at once (B was the holder).
    assert "scheduler lease released" in log_b.read_text(errors="replace")
