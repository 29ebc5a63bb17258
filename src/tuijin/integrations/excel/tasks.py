"""Huey tasks: thin wrappers so a large import runs outside the web request."""

from huey.contrib.djhuey import db_task

from . import services


@db_task()
def import_job_run_task(job_id: int) -> None:
    services.import_job_run(job_id=job_id)
