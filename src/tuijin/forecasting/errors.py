"""The error a locked (submitted) daily report raises on any attempt to change it (SPEC R2-3).

The API maps it to HTTP 423 Locked; pages show it as a 423 error page.
"""

from __future__ import annotations

from django.utils.translation import gettext as _

from tuijin.core.errors import ServiceError


class ReportLocked(ServiceError):
    """A submitted report is immutable; changes go through a data-correction request."""

    def __init__(self, message: str | None = None):
        super().__init__(message or _("日报已提交并锁定，不能修改；如需更正请发起数据修正申请"))
