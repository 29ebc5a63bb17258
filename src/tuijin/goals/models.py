"""Objectives, key results, cascaded targets per org unit and rep, and monthly deviation reports (SPEC G1, G2, G7).

Actual values are never stored here: they are computed from deals, customers
and activities by `tuijin.goals.metrics`. A target stores the value someone
set, and the baseline (the same metric for the same scope in the previous
comparable period) computed when the target was saved, so growth rates of a
cascade can be compared level by level without recomputing history.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _


class MetricKind(models.Model):
    """A measurable KPI; `key` selects the computing function registered in goals.metrics."""

    class Unit(models.TextChoices):
        CNY = "cny", _("元")
        PERCENT = "percent", _("%")
        COUNT = "count", _("个")

    key = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100, verbose_name=_("名称"))
    name_en = models.CharField(max_length=100, blank=True)
    unit = models.CharField(max_length=16, choices=Unit.choices, verbose_name=_("单位"))
    # Additive metrics (revenue, counts) pro-rate over time for pace; ratios/averages do not.
    additive = models.BooleanField(default=True)
    description = models.TextField(blank=True, verbose_name=_("口径说明"))
    order = models.PositiveSmallIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["order", "id"]
        verbose_name = _("指标类型")
        verbose_name_plural = _("指标类型")

    def __str__(self) -> str:
        lang = get_language() or ""
        return self.name_en if lang.startswith("en") and self.name_en else self.name


class Period(models.Model):
    class Kind(models.TextChoices):
        MONTH = "month", _("月度")
        QUARTER = "quarter", _("季度")
        YEAR = "year", _("年度")

    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("周期类型"))
    start = models.DateField(verbose_name=_("开始日期"))
    end = models.DateField(verbose_name=_("结束日期"))
    name = models.CharField(max_length=64, verbose_name=_("名称"))

    class Meta:
        ordering = ["-start", "kind"]
        constraints = [models.UniqueConstraint(fields=["kind", "start"], name="uniq_goal_period_kind_start")]
        verbose_name = _("目标周期")
        verbose_name_plural = _("目标周期")

    def __str__(self) -> str:
        return self.name

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1


class Objective(models.Model):
    period = models.ForeignKey(Period, on_delete=models.PROTECT, related_name="objectives", verbose_name=_("周期"))
    org_unit = models.ForeignKey(
        "org.OrgUnit", on_delete=models.PROTECT, related_name="objectives", verbose_name=_("组织")
    )
    title = models.CharField(max_length=200, verbose_name=_("目标"))
    description = models.TextField(blank=True, verbose_name=_("说明"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-period__start", "id"]
        verbose_name = _("目标(O)")
        verbose_name_plural = _("目标(O)")

    def __str__(self) -> str:
        return self.title


class KeyResult(models.Model):
    objective = models.ForeignKey(Objective, on_delete=models.CASCADE, related_name="key_results")
    metric = models.ForeignKey(MetricKind, on_delete=models.PROTECT, related_name="key_results",
                               verbose_name=_("指标"))
    title = models.CharField(max_length=200, verbose_name=_("关键结果"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["objective_id", "id"]
        verbose_name = _("关键结果(KR)")
        verbose_name_plural = _("关键结果(KR)")

    def __str__(self) -> str:
        return self.title


class Target(models.Model):
    """One node of a key result's cascade: an org unit's or a rep's target."""

    key_result = models.ForeignKey(KeyResult, on_delete=models.CASCADE, related_name="targets")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="children",
                               verbose_name=_("上级目标"))
    org_unit = models.ForeignKey("org.OrgUnit", on_delete=models.PROTECT, related_name="goal_targets",
                                 verbose_name=_("组织"))
    # Set for a rep's personal target; org_unit is then the rep's unit at allocation time.
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT,
                             related_name="goal_targets", verbose_name=_("销售"))
    value = models.DecimalField(max_digits=16, decimal_places=2, verbose_name=_("目标值"))
    baseline = models.DecimalField(max_digits=16, decimal_places=2, default=Decimal("0"), verbose_name=_("基线"))
    depth = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key_result_id", "depth", "org_unit__path", "id"]
        constraints = [
            models.UniqueConstraint(fields=["key_result", "org_unit"], condition=Q(user__isnull=True),
                                    name="uniq_goal_target_unit"),
            models.UniqueConstraint(fields=["key_result", "user"], condition=Q(user__isnull=False),
                                    name="uniq_goal_target_user"),
        ]
        indexes = [models.Index(fields=["user", "key_result"])]
        verbose_name = _("目标分解")
        verbose_name_plural = _("目标分解")

    def __str__(self) -> str:
        return f"{self.scope_label}: {self.value}"

    @property
    def scope_label(self) -> str:
        return self.user.label if self.user_id else self.org_unit.name

    @property
    def growth(self) -> float | None:
        """value / baseline − 1; None when there is no baseline to compare with."""
        if not self.baseline:
            return None
        return float(self.value / self.baseline - 1)


class GoalReport(models.Model):
    """目标偏差分析报告: a frozen JSON snapshot for one period, so it stays what it was."""

    period_start = models.DateField(verbose_name=_("开始日期"))
    period_end = models.DateField(verbose_name=_("结束日期"))
    as_of = models.DateField(verbose_name=_("数据截至"))
    title = models.CharField(max_length=200, verbose_name=_("标题"))
    data = models.JSONField(default=dict)
    generated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    generated_at = models.DateTimeField(auto_now_add=True, verbose_name=_("生成时间"))

    class Meta:
        ordering = ["-period_start", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["period_start", "period_end"], name="uniq_goal_report_period"),
        ]
        verbose_name = _("目标偏差分析报告")
        verbose_name_plural = _("目标偏差分析报告")

    def __str__(self) -> str:
        return self.title
