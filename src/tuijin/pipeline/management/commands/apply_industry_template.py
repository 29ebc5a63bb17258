"""`tuijin template apply CODE`: set up the pipeline, stages and products of an industry template."""

from django.core.management.base import BaseCommand, CommandError

from tuijin.core.errors import ValidationFailed
from tuijin.pipeline.services import industry_template_apply, industry_templates


class Command(BaseCommand):
    help = "Apply an industry template: " + ", ".join(industry_templates())

    def add_arguments(self, parser):
        parser.add_argument("code")

    def handle(self, *args, code, **options):
        try:
            pipeline = industry_template_apply(actor=None, code=code)
        except ValidationFailed as exc:
            raise CommandError(str(exc))
        self.stdout.write(f"applied {code}: pipeline #{pipeline.pk} with {pipeline.stages.count()} stages")
