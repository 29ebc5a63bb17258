"""`tuijin demo`: load deterministic demo data (org, logins, customers, pipeline, history)."""

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Load demo data into an empty database (deterministic for a seed)."

    def add_arguments(self, parser):
        parser.add_argument("--reps", type=int, default=12, help="reps in total (at least the 3 named ones)")
        parser.add_argument("--customers", type=int, default=300)
        parser.add_argument("--months", type=int, default=6, help="months of history")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--template", default=None, help="industry template code")
        parser.add_argument("--if-empty", action="store_true", help="do nothing when users already exist")

    def handle(self, *args, **opts):
        from tuijin.demo.generate import DemoError, generate
        from tuijin.org.models import User

        if opts["if_empty"] and User.objects.exists():
            self.stdout.write("database already has users; demo data not loaded")
            return
        try:
            summary = generate(
                reps=opts["reps"], customers=opts["customers"], months=opts["months"], seed=opts["seed"],
                template=opts["template"],
            )
        except DemoError as exc:
            raise CommandError(str(exc))
        from tuijin.core.dbstats import refresh_statistics

        refresh_statistics()  # the bulk load changed the tables; the nightly job would do it otherwise
        self.stdout.write(summary)
