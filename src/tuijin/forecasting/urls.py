"""Page URLs of tuijin.forecasting."""

from django.urls import path  # noqa: F401  (the app adds its pages here)

app_name = "forecasting"
urlpatterns: list = []
