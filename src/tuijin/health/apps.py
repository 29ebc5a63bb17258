"""App config for tuijin.health."""

from django.apps import AppConfig


class HealthConfig(AppConfig):
    name = "tuijin.health"
    label = "health"
    verbose_name = "Goal health"
