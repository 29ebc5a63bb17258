"""App config for tuijin.integrations.excel."""

from django.apps import AppConfig


class ExcelConfig(AppConfig):
    name = "tuijin.integrations.excel"
    label = "excel"
    verbose_name = "Excel import/export"
