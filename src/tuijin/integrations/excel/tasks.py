"""Huey tasks: thin wrappers so a large import runs outside the web request, and upload retention."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import services


@db_task()
def import_job_run_task(job_id: int) -> None:
    services.import_job_run(job_id=job_id)


@db_periodic_task(crontab(hour="3", minute="40"))
def import_files_purge_task() -> None:
    """Daily: delete uploaded files past TUIJIN_IMPORT_FILE_RETENTION_DAYS (the jobs' reports stay)."""
    services.import_files_purge()
