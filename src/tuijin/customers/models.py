"""Customers (客户), their contacts (联系人), team members (团队成员) and owner history."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tuijin.core.limits import NOTES_MAX_LENGTH


class Customer(models.Model):
    class Status(models.TextChoices):
        LEAD = "lead", _("线索")
        ACTIVE = "active", _("活跃")
        CHURNED = "churned", _("流失")

    class Size(models.TextChoices):
        MICRO = "micro", _("微型(<20人)")
        SMALL = "small", _("小型(20-99人)")
        MEDIUM = "medium", _("中型(100-499人)")
        LARGE = "large", _("大型(500-1999人)")
        ENTERPRISE = "enterprise", _("集团(≥2000人)")

    class Source(models.TextChoices):
        REFERRAL = "referral", _("客户转介绍")
        EXHIBITION = "exhibition", _("展会")
        WEBSITE = "website", _("官网")
        COLD_CALL = "cold_call", _("电话开发")
        PARTNER = "partner", _("渠道伙伴")
        BIDDING = "bidding", _("招投标")
        OTHER = "other", _("其他")

    name = models.CharField(max_length=200, verbose_name=_("客户名称"))
    name_normalized = models.CharField(max_length=200, db_index=True, editable=False)
    credit_code = models.CharField(max_length=18, blank=True, db_index=True, verbose_name=_("统一社会信用代码"))
    industry = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("行业"))
    size_band = models.CharField(max_length=16, choices=Size.choices, blank=True, verbose_name=_("规模"))
    region = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("区域"))
    city = models.CharField(max_length=64, blank=True, verbose_name=_("城市"))
    source = models.CharField(max_length=16, choices=Source.choices, blank=True, verbose_name=_("来源"))
    tags = models.JSONField(default=list, blank=True, verbose_name=_("标签"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.ACTIVE, db_index=True, verbose_name=_("状态")
    )
    phone = models.CharField(max_length=32, blank=True, verbose_name=_("电话"))
    phone_normalized = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    address = models.CharField(max_length=255, blank=True, verbose_name=_("地址"))
    notes = models.TextField(blank=True, max_length=NOTES_MAX_LENGTH, verbose_name=_("备注"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_customers", verbose_name=_("负责人")
    )
    last_contact_at = models.DateTimeField(null=True, blank=True, verbose_name=_("最近跟进"))
    # Set by the grading rules (SPEC G3): the code of the first matching grade and why it matched.
    grade = models.CharField(max_length=32, blank=True, db_index=True, verbose_name=_("客户等级"))
    grade_reasons = models.JSONField(default=list, blank=True, verbose_name=_("分级依据"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("创建时间"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("更新时间"))
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [
            models.Index(fields=["owner", "-updated_at"]),
            models.Index(fields=["-updated_at", "-id"]),
        ]
        verbose_name = _("客户")
        verbose_name_plural = _("客户")

    def __str__(self) -> str:
        return self.name


class Contact(models.Model):
    class DecisionRole(models.TextChoices):
        DECISION_MAKER = "decision_maker", _("决策人")
        INFLUENCER = "influencer", _("影响人")
        USER = "user", _("使用人")
        GATEKEEPER = "gatekeeper", _("把关人")
        OTHER = "other", _("其他")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("客户"))
    name = models.CharField(max_length=64, verbose_name=_("姓名"))
    title = models.CharField(max_length=64, blank=True, verbose_name=_("职务"))
    decision_role = models.CharField(
        max_length=16, choices=DecisionRole.choices, blank=True, verbose_name=_("决策角色")
    )
    style_tags = models.JSONField(default=list, blank=True, verbose_name=_("沟通风格"))
    mobile = models.CharField(max_length=32, blank=True, verbose_name=_("手机"))
    phone = models.CharField(max_length=32, blank=True, verbose_name=_("电话"))
    phone_normalized = models.CharField(max_length=32, blank=True, db_index=True, editable=False)
    email = models.EmailField(blank=True, verbose_name=_("邮箱"))
    wechat = models.CharField(max_length=64, blank=True, verbose_name=_("微信"))
    qq = models.CharField(max_length=16, blank=True, verbose_name=_("QQ"))
    is_primary = models.BooleanField(default=False, verbose_name=_("主联系人"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-is_primary", "id"]
        verbose_name = _("联系人")
        verbose_name_plural = _("联系人")

    def __str__(self) -> str:
        return self.name


class CustomerMember(models.Model):
    """A user besides the owner who works on the customer (团队成员)."""

    class Access(models.TextChoices):
        READ = "read", _("只读")
        WRITE = "write", _("读写")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="customer_memberships")
    access = models.CharField(max_length=8, choices=Access.choices, default=Access.READ, verbose_name=_("权限"))
    until = models.DateField(null=True, blank=True, verbose_name=_("有效期至"))
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["customer", "user"], name="uniq_customer_member")]
        indexes = [models.Index(fields=["user", "customer"])]


class OwnerChange(models.Model):
    """Owner history (负责人变更记录)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="owner_changes")
    from_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    to_user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]


class GradeRule(models.Model):
    """A customer grade (客户分级) defined as data: conditions over customer metrics and fields (SPEC G3).

    `conditions` is a list of {"metric", "op", "value"} plus an optional "group"
    (integer, default 0): conditions in one group must all hold (AND), and the
    rule matches when any group holds (OR). A rule without conditions matches
    every customer (the fallback grade). Rules are evaluated by ascending
    `priority`; the first match gives the customer its grade (see grading.py).
    """

    code = models.SlugField(max_length=32, unique=True, verbose_name=_("等级代码"))
    name = models.CharField(max_length=64, verbose_name=_("等级名称"))
    name_en = models.CharField(max_length=64, blank=True, verbose_name=_("英文名称"))
    priority = models.PositiveIntegerField(default=100, verbose_name=_("优先级"))
    conditions = models.JSONField(default=list, blank=True, verbose_name=_("条件"))
    is_active = models.BooleanField(default=True, verbose_name=_("启用"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        verbose_name = _("分级规则")
        verbose_name_plural = _("分级规则")

    def __str__(self) -> str:
        from django.utils.translation import get_language

        lang = get_language() or ""
        return self.name_en if lang.startswith("en") and self.name_en else self.name
