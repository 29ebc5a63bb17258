"""API for customer imports: upload (dry run queued), status with progress and report, start.

Jobs are visible to their uploader only (others get 404). When the task queue cannot be
reached, upload and start answer 503 with a clear `detail`; the job is kept in a state
from which start can be retried.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from ninja import File, Form, Router, Schema, Status
from ninja.files import UploadedFile

from tuijin.core.errors import Forbidden, ValidationFailed

from . import selectors, services
from .models import ImportJob
from .parsing import ImportFileError

router = Router(tags=["imports"])


class ProgressOut(Schema):
    done: int
    total: int
    percent: int


class ImportJobOut(Schema):
    id: int
    filename: str
    status: str
    status_display: str
    dup_mode: str
    error: str
    total_rows: int
    created_count: int
    updated_count: int
    skipped_count: int
    progress: ProgressOut
    report: dict
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    heartbeat_at: dt.datetime | None


class QueueUnavailableOut(Schema):
    detail: str
    job: ImportJobOut


def _out(job: ImportJob) -> dict:
    return {
        "id": job.pk, "filename": job.filename, "status": job.status, "status_display": job.get_status_display(),
        "dup_mode": job.dup_mode, "error": job.error, "total_rows": job.total_rows,
        "created_count": job.created_count, "updated_count": job.updated_count, "skipped_count": job.skipped_count,
        "progress": services.progress_get(job), "report": job.report or {}, "created_at": job.created_at,
        "started_at": job.started_at, "finished_at": job.finished_at, "heartbeat_at": job.heartbeat_at,
    }


def _unavailable(exc: services.QueueUnavailable):
    return Status(503, {"detail": str(exc), "job": _out(selectors.import_job_get(user=exc.job.created_by, pk=exc.job.pk))})


@router.post("/imports", response={202: ImportJobOut, 503: QueueUnavailableOut})
def import_create(request, file: File[UploadedFile], dup_mode: str = Form("skip", max_length=16)):
    """Upload a .xlsx/.csv; the dry run runs in the worker (poll GET /imports/{id})."""
    if not services.can_import(request.user):
        raise Forbidden("你的角色不能导入客户")
    file.seek(0)  # the multipart parser may leave the position at the end
    try:
        job = services.import_job_create(actor=request.user, filename=file.name or "",
                                         data=file.read(settings.TUIJIN_IMPORT_MAX_BYTES + 1), dup_mode=dup_mode)
    except ImportFileError as exc:
        raise ValidationFailed({"file": [str(exc)]})
    except services.QueueUnavailable as exc:
        return _unavailable(exc)
    return Status(202, _out(job))


@router.get("/imports/{job_id}", response=ImportJobOut)
def import_get(request, job_id: int):
    job = services.import_job_check_stale(selectors.import_job_get(user=request.user, pk=job_id))
    return _out(job)


@router.post("/imports/{job_id}/start", response={202: ImportJobOut, 503: QueueUnavailableOut})
def import_start(request, job_id: int):
    """Start a validated job, or start an interrupted one again (the import is all or nothing)."""
    job = selectors.import_job_get(user=request.user, pk=job_id)
    try:
        job = services.import_job_start(actor=request.user, job=job)
    except services.QueueUnavailable as exc:
        return _unavailable(exc)
    return Status(202, _out(job))
