"""App config for tuijin.pipeline."""

from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "tuijin.pipeline"
    label = "pipeline"
    verbose_name = "Pipeline"
