"""Change-trail checkpoints sent to active admins (docs/audit.md).

core writes the checkpoint file but sits below notify in the layering, so the
sending lives here, and with it the daily job and `tuijin audit checkpoint` that write and send. The message (e-mail and in-app) is the off-host copy of each
checkpoint: an attacker who can edit the server's files still cannot recall it.
"""

from __future__ import annotations

import hashlib

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.org.models import User

from .services import notify


def _admins():
    return User.objects.filter(Q(role=User.Role.ADMIN) | Q(is_superuser=True), is_active=True)


def audit_checkpoint_send(*, checkpoint) -> int:
    """Tell every active admin the checkpoint's time, sequence and MACs; once per checkpoint line."""
    created = notify(
        recipients=_admins(),
        kind="audit_checkpoint",
        title=_("变更留痕检查点：事件 #%(seq)s") % {"seq": checkpoint.seq},
        body=_("时间：%(time)s\n事件序号：#%(seq)s\n事件 MAC：%(mac)s\n检查点行 MAC：%(line_mac)s\n"
               "请保留此消息：它是检查点文件之外的副本，可与 tuijin audit verify 的结果核对。") % {
            "time": checkpoint.time, "seq": checkpoint.seq, "mac": checkpoint.mac,
            "line_mac": checkpoint.line_mac},
        dedupe_key=f"audit-checkpoint:{checkpoint.line_mac[:40]}",
        robots=False,  # group chats are not the place for the trail's MACs
    )
    return len(created)


def audit_checkpoint_failed_send(*, error: str) -> int:
    """Alarm: the checkpoint was refused (the chain went back or changed, or the file does not verify)."""
    digest = hashlib.sha256(error.encode()).hexdigest()[:16]
    created = notify(
        recipients=_admins(),
        kind="audit_alarm",
        title=_("变更留痕检查点未能写入"),
        body=_("原因：%(error)s\n请运行 tuijin audit verify 检查变更留痕。") % {"error": error},
        dedupe_key=f"audit-checkpoint-failed:{timezone.localdate().isoformat()}:{digest}",
        robots=False,
    )
    return len(created)


def audit_checkpoint_and_send(*, now=None) -> audit.Checkpoint:
    """Write a checkpoint and send it to the admins; if it is refused, send the alarm and re-raise."""
    try:
        checkpoint = audit.checkpoint_write(now=now)
    except audit.CheckpointError as exc:
        audit_checkpoint_failed_send(error=str(exc))
        raise
    audit_checkpoint_send(checkpoint=checkpoint)
    return checkpoint
