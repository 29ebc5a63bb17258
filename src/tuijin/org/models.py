"""Org units (company → region → city → team), users with roles, API tokens.

OrgUnit keeps a materialised `path` ("/1/4/9/") so "everything below this
unit" is one indexed prefix query instead of a recursive walk.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class OrgUnit(models.Model):
    class Kind(models.TextChoices):
        COMPANY = "company", _("公司")
        REGION = "region", _("大区")
        CITY = "city", _("城市")
        TEAM = "team", _("团队")

    name = models.CharField(max_length=100, verbose_name=_("名称"))
    kind = models.CharField(max_length=16, choices=Kind.choices, verbose_name=_("层级"))
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children", verbose_name=_("上级")
    )
    path = models.CharField(max_length=255, db_index=True, editable=False, default="")
    depth = models.PositiveSmallIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["path"]
        verbose_name = _("组织单元")
        verbose_name_plural = _("组织单元")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Role(models.TextChoices):
        REP = "rep", _("销售")
        MANAGER = "manager", _("销售经理")
        DIRECTOR = "director", _("销售总监")
        VP = "vp", _("销售VP")
        PRESALES = "presales", _("售前")
        DELIVERY = "delivery", _("交付")
        SERVICE = "service", _("客服")
        FINANCE = "finance", _("财务BP")
        LEGAL = "legal", _("法务")
        ADMIN = "admin", _("管理员")

    role = models.CharField(max_length=16, choices=Role.choices, default=Role.REP, verbose_name=_("角色"))
    display_name = models.CharField(max_length=100, blank=True, verbose_name=_("姓名"))
    org_unit = models.ForeignKey(
        OrgUnit, null=True, blank=True, on_delete=models.PROTECT, related_name="members", verbose_name=_("所属组织")
    )
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports", verbose_name=_("直属上级")
    )
    phone = models.CharField(max_length=32, blank=True, verbose_name=_("手机"))
    language = models.CharField(max_length=10, blank=True, verbose_name=_("界面语言"))

    SALES_ROLES = {Role.REP, Role.MANAGER, Role.DIRECTOR, Role.VP}
    COMPANY_WIDE_ROLES = {Role.DIRECTOR, Role.VP, Role.ADMIN}
    CROSS_ROLES = {Role.PRESALES, Role.DELIVERY, Role.SERVICE, Role.FINANCE, Role.LEGAL}

    class Meta:
        verbose_name = _("用户")
        verbose_name_plural = _("用户")

    def __str__(self) -> str:
        return self.display_name or self.username

    @property
    def label(self) -> str:
        return self.display_name or self.username


class ApiToken(models.Model):
    """A bearer token for the REST API; only its SHA-256 is stored.

    Revoked tokens keep their row (revoked_at set) so the list and the change trail can still name them.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    key_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=100, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name or f"token {self.pk}"


class LoginThrottle(models.Model):
    """One login-attempt counter (see org.throttle): key "pair:<username>|<ip>", "ip:<ip>" or "user:<username>".

    `count` holds the unsuccessful attempts (failed or still being evaluated) since `window_start`;
    a counter older than the window counts as zero. Rows are locked and incremented before a password
    is checked, so parallel tries cannot all slip under the limit.
    """

    key = models.CharField(max_length=255, unique=True)
    count = models.PositiveIntegerField(default=0)
    window_start = models.DateTimeField()
