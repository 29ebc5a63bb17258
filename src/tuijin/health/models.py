"""Weekly alignments (三句话目标对齐, SPEC G5), blockers, health-light settings and episodes (SPEC G6)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class HealthSettings(models.Model):
    """The health-light rules: one row (pk=1), editable by admins on the health page.

    red: no opportunity of the rep progressed for `stale_days` days (or the rep
    has no open opportunity), or pace ratio below `red_below` when set;
    yellow: pace ratio below `yellow_below`; green otherwise.
    """

    stale_days = models.PositiveSmallIntegerField(default=5, verbose_name=_("连续未更新天数（红灯）"))
    yellow_below = models.DecimalField(max_digits=4, decimal_places=2, default=0.8,
                                       verbose_name=_("进度比低于此值为黄灯"))
    red_below = models.DecimalField(max_digits=4, decimal_places=2, null=True, blank=True,
                                    verbose_name=_("进度比低于此值为红灯（可选）"))
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("健康灯规则")
        verbose_name_plural = _("健康灯规则")

    def __str__(self) -> str:
        return f"stale {self.stale_days}d, yellow < {self.yellow_below}, red < {self.red_below}"


class Blocker(models.Model):
    """A blocking issue (卡点) a rep logs for escalation to the manager."""

    class Status(models.TextChoices):
        OPEN = "open", _("待解决")
        RESOLVED = "resolved", _("已解决")

    title = models.CharField(max_length=200, verbose_name=_("卡点"))
    description = models.TextField(blank=True, verbose_name=_("说明"))
    opportunity = models.ForeignKey(
        "pipeline.Opportunity", null=True, blank=True, on_delete=models.SET_NULL, related_name="blockers",
        verbose_name=_("商机"),
    )
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="blockers",
                              verbose_name=_("提出人"))
    escalated_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="escalated_blockers",
        verbose_name=_("升级给"),
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN, db_index=True,
                              verbose_name=_("状态"))
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("卡点")
        verbose_name_plural = _("卡点")

    def __str__(self) -> str:
        return self.title


class WeeklyAlignment(models.Model):
    """One rep's three sentences for one ISO week (identified by its Monday)."""

    class Department(models.TextChoices):
        PRESALES = "presales", _("售前")
        DELIVERY = "delivery", _("交付")
        SERVICE = "service", _("客服")
        FINANCE = "finance", _("财务")
        LEGAL = "legal", _("法务")
        PRODUCT = "product", _("产品")
        MANAGEMENT = "management", _("管理层")

    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alignments",
                            verbose_name=_("销售"))
    week_start = models.DateField(verbose_name=_("周（周一）"))
    opportunities = models.ManyToManyField(
        "pipeline.Opportunity", through="AlignmentOpportunity", related_name="alignments",
        verbose_name=_("本周TOP3商机"),
    )
    departments = models.JSONField(default=list, blank=True, verbose_name=_("需要协同的部门"))
    has_blocker = models.BooleanField(default=False, verbose_name=_("卡点已录入待升级"))
    blocker = models.ForeignKey(Blocker, null=True, blank=True, on_delete=models.SET_NULL, related_name="alignments",
                                verbose_name=_("卡点记录"))
    submitted_at = models.DateTimeField(verbose_name=_("提交时间"))
    updated_at = models.DateTimeField(verbose_name=_("更新时间"))
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-week_start", "rep_id"]
        constraints = [models.UniqueConstraint(fields=["rep", "week_start"], name="uniq_alignment_rep_week")]
        indexes = [models.Index(fields=["week_start", "rep"])]
        verbose_name = _("周目标对齐")
        verbose_name_plural = _("周目标对齐")

    def __str__(self) -> str:
        return f"{self.rep} {self.week_start:%G-W%V}"


class AlignmentOpportunity(models.Model):
    alignment = models.ForeignKey(WeeklyAlignment, on_delete=models.CASCADE, related_name="items")
    opportunity = models.ForeignKey("pipeline.Opportunity", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["alignment_id", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["alignment", "opportunity"], name="uniq_alignment_opportunity"),
        ]


class HealthEpisode(models.Model):
    """A stretch of time a rep's light stayed red; the reminder is sent once per episode."""

    class Light(models.TextChoices):
        RED = "red", _("红灯")
        YELLOW = "yellow", _("黄灯")

    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="health_episodes")
    light = models.CharField(max_length=8, choices=Light.choices, default=Light.RED)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    reasons = models.JSONField(default=dict, blank=True)
    notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # At most one open episode per rep and light, even with two workers evaluating at once.
            models.UniqueConstraint(fields=["rep", "light"], condition=models.Q(ended_at__isnull=True),
                                    name="uniq_open_health_episode"),
        ]
