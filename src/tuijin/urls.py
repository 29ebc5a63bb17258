"""URL map: pages (tuijin.web), the REST API under /api/, health check, language switch."""

from django.urls import include, path

from .api import api
from .web.views_health import healthz

urlpatterns = [
    path("api/", api.urls),
    path("healthz", healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tuijin.integrations.excel.urls")),
    path("notifications/", include("tuijin.notify.urls")),
    path("goals/", include("tuijin.goals.urls")),
    path("health/", include("tuijin.health.urls")),
    path("forecasts/", include("tuijin.forecasting.urls")),
    path("", include("tuijin.web.urls")),
]
