"""The product's URLs plus the bare reference endpoint (bench only)."""

from django.urls import path

from tuijin.urls import urlpatterns as product_urlpatterns

from .views import bare_opportunities

urlpatterns = [
    path("__bench__/bare-opportunities", bare_opportunities, name="bench_bare_opportunities"),
    *product_urlpatterns,
]
