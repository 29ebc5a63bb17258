"""Reads of import jobs: a job is visible to the user who uploaded it, and nobody else."""

from __future__ import annotations

from django.db.models import QuerySet

from tuijin.core.errors import NotFound
from tuijin.org.models import User

from .models import ImportJob


def import_job_list(*, user: User) -> QuerySet[ImportJob]:
    # The stored file can hold other people's customer data: never list it beyond its uploader.
    return ImportJob.objects.filter(created_by_id=user.pk).defer("file_data")


def import_job_get(*, user: User, pk) -> ImportJob:
    try:
        return import_job_list(user=user).get(pk=int(pk))
    except (ImportJob.DoesNotExist, ValueError, TypeError):
        raise NotFound("import job")
