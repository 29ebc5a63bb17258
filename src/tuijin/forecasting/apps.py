"""App config for tuijin.forecasting."""

from django.apps import AppConfig


class ForecastingConfig(AppConfig):
    name = "tuijin.forecasting"
    label = "forecasting"
    verbose_name = "Forecasting"
