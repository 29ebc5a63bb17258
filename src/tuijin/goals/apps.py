"""App config for tuijin.goals."""

from django.apps import AppConfig


class GoalsConfig(AppConfig):
    name = "tuijin.goals"
    label = "goals"
    verbose_name = "Goals"
