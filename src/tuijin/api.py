"""The REST API (django-ninja): authentication, error mapping, and the domain routers.

OpenAPI at /api/openapi.json, docs at /api/docs. Browsers use the session
(CSRF enforced on writes); scripts use `Authorization: Bearer <token>`.
"""

from __future__ import annotations

from django.http import Http404
from ninja import NinjaAPI
from ninja.security import HttpBearer, SessionAuth

from tuijin.core.apiutils import validation_detail
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.org.services import api_token_user


class BearerAuth(HttpBearer):
    def authenticate(self, request, token):
        user = api_token_user(token)
        if user is not None:
            request.user = user
        return user


api = NinjaAPI(
    title="Tuijin API",
    version="1",
    description="Tuijin (推进) sales management. Lists return {items, count}; invisible records are 404.",
    auth=[BearerAuth(), SessionAuth(csrf=True)],
    urls_namespace="api",
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


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, {"detail": "Not Found"}, status=404)


def _register_routers() -> None:
    from tuijin.customers.api import router as customers_router
    from tuijin.followups.api import router as activities_router
    from tuijin.forecasting.api import router as forecasting_router
    from tuijin.goals.api import router as goals_router
    from tuijin.health.api import router as health_router
    from tuijin.notify.api import router as notify_router
    from tuijin.org.api import router as org_router
    from tuijin.pipeline.api import router as pipeline_router

    api.add_router("/", org_router)
    api.add_router("/", customers_router)
    api.add_router("/", pipeline_router)
    api.add_router("/", activities_router)
    api.add_router("/", notify_router)
    api.add_router("/", goals_router)
    api.add_router("/", health_router)
    api.add_router("/", forecasting_router)


_register_routers()
