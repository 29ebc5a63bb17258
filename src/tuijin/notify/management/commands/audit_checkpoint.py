"""`tuijin audit checkpoint`: append the chain head to the checkpoint file now and send it to the admins."""

import sys

from django.core.management.base import BaseCommand

from tuijin.core.audit import CheckpointError, checkpoint_path
from tuijin.notify.audit_alerts import audit_checkpoint_and_send


class Command(BaseCommand):
    help = "Write a change-trail checkpoint (head sequence and MAC) and send it to the active admins."

    def handle(self, *args, **options):
        try:
            cp = audit_checkpoint_and_send()
        except CheckpointError as exc:
            self.stderr.write(f"audit checkpoint REFUSED: {exc}")
            sys.exit(1)
        self.stdout.write(f"audit checkpoint written to {checkpoint_path()} (line {cp.line_no}): "
                          f"{cp.time} event #{cp.seq} {cp.mac}")
