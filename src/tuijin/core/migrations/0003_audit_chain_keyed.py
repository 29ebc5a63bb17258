"""The change trail becomes a keyed chain (HMAC-SHA256 under TUIJIN_AUDIT_KEY, docs/audit.md).

Existing events keep their plain SHA-256: they become the "legacy, unkeyed" prefix #1..#N, and the head
records N sealed with the key, so later events are keyed and the prefix cannot be extended without it.
"""

import hashlib
import hmac

from django.conf import settings
from django.db import migrations, models
from django.db.models import Max


def seal_existing_chain(apps, schema_editor):
    Head = apps.get_model("core", "AuditChainHead")
    Event = apps.get_model("core", "AuditEvent")
    head = Head.objects.filter(id=1).first()
    last = head.last_seq if head else (Event.objects.aggregate(m=Max("seq"))["m"] or 0)
    if not last:
        return  # an empty trail: every event will be keyed
    key = settings.TUIJIN_AUDIT_KEY.encode()
    # Same formulas as core.audit.legacy_seal / key_id, inlined so this migration never changes meaning.
    seal = hmac.new(key, f"tuijin-audit-legacy-until:{last}".encode(), hashlib.sha256).hexdigest()
    kid = hmac.new(key, b"tuijin-audit-key-id", hashlib.sha256).hexdigest()[:16]
    defaults = {"legacy_until": last, "legacy_seal": seal, "key_id": kid}
    if head is None:
        defaults.update(last_seq=last, last_hash=Event.objects.get(seq=last).hash)
    Head.objects.update_or_create(id=1, defaults=defaults)


class Migration(migrations.Migration):

    dependencies = [
        ("core", "0002_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="auditchainhead",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="legacy_until",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="auditchainhead",
            name="legacy_seal",
            field=models.CharField(blank=True, default="", max_length=64),
        ),
        migrations.RunPython(seal_existing_chain, migrations.RunPython.noop),
    ]
