"""App config for tuijin.web."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "tuijin.web"
    label = "web"
    verbose_name = "Web"
