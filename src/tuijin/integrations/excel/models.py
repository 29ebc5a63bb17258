"""Import jobs: an uploaded file, its dry-run report, and progress for large files.

Both the dry run (status validating) and the import (queued → running) run in the
Huey worker. A running task renews `heartbeat_at` (a lease); a job whose worker
died stops renewing it and is marked interrupted (see services.import_jobs_sweep),
after which it can be started again.

The uploaded bytes are kept on the job (a BinaryField) so the background worker
re-reads exactly what was validated, on any machine, without a shared MEDIA_ROOT.
Progress is not stored here: while the import runs, its own transaction holds
SQLite's write lock, so progress goes to the cache (see services.progress_get).
"""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportJob(models.Model):
    class Status(models.TextChoices):
        VALIDATING = "validating", _("校验中")
        VALIDATED = "validated", _("已校验")
        QUEUED = "queued", _("排队中")
        RUNNING = "running", _("导入中")
        DONE = "done", _("已完成")
        FAILED = "failed", _("失败")
        INTERRUPTED = "interrupted", _("失败（已中断）")

    class DupMode(models.TextChoices):
        SKIP = "skip", _("跳过已有客户")
        UPDATE = "update", _("更新已有客户")

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs", verbose_name=_("导入人")
    )
    filename = models.CharField(max_length=255, verbose_name=_("文件名"))
    file_data = models.BinaryField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.VALIDATED, db_index=True, verbose_name=_("状态")
    )
    dup_mode = models.CharField(
        max_length=8, choices=DupMode.choices, default=DupMode.SKIP, verbose_name=_("重复客户处理")
    )
    report = models.JSONField(default=dict, blank=True)
    total_rows = models.PositiveIntegerField(default=0, verbose_name=_("总行数"))
    created_count = models.PositiveIntegerField(default=0, verbose_name=_("新建"))
    updated_count = models.PositiveIntegerField(default=0, verbose_name=_("更新"))
    skipped_count = models.PositiveIntegerField(default=0, verbose_name=_("跳过"))
    error = models.TextField(blank=True, verbose_name=_("错误"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("创建时间"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("开始时间"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("完成时间"))
    # When the job last entered the queue (dry run or import); NULL once a worker picked it up.
    queued_at = models.DateTimeField(null=True, blank=True, verbose_name=_("排队时间"))
    # Renewed by the running task; NULL while waiting in the queue and after the task ended.
    heartbeat_at = models.DateTimeField(null=True, blank=True, verbose_name=_("心跳时间"))

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("导入任务")
        verbose_name_plural = _("导入任务")

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"
