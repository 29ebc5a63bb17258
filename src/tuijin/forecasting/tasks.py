"""Periodic job of forecasting: remind reps who have not submitted today's report (R1).

Runs hourly and acts at 18:00 local time on working days (Huey's crontab is
UTC, hence the local-hour check). Idempotent: notify() dedupes per rep and day.
"""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from .services import report_reminders_send

REMINDER_LOCAL_HOUR = 18


@db_periodic_task(crontab(minute="5"))
@lock_task("forecasting-report-reminders")
def remind_missing_reports():
    now = timezone.localtime()
    if now.hour != REMINDER_LOCAL_HOUR:
        return None
    return report_reminders_send(day=now.date())
