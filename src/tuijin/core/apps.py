"""App config for tuijin.core."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "tuijin.core"
    label = "core"
    verbose_name = "Core"
