"""App config for tuijin.org."""

from django.apps import AppConfig


class OrgConfig(AppConfig):
    name = "tuijin.org"
    label = "org"
    verbose_name = "Org"
