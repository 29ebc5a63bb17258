"""Retention of uploaded import files: the file goes after N days, the job and its report stay."""

from __future__ import annotations

import datetime as dt

from django.test import override_settings
from django.utils import timezone

from tuijin.core import audit
from tuijin.core.models import AuditEvent
from tuijin.integrations.excel import services, tasks
from tuijin.integrations.excel.models import ImportJob

from .helpers import row, xlsx_bytes


def _job(org, status: str, age_days: int) -> ImportJob:
    job = services.import_job_create(actor=org.users["rep.east1"], filename="c.xlsx", data=xlsx_bytes([row(1)]))
    when = timezone.now() - dt.timedelta(days=age_days)
    finished = when if status in ("done", "failed") else None
    ImportJob.objects.filter(pk=job.pk).update(status=status, created_at=when, finished_at=finished)
    return job


@override_settings(TUIJIN_IMPORT_FILE_RETENTION_DAYS=7)
def test_files_of_old_finished_failed_and_abandoned_jobs_are_deleted(org):
    old_done, old_failed, old_validated = _job(org, "done", 8), _job(org, "failed", 30), _job(org, "validated", 9)
    recent_done, recent_validated = _job(org, "done", 6), _job(org, "validated", 1)
    # Running with a live heartbeat: its file stays until it ends (a dead one is swept, then purged).
    old_running = _job(org, "running", 40)
    ImportJob.objects.filter(pk=old_running.pk).update(heartbeat_at=timezone.now())

    assert services.import_files_purge() == 3
    for job in (old_done, old_failed, old_validated, recent_done, recent_validated, old_running):
        job.refresh_from_db()
    assert [bytes(j.file_data) for j in (old_done, old_failed, old_validated)] == [b"", b"", b""]
    assert all(bytes(j.file_data) for j in (recent_done, recent_validated, old_running))
    # The record of what was imported stays; an abandoned dry run can no longer be started.
    assert old_done.status == "done" and old_done.report["rows"] == 1
    assert old_validated.status == "failed" and "保留期限" in old_validated.error
    assert recent_validated.status == "validated"
    purged = AuditEvent.objects.filter(object_type="excel.importjob", action="file_purged")
    assert sorted(int(e.object_id) for e in purged) == sorted([old_done.pk, old_failed.pk, old_validated.pk])
    assert audit.verify().ok

    # Idempotent: a second run (or a second scheduler) finds nothing more to delete.
    assert services.import_files_purge() == 0
    assert purged.count() == 3


@override_settings(TUIJIN_IMPORT_FILE_RETENTION_DAYS=30)
def test_the_periodic_task_uses_the_configured_retention(org):
    kept, gone = _job(org, "done", 29), _job(org, "done", 31)
    tasks.import_files_purge_task.call_local()
    kept.refresh_from_db()
    gone.refresh_from_db()
    assert bytes(kept.file_data) and not bytes(gone.file_data)
