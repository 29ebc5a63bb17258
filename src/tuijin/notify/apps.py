"""App config for tuijin.notify."""

from django.apps import AppConfig


class NotifyConfig(AppConfig):
    name = "tuijin.notify"
    label = "notify"
    verbose_name = "Notifications"

    def ready(self):
        # Only the worker holding the scheduler lease enqueues periodic jobs (of every app): see scheduler.py.
        from huey.contrib.djhuey import HUEY

        from .scheduler import install

        install(HUEY)
