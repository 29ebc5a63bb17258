"""The REST API (django-ninja): authentication, error mapping, and the domain routers.

OpenAPI at /api/openapi.json, docs at /api/docs. Browsers use the session
(CSRF enforced on writes); scripts use `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import logging

from django.db import DataError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.security import HttpBearer, SessionAuth

from tuijin.core.apiutils import validation_detail
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.forecasting.errors import ReportLocked
from tuijin.org.services import api_token_user

logger = logging.getLogger(__name__)


class BearerAuth(HttpBearer):
    def authenticate(self, request, token):
        user = api_token_user(token)
        if user is not None:
            request.user = user
        return user


def _has_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


class TuijinParser(Parser):
    """JSON bodies and query strings, refusing NUL characters (400).

    Found by the reliability suite: PostgreSQL cannot store NUL in text (a 500 there)
    while SQLite stored it silently; no legitimate input contains one.
    """

    def parse_body(self, request):
        data = super().parse_body(request)
        if _has_nul(data):
            raise ValueError("NUL character in the request body")  # ninja turns parse errors into 400
        return data

    def parse_querydict(self, data, list_fields, request):
        if any("\x00" in k or any("\x00" in v for v in data.getlist(k)) for k in data.keys()):
            raise HttpError(400, "NUL character in the query string")
        return super().parse_querydict(data, list_fields, request)


api = NinjaAPI(
    title="Tuijin API",
    version="1",
    description="Tuijin (推进) sales management. Lists return {items, count}; invisible records are 404.",
    auth=[BearerAuth(), SessionAuth(csrf=True)],
    urls_namespace="api",
    parser=TuijinParser(),
)


@api.exception_handler(ValidationFailed)
def _validation_failed(request, exc: ValidationFailed):
    return api.create_response(request, {"detail": validation_detail(exc.errors)}, status=422)


@api.exception_handler(StaleVersion)
def _stale(request, exc: StaleVersion):
    return api.create_response(
        request,
        {"detail": "该记录已被他人修改，请刷新后重试 / the record was changed by someone else; reload and retry",
         "current_version": exc.current_version},
        status=409,
    )


@api.exception_handler(Forbidden)
def _forbidden(request, exc: Forbidden):
    return api.create_response(request, {"detail": str(exc) or "forbidden"}, status=403)


@api.exception_handler(ReportLocked)
def _report_locked(request, exc: ReportLocked):
    return api.create_response(
        request,
        {"detail": "日报已提交并锁定，不能修改；如需更正请发起数据修正申请 / "
                   "the report is submitted and locked; request a data correction instead"},
        status=423,
    )


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": "Not Found"}, status=404)


@api.exception_handler(OverflowError)
@api.exception_handler(DataError)
def _out_of_range(request, exc):
    # Found by the fuzzing suite (tests/reliability): an id or page number beyond 64 bits, or a value the
    # database cannot store, is bad input (422), not a server error. Logged so missing validation shows up.
    logger.warning("API value out of range on %s: %s", request.path, exc)
    return api.create_response(request, {"detail": [
        {"type": "value_error", "loc": ["query" if request.method == "GET" else "body"],
         "msg": "数值超出范围 / a value is out of range"}]}, status=422)


def _register_routers() -> None:
    from tuijin.customers.api import router as customers_router
    from tuijin.customers.grading_api import router as grading_router
    from tuijin.followups.api import router as activities_router
    from tuijin.forecasting.api import router as forecasting_router
    from tuijin.goals.api import router as goals_router
    from tuijin.health.api import router as health_router
    from tuijin.integrations.excel.api import router as imports_router
    from tuijin.notify.api import router as notify_router
    from tuijin.org.api import router as org_router
    from tuijin.pipeline.api import router as pipeline_router

    api.add_router("/", org_router)
    api.add_router("/", customers_router)
    api.add_router("/", grading_router)
    api.add_router("/", pipeline_router)
    api.add_router("/", activities_router)
    api.add_router("/", notify_router)
    api.add_router("/", goals_router)
    api.add_router("/", health_router)
    api.add_router("/", forecasting_router)
    api.add_router("/", imports_router)


_register_routers()
