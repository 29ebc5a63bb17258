"""`tuijin audit verify`: walk the keyed change-trail chain and compare it with the checkpoint file;
exit 1 naming the first broken event, a truncation, a tampered checkpoint file or a wrong key."""

import sys

from django.core.management.base import BaseCommand

from tuijin.core.audit import checkpoint_path, verify


class Command(BaseCommand):
    help = "Verify the keyed hash chain of the change trail against the checkpoint file."

    def handle(self, *args, **options):
        result = verify()
        if result.ok:
            self.stdout.write(f"audit chain OK: {result.checked} events verified")
            if result.legacy_until:
                self.stdout.write(f"  legacy, unkeyed up to #{result.legacy_until} (written before "
                                  f"TUIJIN_AUDIT_KEY; anchored by the keyed events after it)")
            if result.checkpoints:
                last = result.checkpoints[-1]
                self.stdout.write(f"  {len(result.checkpoints)} checkpoint(s) match ({checkpoint_path()}); "
                                  f"the last: {last.time} event #{last.seq}")
            else:
                self.stdout.write(f"  no checkpoints yet ({checkpoint_path()}): truncation is not detectable")
            return
        where = f" at event #{result.broken_seq}" if result.broken_seq else ""
        self.stderr.write(f"audit chain BROKEN{where}: {result.reason} "
                          f"({result.checked} events verified before it)")
        sys.exit(1)
