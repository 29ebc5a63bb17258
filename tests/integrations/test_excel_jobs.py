"""Import jobs never get stuck: lease and heartbeat, the sweep, restart, queue failures, retention of every state.

In-process tests pass the clock (`now=`) instead of waiting; the tests with real processes (a `tuijin
worker` killed with SIGKILL, Redis on a dead port) are in test_excel_job_faults.py.
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.cache import cache
from django.test import override_settings
from django.utils import timezone
from redis.exceptions import ConnectionError as RedisConnectionError

from tuijin.core import audit
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Customer
from tuijin.integrations.excel import services, tasks
from tuijin.integrations.excel.models import ImportJob

from .helpers import row, upload, xlsx_bytes

TIMEOUT = 120  # TUIJIN_IMPORT_HEARTBEAT_TIMEOUT in these tests


def _validated(org, n: int = 5, first: int = 1) -> ImportJob:
    job = services.import_job_create(actor=org.users["rep.east1"], filename="c.xlsx",
                                     data=xlsx_bytes([row(i) for i in range(first, first + n)]))
    assert job.status == "validated" and job.report["create"] == n, job.error
    return job


def _as_if(job: ImportJob, status: str, **fields) -> ImportJob:
    ImportJob.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


def _imported(first: int = 1, n: int = 5) -> int:
    return Customer.objects.filter(name__in=[row(i)["客户名称*"] for i in range(first, first + n)]).count()


@override_settings(TUIJIN_IMPORT_HEARTBEAT_TIMEOUT=TIMEOUT)
def test_a_running_job_without_heartbeat_is_interrupted_by_the_sweep_and_restarts(org, login):
    now = timezone.now()
    later = now + dt.timedelta(seconds=TIMEOUT + 5)
    dead = _as_if(_validated(org), "running", started_at=now, heartbeat_at=now)
    alive = _as_if(_validated(org, first=10), "running", started_at=now, heartbeat_at=later)
    # Renewing only the cache key (SQLite: the import's transaction holds the write lock) keeps a job alive.
    alive_in_cache = _as_if(_validated(org, first=20), "running", started_at=now, heartbeat_at=now)
    cache.set(services._heartbeat_key(alive_in_cache.pk), later.timestamp())

    assert services.import_jobs_sweep(now=later) == 1
    for job in (dead, alive, alive_in_cache):
        job.refresh_from_db()
    assert (dead.status, alive.status, alive_in_cache.status) == ("interrupted", "running", "running")
    assert "中断" in dead.error and dead.finished_at == later and dead.heartbeat_at is None
    assert AuditEvent.objects.filter(object_id=str(dead.pk), action="interrupted").count() == 1
    assert services.import_jobs_sweep(now=later) == 0  # idempotent

    client = login(org.users["rep.east1"])
    page = client.get(f"/import/jobs/{dead.pk}/").content.decode()
    assert "import-interrupted" in page and "重新开始" in page and "hx-trigger" not in page
    # Restart: the import is one transaction, so the first attempt left nothing behind; it runs whole.
    assert client.post(f"/import/jobs/{dead.pk}/start").status_code == 302
    dead.refresh_from_db()
    assert dead.status == "done" and dead.created_count == 5 and _imported() == 5, dead.error
    assert AuditEvent.objects.filter(object_id=str(dead.pk), action="restart").count() == 1
    assert audit.verify().ok


def test_viewing_a_stale_job_marks_it_interrupted_without_waiting_for_the_sweep(org, login):
    long_ago = timezone.now() - dt.timedelta(hours=1)
    job = _as_if(_validated(org), "running", started_at=long_ago, heartbeat_at=long_ago)
    cache.delete(services._heartbeat_key(job.pk))
    client = login(org.users["rep.east1"])
    partial = client.get(f"/import/jobs/{job.pk}/progress")
    assert partial.status_code == 200 and "重新开始" in partial.content.decode()
    job.refresh_from_db()
    assert job.status == "interrupted"


def test_a_healthy_running_job_is_only_read_when_its_page_polls(org, login):
    now = timezone.now()
    job = _as_if(_validated(org), "running", started_at=now, heartbeat_at=now)
    client = login(org.users["rep.east1"])
    events = AuditEvent.objects.count()
    resp = client.get(f"/import/jobs/{job.pk}/progress")
    assert 'hx-trigger="every 1s"' in resp.content.decode()
    job.refresh_from_db()
    assert job.status == "running" and AuditEvent.objects.count() == events


def test_the_job_page_polls_while_the_dry_run_runs_and_reloads_when_it_is_done(org, login):
    now = timezone.now()
    job = _validated(org)
    report = job.report
    _as_if(job, "validating", report={}, heartbeat_at=now)
    services.progress_set(job.pk, 1500, 0)
    client = login(org.users["rep.east1"])
    page = client.get(f"/import/jobs/{job.pk}/").content.decode()
    assert "正在校验，已读取 1500 行" in page and 'hx-trigger="every 1s"' in page and "import-errors" not in page
    _as_if(job, "validated", report=report)
    partial = client.get(f"/import/jobs/{job.pk}/progress", HTTP_HX_REQUEST="true")
    assert partial["HX-Refresh"] == "true" and "hx-trigger" not in partial.content.decode()


@override_settings(TUIJIN_IMPORT_QUEUE_TIMEOUT=3600)
def test_jobs_lost_in_the_queue_are_interrupted_and_can_be_started_again(org, login):
    now = timezone.now()
    lost_import = _as_if(_validated(org), "queued", queued_at=now - dt.timedelta(hours=2))
    waiting = _as_if(_validated(org, first=10), "queued", queued_at=now - dt.timedelta(minutes=5))
    lost_dry_run = _as_if(_validated(org, first=20), "validating", queued_at=now - dt.timedelta(hours=2),
                          report={}, total_rows=0)
    assert services.import_jobs_sweep(now=now) == 2
    for job in (lost_import, waiting, lost_dry_run):
        job.refresh_from_db()
    assert (lost_import.status, waiting.status, lost_dry_run.status) == ("interrupted", "queued", "interrupted")
    assert "队列" in lost_import.error

    client = login(org.users["rep.east1"])
    client.post(f"/import/jobs/{lost_import.pk}/start")
    client.post(f"/import/jobs/{lost_dry_run.pk}/start")
    lost_import.refresh_from_db()
    lost_dry_run.refresh_from_db()
    assert lost_import.status == "done" and _imported() == 5
    # A dry run that never finished is run again first; then it is started like any validated job.
    assert lost_dry_run.status == "validated" and lost_dry_run.report["create"] == 5
    assert _imported(first=20) == 0


def test_a_finished_or_validated_job_cannot_be_restarted(org, login):
    client = login(org.users["rep.east1"])
    job = _validated(org)
    client.post(f"/import/jobs/{job.pk}/start")
    job.refresh_from_db()
    assert job.status == "done"
    resp = client.post(f"/import/jobs/{job.pk}/start", follow=True)
    assert "已经开始或已结束" in resp.content.decode()
    assert _imported() == 5


# ---------------------------------------------------------------------------
# The queue cannot be reached (Redis down): a clear message, a 503 in the API, and start can be retried
# ---------------------------------------------------------------------------


@pytest.fixture
def queue_down(monkeypatch):
    """queue_down() → enqueueing raises what redis-py raises for a dead Redis; .undo() brings it back."""

    def unreachable(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    def down():
        monkeypatch.setattr(tasks, "import_job_run_task", unreachable)
        monkeypatch.setattr(tasks, "import_job_validate_task", unreachable)
        return monkeypatch

    return down


def test_start_while_the_queue_is_down_says_so_and_can_be_retried(org, login, api_client, queue_down):
    job = _validated(org)
    queue = queue_down()
    client = login(org.users["rep.east1"])
    resp = client.post(f"/import/jobs/{job.pk}/start", follow=True)
    assert resp.status_code == 200 and "任务队列暂时无法连接" in resp.content.decode()
    job.refresh_from_db()
    assert job.status == "validated" and job.queued_at is None

    api = api_client(org.users["rep.east1"])
    resp = api.post(f"/api/imports/{job.pk}/start")
    assert resp.status_code == 503
    assert "任务队列暂时无法连接" in resp.json()["detail"] and resp.json()["job"]["status"] == "validated"
    assert api.get(f"/api/imports/{job.pk}").status_code == 200
    assert AuditEvent.objects.filter(object_id=str(job.pk), action="enqueue_failed").count() == 2

    queue.undo()  # the queue is back: the same job starts
    resp = api.post(f"/api/imports/{job.pk}/start")
    assert resp.status_code == 202 and resp.json()["status"] == "done" and _imported() == 5


def test_upload_while_the_queue_is_down_keeps_the_file_and_the_dry_run_can_be_started(org, login, queue_down):
    queue = queue_down()
    client = login(org.users["rep.east1"])
    resp = upload(client, xlsx_bytes([row(i) for i in range(1, 6)]))
    assert resp.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == "interrupted" and "任务队列暂时无法连接" in job.error
    page = client.get(resp["Location"])
    assert page.status_code == 200 and "任务队列暂时无法连接" in page.content.decode()
    queue.undo()
    client.post(f"/import/jobs/{job.pk}/start")
    job.refresh_from_db()
    assert job.status == "validated" and job.report["create"] == 5


def test_the_api_uploads_polls_and_starts(org, api_client):
    api = api_client(org.users["rep.east1"])
    from django.core.files.uploadedfile import SimpleUploadedFile

    resp = api.post("/api/imports", {"file": SimpleUploadedFile("c.xlsx", xlsx_bytes([row(1), row(2)]))})
    assert resp.status_code == 202, resp.content
    job_id = resp.json()["id"]
    got = api.get(f"/api/imports/{job_id}").json()
    assert got["status"] == "validated" and got["report"]["create"] == 2
    assert api.post(f"/api/imports/{job_id}/start").json()["status"] == "done"
    bad = api.post("/api/imports", {"file": SimpleUploadedFile("notes.pdf", b"%PDF")})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "file"]
    # Another user's job is invisible; cross-role staff cannot import.
    assert api_client(org.users["rep.east2"]).get(f"/api/imports/{job_id}").status_code == 404
    assert api_client(org.users["rep.east2"]).post(f"/api/imports/{job_id}/start").status_code == 404
    finance = api_client(org.users["finance"])
    assert finance.post("/api/imports", {"file": SimpleUploadedFile("c.xlsx", b"x")}).status_code == 403


# ---------------------------------------------------------------------------
# Retention: every state's file goes
# ---------------------------------------------------------------------------


@override_settings(TUIJIN_IMPORT_FILE_RETENTION_DAYS=7, TUIJIN_IMPORT_HEARTBEAT_TIMEOUT=TIMEOUT)
def test_retention_purges_every_state_and_spares_only_a_live_running_job(org):
    now = timezone.now()
    old = now - dt.timedelta(days=8)
    states = {
        "done": {"finished_at": old}, "failed": {"finished_at": old}, "interrupted": {"finished_at": old},
        "validated": {}, "queued": {"queued_at": old},  # queued forever
        "validating": {"queued_at": old},  # a dry run that never ran
        "running": {"started_at": old, "heartbeat_at": old},  # its worker died long ago
    }
    jobs = {s: _as_if(_validated(org, first=10 * i), s, created_at=old, **f) for i, (s, f) in enumerate(states.items())}
    live = _as_if(_validated(org, first=100), "running", created_at=old, started_at=old, heartbeat_at=now)
    recent = _validated(org, first=200)

    assert services.import_files_purge(now=now) == len(states)
    for job in [*jobs.values(), live, recent]:
        job.refresh_from_db()
    assert all(bytes(j.file_data) == b"" for j in jobs.values())
    assert {s: j.status for s, j in jobs.items()} == {
        "done": "done", "failed": "failed", "interrupted": "failed", "validated": "failed", "queued": "failed",
        "validating": "failed", "running": "failed"}
    assert bytes(live.file_data) and live.status == "running"
    assert bytes(recent.file_data) and recent.status == "validated"
    # A purged job cannot be started again: its file is gone.
    assert jobs["queued"].error and "保留期限" in jobs["queued"].error
    assert services.import_files_purge(now=now) == 0
    assert audit.verify().ok
