"""Daily reports (销售日报), forecast lines with evidence links, and data-correction requests (SPEC R1–R3).

A report is a draft until its rep submits it; from then on it is locked and
only an approved CorrectionRequest may change its lines (services enforce
this). Lines keep the outlier check's result (baseline, deviation, basis) and
the rep's acknowledgement, and, once corrected, the originally submitted
values beside the corrected ones.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from tuijin.followups.models import Activity
from tuijin.pipeline.models import Opportunity


class DailyReport(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("草稿")
        SUBMITTED = "submitted", _("已提交")

    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="daily_reports", verbose_name=_("销售")
    )
    date = models.DateField(verbose_name=_("日报日期"))
    summary = models.TextField(blank=True, verbose_name=_("今日总结"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.DRAFT, db_index=True, verbose_name=_("状态")
    )
    submitted_at = models.DateTimeField(null=True, blank=True, verbose_name=_("提交时间"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["-date", "-id"]
        constraints = [models.UniqueConstraint(fields=["rep", "date"], name="uniq_daily_report_rep_date")]
        indexes = [models.Index(fields=["date", "rep"]), models.Index(fields=["rep", "-date"])]
        verbose_name = _("销售日报")
        verbose_name_plural = _("销售日报")

    def __str__(self) -> str:
        return f"{self.rep} {self.date:%Y-%m-%d}"

    @property
    def is_locked(self) -> bool:
        return self.status == self.Status.SUBMITTED


class ForecastLine(models.Model):
    class Confidence(models.TextChoices):
        COMMIT = "commit", _("确定签约")
        LIKELY = "likely", _("很可能")
        UPSIDE = "upside", _("有机会")

    class Basis(models.TextChoices):
        CUSTOMER = "customer", _("该客户历史成交")
        SEGMENT = "segment", _("同行业同规模客户成交")
        NONE = "none", _("无历史可比")

    report = models.ForeignKey(DailyReport, on_delete=models.CASCADE, related_name="lines", verbose_name=_("日报"))
    position = models.PositiveSmallIntegerField(default=0)
    opportunity = models.ForeignKey(
        Opportunity, on_delete=models.PROTECT, related_name="forecast_lines", verbose_name=_("商机")
    )
    amount = models.DecimalField(max_digits=14, decimal_places=2, verbose_name=_("预计签约金额"))
    expected_sign_date = models.DateField(verbose_name=_("预计签约日期"))
    confidence = models.CharField(max_length=8, choices=Confidence.choices, verbose_name=_("把握程度"))
    # Outlier check (R2-2): the model's mean, how far the amount is from it, and what it was based on.
    baseline_basis = models.CharField(
        max_length=8, choices=Basis.choices, default=Basis.NONE, verbose_name=_("比较基准")
    )
    baseline_mean = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, verbose_name=_("历史成交均值")
    )
    baseline_count = models.PositiveIntegerField(default=0, verbose_name=_("历史成交笔数"))
    deviation = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, verbose_name=_("偏离均值")
    )
    is_outlier = models.BooleanField(default=False, verbose_name=_("异常预警"))
    outlier_reason = models.CharField(max_length=500, blank=True, verbose_name=_("异常说明"))
    outlier_acknowledged_at = models.DateTimeField(null=True, blank=True, verbose_name=_("确认时间"))
    # Set by the first applied correction: the values as submitted stay visible beside the corrected ones.
    original_amount = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, verbose_name=_("原预计签约金额")
    )
    original_expected_sign_date = models.DateField(null=True, blank=True, verbose_name=_("原预计签约日期"))
    original_confidence = models.CharField(
        max_length=8, choices=Confidence.choices, blank=True, verbose_name=_("原把握程度")
    )
    corrected_at = models.DateTimeField(null=True, blank=True, verbose_name=_("更正时间"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["report_id", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["report", "opportunity"], name="uniq_forecast_line_opportunity"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="forecast_line_amount_not_negative"),
        ]
        indexes = [models.Index(fields=["opportunity", "report"])]
        verbose_name = _("预测行")
        verbose_name_plural = _("预测行")

    def __str__(self) -> str:
        return f"{self.opportunity} ¥{self.amount}"

    @property
    def was_corrected(self) -> bool:
        return self.corrected_at is not None


class ForecastEvidence(models.Model):
    """A communication record backing a forecast line (R2-1).

    Today the only archived records are activities (with time and key
    conclusion); captured chat messages can get their own nullable link here.
    """

    line = models.ForeignKey(ForecastLine, on_delete=models.CASCADE, related_name="evidence")
    activity = models.ForeignKey(Activity, on_delete=models.PROTECT, related_name="forecast_evidence")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line_id", "id"]
        constraints = [models.UniqueConstraint(fields=["line", "activity"], name="uniq_forecast_evidence")]
        verbose_name = _("预测依据")
        verbose_name_plural = _("预测依据")


class CorrectionRequest(models.Model):
    """数据修正申请: changes to lines of a locked report; applied after manager and finance BP approve."""

    class Status(models.TextChoices):
        PENDING = "pending", _("待审批")
        APPLIED = "applied", _("已生效")
        REJECTED = "rejected", _("已驳回")

    report = models.ForeignKey(
        DailyReport, on_delete=models.CASCADE, related_name="corrections", verbose_name=_("日报")
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", verbose_name=_("申请人")
    )
    reason = models.CharField(max_length=500, verbose_name=_("修正原因"))
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True, verbose_name=_("状态")
    )
    manager_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("销售经理审批人"),
    )
    manager_approved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("销售经理审批时间"))
    finance_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("财务BP审批人"),
    )
    finance_approved_at = models.DateTimeField(null=True, blank=True, verbose_name=_("财务BP审批时间"))
    rejected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("驳回人"),
    )
    rejected_at = models.DateTimeField(null=True, blank=True, verbose_name=_("驳回时间"))
    rejection_reason = models.CharField(max_length=500, blank=True, verbose_name=_("驳回原因"))
    applied_at = models.DateTimeField(null=True, blank=True, verbose_name=_("生效时间"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("申请时间"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("数据修正申请")
        verbose_name_plural = _("数据修正申请")

    def __str__(self) -> str:
        return f"#{self.pk} {self.report}"


class CorrectionItem(models.Model):
    """One line's change in a correction: the values when requested and the requested ones (blank = keep)."""

    request = models.ForeignKey(CorrectionRequest, on_delete=models.CASCADE, related_name="items")
    line = models.ForeignKey(ForecastLine, on_delete=models.CASCADE, related_name="correction_items")
    old_amount = models.DecimalField(max_digits=14, decimal_places=2)
    old_expected_sign_date = models.DateField()
    old_confidence = models.CharField(max_length=8, choices=ForecastLine.Confidence.choices)
    new_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    new_expected_sign_date = models.DateField(null=True, blank=True)
    new_confidence = models.CharField(max_length=8, choices=ForecastLine.Confidence.choices, blank=True)

    class Meta:
        ordering = ["request_id", "line__position", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "line"], name="uniq_correction_item_line")]
