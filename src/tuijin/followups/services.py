"""Writes for activities; logging one also advances the customer's and opportunity's last-touch times."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.limits import length_errors
from tuijin.customers.models import Contact, Customer
from tuijin.customers.selectors import customer_can_write
from tuijin.org.models import User
from tuijin.pipeline.models import Opportunity

from .models import Activity

ACTIVITY_FIELDS = [
    "customer", "opportunity", "contact", "owner", "kind", "occurred_at", "duration_minutes", "subject",
    "conclusion", "notes",
]


def _parse_when(value, errors: dict):
    if value in (None, ""):
        return timezone.now()
    if isinstance(value, dt.datetime):
        when = value
    else:
        when = parse_datetime(str(value))
        if when is None:
            errors["occurred_at"] = _("时间格式应为 YYYY-MM-DDTHH:MM")
            return None
    if timezone.is_naive(when):
        when = timezone.make_aware(when)
    if when > timezone.now() + dt.timedelta(minutes=5):
        errors["occurred_at"] = _("跟进时间不能晚于现在")
    return when


@transaction.atomic
def activity_create(
    *, actor: User, customer: Customer, kind: str, occurred_at=None, duration_minutes=0,
    subject: str = "", conclusion: str = "", notes: str = "",
    opportunity: Opportunity | None = None, contact: Contact | None = None,
) -> Activity:
    """Log a contact with a visible customer; the caller has already checked visibility.

    Logging is a write on the customer: read-only team members may not do it.
    """
    if not customer_can_write(user=actor, customer=customer):
        raise Forbidden(_("你对该客户只有只读权限"))
    errors: dict[str, str] = {}
    if kind not in Activity.Kind.values:
        errors["kind"] = _("跟进方式无效（可选：%(choices)s）") % {"choices": ", ".join(Activity.Kind.values)}
    when = _parse_when(occurred_at, errors)
    try:
        minutes = int(duration_minutes or 0)
        if not 0 <= minutes <= 24 * 60:
            raise ValueError
    except (TypeError, ValueError):
        errors["duration_minutes"] = _("时长必须是0到1440之间的分钟数")
        minutes = 0
    if opportunity is not None and opportunity.customer_id != customer.pk:
        errors["opportunity"] = _("商机不属于该客户")
    if contact is not None and contact.customer_id != customer.pk:
        errors["contact"] = _("联系人不属于该客户")
    if not (subject or conclusion or notes):
        errors["subject"] = _("请至少填写主题、关键结论或备注之一")
    length_errors(Activity, {"subject": subject.strip(), "conclusion": conclusion.strip(), "notes": notes.strip()},
                  errors)
    if errors:
        raise ValidationFailed(errors)
    activity = Activity.objects.create(
        customer=customer, opportunity=opportunity, contact=contact, owner=actor, kind=kind,
        occurred_at=when, duration_minutes=minutes, subject=subject.strip(), conclusion=conclusion.strip(),
        notes=notes.strip(),
    )
    # Only move "last contact" forward: back-filling an old visit must not hide staleness.
    Customer.objects.filter(pk=customer.pk).filter(
        Q(last_contact_at__isnull=True) | Q(last_contact_at__lt=when)
    ).update(last_contact_at=when)
    if opportunity is not None:
        Opportunity.objects.filter(pk=opportunity.pk, last_progress_at__lt=when).update(last_progress_at=when)
    audit.record(actor=actor, obj=activity, action="create",
                 changes=audit.diff({}, audit.snapshot(activity, ACTIVITY_FIELDS)))
    return activity
