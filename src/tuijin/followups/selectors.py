"""Reads of activities: visible when the author is visible or the customer is."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from tuijin.core.errors import NotFound
from tuijin.customers.models import Customer
from tuijin.customers.selectors import membership_q, visible_customers_q
from tuijin.org.models import User
from tuijin.org.selectors import team_user_ids, visible_owner_ids

from .models import Activity


def activity_visible_qs(*, user: User) -> QuerySet[Activity]:
    ids = visible_owner_ids(user)
    qs = Activity.objects.all()
    if ids is None:
        return qs
    return qs.filter(Q(owner_id__in=ids) | visible_customers_q(user, prefix="customer__"))


def activity_list(
    *, user: User, q: str = "", scope: str = "", customer_id: int | None = None,
    opportunity_id: int | None = None, owner_id: int | None = None, kind: str = "",
    since=None, until=None,
) -> QuerySet[Activity]:
    qs = activity_visible_qs(user=user).select_related("customer", "owner", "contact", "opportunity")
    if q:
        qs = qs.filter(Q(subject__icontains=q) | Q(notes__icontains=q) | Q(customer__name__icontains=q))
    if scope == "mine":
        qs = qs.filter(owner=user)
    elif scope == "team":
        ids = team_user_ids(user)
        qs = qs.exclude(owner=user) if ids is None else qs.filter(owner_id__in=ids)
    elif scope == "shared":
        qs = qs.filter(customer__in=Customer.objects.filter(membership_q(user))).exclude(owner=user)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if opportunity_id:
        qs = qs.filter(opportunity_id=opportunity_id)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if kind:
        qs = qs.filter(kind=kind)
    if since:
        qs = qs.filter(occurred_at__gte=since)
    if until:
        qs = qs.filter(occurred_at__lt=until)
    return qs.order_by("-occurred_at", "-id")


def activity_get(*, user: User, pk) -> Activity:
    try:
        return activity_list(user=user).get(pk=int(pk))
    except (Activity.DoesNotExist, ValueError, TypeError):
        raise NotFound("activity")
