"""Activities (跟进记录): a call, visit, demo, WeChat chat, e-mail or meeting with a customer."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tuijin.core.limits import NOTES_MAX_LENGTH
from tuijin.customers.models import Contact, Customer
from tuijin.pipeline.models import Opportunity


class Activity(models.Model):
    class Kind(models.TextChoices):
        CALL = "call", _("电话")
        VISIT = "visit", _("拜访")
        DEMO = "demo", _("演示")
        WECHAT = "wechat", _("微信")
        EMAIL = "email", _("邮件")
        MEETING = "meeting", _("会议")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="activities", verbose_name=_("客户"))
    opportunity = models.ForeignKey(
        Opportunity, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities",
        verbose_name=_("商机"),
    )
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="activities",
        verbose_name=_("联系人"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="activities", verbose_name=_("记录人")
    )
    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("方式"))
    occurred_at = models.DateTimeField(db_index=True, verbose_name=_("时间"))
    duration_minutes = models.PositiveIntegerField(default=0, verbose_name=_("时长(分钟)"))
    subject = models.CharField(max_length=200, blank=True, verbose_name=_("主题"))
    conclusion = models.CharField(max_length=500, blank=True, verbose_name=_("关键结论"))
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH, verbose_name=_("备注"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-occurred_at"]),
            models.Index(fields=["customer", "-occurred_at"]),
        ]
        verbose_name = _("跟进记录")
        verbose_name_plural = _("跟进记录")

    def __str__(self) -> str:
        return self.subject or f"{self.get_kind_display()} {self.occurred_at:%Y-%m-%d}"
