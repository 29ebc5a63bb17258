"""Change-trail storage.

Every service write appends an AuditEvent. Events form a keyed hash chain:
each event stores the MAC of the previous one and an HMAC-SHA256 (key from
TUIJIN_AUDIT_KEY, never stored here) over its own content, so editing or
deleting any stored event breaks the chain and `tuijin audit verify` names the
first broken event (docs/audit.md). AuditChainHead is a single row that
serialises appends (its UPDATE takes the write lock on SQLite and a row lock
on PostgreSQL), so two concurrent writers can never fork the chain.
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditChainHead(models.Model):
    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    last_seq = models.BigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="")
    # Fingerprint of the chain key (core.audit.key_id), so a wrong TUIJIN_AUDIT_KEY is named as such.
    key_id = models.CharField(max_length=16, blank=True, default="")
    # Events #1..#legacy_until predate the key (plain SHA-256); legacy_seal is the key's MAC of that number.
    legacy_until = models.BigIntegerField(default=0)
    legacy_seal = models.CharField(max_length=64, blank=True, default="")


class AuditEvent(models.Model):
    seq = models.BigIntegerField(unique=True, verbose_name=_("序号"))
    created_at = models.DateTimeField(db_index=True, verbose_name=_("时间"))
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("操作人"),
    )
    actor_label = models.CharField(max_length=150, blank=True, verbose_name=_("操作人"))
    request_id = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=64, verbose_name=_("对象类型"))
    object_id = models.CharField(max_length=64, verbose_name=_("对象"))
    object_repr = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=32, verbose_name=_("操作"))
    changes = models.JSONField(default=dict, verbose_name=_("变更"))
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["seq"]
        indexes = [models.Index(fields=["object_type", "object_id", "seq"])]
        verbose_name = _("变更留痕")
        verbose_name_plural = _("变更留痕")

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id}"
