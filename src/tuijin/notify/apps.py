"""App config for tuijin.notify."""

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "tuijin.notify"
    label = "notify"
    verbose_name = "Notifications"
