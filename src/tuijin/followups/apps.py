"""App config for tuijin.followups."""

from django.apps import AppConfig


class FollowupsConfig(AppConfig):
    name = "tuijin.followups"
    label = "followups"
    verbose_name = "Follow-ups"
