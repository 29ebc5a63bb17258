"""Periodic jobs of the customers app: the nightly re-grading (SPEC G3).

Metrics such as deals in the last 12 months and days since contact change
with time alone, so all customers are re-graded once a night (02:00 local
time; Huey's crontab is UTC, hence the hourly trigger checking the local hour).
"""

from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, lock_task

from .grading_services import grade_recompute

NIGHTLY_LOCAL_HOUR = 2


@db_periodic_task(crontab(minute="20"))
@lock_task("customers-regrade")
def regrade_customers_nightly():
    now = timezone.now()
    if timezone.localtime(now).hour != NIGHTLY_LOCAL_HOUR:
        return None
    return grade_recompute(now=now)
