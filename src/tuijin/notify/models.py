"""In-app notifications and the outbox of messages to deliver by e-mail or chat robot.

Every notification has a `dedupe_key` chosen by the caller ("red-light:rep:42:2026-11-27"):
the unique constraints make a rerun of a job, or two workers running the same
job, produce the same rows instead of duplicates.

Outbox rows move pending → sending (claimed by one worker, with a lease) → sent,
or back to pending with a later `next_attempt_at` after a failure, or to failed
after the last attempt. A row left in `sending` by a worker that died is claimed
again once its lease has run out (see notify/delivery.py).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Notification(models.Model):
    """One message in one user's in-app inbox."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=64, db_index=True, verbose_name=_("类型"))
    title = models.CharField(max_length=200, verbose_name=_("标题"))
    body = models.TextField(blank=True, verbose_name=_("内容"))
    link = models.CharField(max_length=500, blank=True, verbose_name=_("链接"))
    is_cc = models.BooleanField(default=False, verbose_name=_("抄送"))
    dedupe_key = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["recipient", "dedupe_key"], name="uniq_notification_dedupe"),
        ]
        indexes = [models.Index(fields=["recipient", "read_at"])]
        verbose_name = _("通知")
        verbose_name_plural = _("通知")

    def __str__(self) -> str:
        return self.title


class Robot(models.Model):
    """A chat group robot (群机器人) webhook configured by an admin."""

    class Platform(models.TextChoices):
        WECOM = "wecom", _("企业微信")
        DINGTALK = "dingtalk", _("钉钉")
        FEISHU = "feishu", _("飞书")

    name = models.CharField(max_length=100, verbose_name=_("名称"))
    platform = models.CharField(max_length=16, choices=Platform.choices, verbose_name=_("平台"))
    webhook_url = models.URLField(max_length=500, verbose_name=_("Webhook 地址"))
    secret = models.CharField(max_length=200, blank=True, verbose_name=_("签名密钥"))
    org_unit = models.ForeignKey(
        "org.OrgUnit", null=True, blank=True, on_delete=models.SET_NULL, related_name="robots",
        verbose_name=_("所属组织"),
    )
    kinds = models.JSONField(default=list, blank=True, verbose_name=_("推送的通知类型"))
    max_per_minute = models.PositiveIntegerField(default=20, verbose_name=_("每分钟上限"))
    is_active = models.BooleanField(default=True, verbose_name=_("启用"))
    created_at = models.DateTimeField(auto_now_add=True, null=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("群机器人")
        verbose_name_plural = _("群机器人")

    def __str__(self) -> str:
        return self.name


class RobotSend(models.Model):
    """One request made to a robot's webhook: the sliding window behind `max_per_minute`.

    Rows older than an hour are pruned by the periodic sweep.
    """

    robot = models.ForeignKey(Robot, on_delete=models.CASCADE, related_name="sends")
    at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["robot", "at"])]


class OutboxMessage(models.Model):
    """A message waiting to be (or already) delivered outside the app; retried until sent."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("邮件")
        ROBOT = "robot", _("群机器人")

    class Status(models.TextChoices):
        PENDING = "pending", _("待发送")
        SENDING = "sending", _("发送中")
        SENT = "sent", _("已发送")
        FAILED = "failed", _("失败")

    channel = models.CharField(max_length=8, choices=Channel.choices)
    robot = models.ForeignKey(Robot, null=True, blank=True, on_delete=models.CASCADE, related_name="outbox")
    to_email = models.EmailField(blank=True)
    # The addressee of an e-mail: its language and, for admins, who it was for.
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=64)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    dedupe_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=True)
    last_error = models.TextField(blank=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    # Set while a worker holds the row (status "sending"); another worker may take it over after this time.
    lease_until = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]
        verbose_name = _("待发消息")
        verbose_name_plural = _("待发消息")

    def __str__(self) -> str:
        return self.subject


class SchedulerLease(models.Model):
    """Which worker schedules the periodic jobs: the holder of this row until `expires_at` (notify/scheduler.py).

    The holder renews it well before it expires; another worker may take it only after it has expired.
    """

    name = models.CharField(max_length=64, primary_key=True)
    holder = models.CharField(max_length=128)
    expires_at = models.DateTimeField()
    acquired_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder}"
