"""`tuijin audit verify`: walk the change-trail hash chain; exit 1 naming the first broken event."""

import sys

from django.core.management.base import BaseCommand

from tuijin.core.audit import verify


class Command(BaseCommand):
    help = "Verify the hash chain of the change trail."

    def handle(self, *args, **options):
        result = verify()
        if result.ok:
            self.stdout.write(f"audit chain OK: {result.checked} events verified")
            return
        self.stderr.write(f"audit chain BROKEN at event #{result.broken_seq}: {result.reason} "
                          f"({result.checked} events verified before it)")
        sys.exit(1)
