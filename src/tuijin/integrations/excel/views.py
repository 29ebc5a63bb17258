"""Pages for importing customers and the Excel export downloads; thin over services and selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from tuijin.core.errors import Forbidden, ValidationFailed

from . import exporting, selectors, services
from .forms import ImportUploadForm
from .models import ImportJob
from .parsing import ImportFileError


def _require_import(user) -> None:
    if not services.can_import(user):
        raise PermissionDenied


def _customers_url() -> str:
    # The customer list page belongs to tuijin.web; fall back to its path if the name differs.
    for name in ("customers", "web:customers", "customer_list"):
        try:
            return reverse(name)
        except NoReverseMatch:
            continue
    return "/customers/"


@login_required
def import_upload(request):
    _require_import(request.user)
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = services.import_job_create(
                actor=request.user, filename=upload.name, data=_read_upload(upload),
                dup_mode=form.cleaned_data["dup_mode"],
            )
        except ImportFileError as exc:
            form.add_error("file", str(exc))
        except ValidationFailed as exc:
            for messages_ in exc.errors.values():
                form.add_error(None, " ".join(messages_))
        except services.QueueUnavailable as exc:  # the file is stored; the job page offers to start again
            messages.error(request, str(exc))
            return redirect("excel:job", pk=exc.job.pk)
        else:
            return redirect("excel:job", pk=job.pk)
    jobs = selectors.import_job_list(user=request.user)[:10]
    return render(request, "excel/import_upload.html", {"form": form, "jobs": jobs}, status=200)


def _read_upload(upload) -> bytes:
    # Read one byte past the limit so an oversized file is refused without loading all of it.
    from django.conf import settings

    return upload.read(settings.TUIJIN_IMPORT_MAX_BYTES + 1)


@login_required
@require_GET
def import_template(request):
    return exporting.import_template_response()


def _job_context(request, job: ImportJob) -> dict:
    report = job.report or {}
    return {
        "job": job,
        "report": report,
        "progress": services.progress_get(job),
        "customers_url": _customers_url(),
        "importable": report.get("create", 0) + report.get("update", 0),
        "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED, ImportJob.Status.INTERRUPTED,
                                   ImportJob.Status.VALIDATED),
        "can_restart": job.status == ImportJob.Status.INTERRUPTED,
    }


def _job(request, pk) -> ImportJob:
    # Viewing a job whose worker died marks it interrupted right away (no waiting for the sweep).
    return services.import_job_check_stale(selectors.import_job_get(user=request.user, pk=pk))


@login_required
def import_job_detail(request, pk: int):
    job = _job(request, pk)
    return render(request, "excel/import_job.html", _job_context(request, job))


@login_required
@require_POST
def import_job_start(request, pk: int):
    job = selectors.import_job_get(user=request.user, pk=pk)
    _require_import(request.user)
    try:
        services.import_job_start(actor=request.user, job=job)
    except services.QueueUnavailable as exc:
        messages.error(request, str(exc))
    except (ValidationFailed, Forbidden) as exc:
        messages.error(request, str(exc) if isinstance(exc, Forbidden) else " ".join(
            " ".join(m) for m in exc.errors.values()))
    return redirect("excel:job", pk=job.pk)


@login_required
@require_GET
def import_job_progress(request, pk: int):
    job = _job(request, pk)
    response = render(request, "excel/_import_progress.html", _job_context(request, job))
    if job.status == ImportJob.Status.VALIDATED and request.headers.get("HX-Request"):
        response["HX-Refresh"] = "true"  # the dry run finished: the full page shows the report and the start button
    return response


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _text(request, *names) -> dict:
    return {n: request.GET.get(n, "").strip() for n in names}


@login_required
@require_GET
def export_customers(request):
    filters = _text(request, "q", "scope", "status", "industry", "region")
    filters["owner_id"] = _int(request.GET.get("owner_id"))
    return exporting.customer_export(user=request.user, **filters)


@login_required
@require_GET
def export_opportunities(request):
    filters = _text(request, "q", "scope", "status")
    for name in ("stage_id", "owner_id", "pipeline_id", "customer_id"):
        filters[name] = _int(request.GET.get(name))
    return exporting.opportunity_export(user=request.user, **filters)


@login_required
@require_GET
def export_activities(request):
    filters = _text(request, "q", "scope", "kind")
    for name in ("customer_id", "owner_id"):
        filters[name] = _int(request.GET.get(name))
    return exporting.activity_export(user=request.user, **filters)
