"""Huey tasks: thin wrappers so dry runs and imports run outside the web request, the sweep of stuck jobs,
and upload retention."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from . import services


@db_task()
def import_job_validate_task(job_id: int) -> None:
    services.import_job_validate(job_id=job_id)


@db_task()
def import_job_run_task(job_id: int) -> None:
    services.import_job_run(job_id=job_id)


@db_periodic_task(crontab(minute="*"))
def import_jobs_sweep_task() -> None:
    """Every minute: jobs whose worker died (no heartbeat) or whose task was lost become interrupted."""
    services.import_jobs_sweep()


@db_periodic_task(crontab(hour="3", minute="40"))
def import_files_purge_task() -> None:
    """Daily: delete uploaded files past TUIJIN_IMPORT_FILE_RETENTION_DAYS (the jobs' reports stay)."""
    services.import_files_purge()
