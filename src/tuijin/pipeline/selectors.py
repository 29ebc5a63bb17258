"""Reads of pipelines and opportunities that respect row-level visibility.

An opportunity is visible when its owner is in the user's visible set or its
customer is visible to the user (owner visible, or the user is a team member).
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from tuijin.core.errors import NotFound
from tuijin.customers.models import Customer, CustomerMember
from tuijin.customers.selectors import membership_q, visible_customers_q
from tuijin.org.models import User
from tuijin.org.selectors import team_user_ids, visible_owner_ids

from .models import Opportunity, Pipeline, Stage


def pipeline_list() -> QuerySet[Pipeline]:
    return Pipeline.objects.prefetch_related(Prefetch("stages", queryset=Stage.objects.order_by("order")))


def pipeline_default() -> Pipeline | None:
    return Pipeline.objects.order_by("-is_default", "id").first()


def visible_opportunities_q(user: User, prefix: str = "") -> Q | None:
    ids = visible_owner_ids(user)
    if ids is None:
        return None
    return Q(**{f"{prefix}owner_id__in": ids}) | visible_customers_q(user, prefix=f"{prefix}customer__")


def opportunity_visible_qs(*, user: User) -> QuerySet[Opportunity]:
    q = visible_opportunities_q(user)
    qs = Opportunity.objects.all()
    return qs if q is None else qs.filter(q)


def opportunity_list(
    *,
    user: User,
    q: str = "",
    scope: str = "",
    stage_id: int | None = None,
    pipeline_id: int | None = None,
    owner_id: int | None = None,
    customer_id: int | None = None,
    status: str = "",
    order: str = "-updated_at",
) -> QuerySet[Opportunity]:
    """Visible opportunities with filters; status is open / won / lost."""
    qs = opportunity_visible_qs(user=user).select_related("customer", "owner", "stage", "pipeline")
    if q:
        qs = qs.filter(Q(name__icontains=q.strip()) | Q(customer__name__icontains=q.strip()))
    if scope == "mine":
        qs = qs.filter(owner=user)
    elif scope == "team":
        ids = team_user_ids(user)
        qs = qs.exclude(owner=user) if ids is None else qs.filter(owner_id__in=ids)
    elif scope == "shared":
        # Current memberships only (an expired one is no longer "shared with me"), as for customers.
        qs = qs.filter(customer__in=Customer.objects.filter(membership_q(user))).exclude(owner=user)
    if stage_id:
        qs = qs.filter(stage_id=stage_id)
    if pipeline_id:
        qs = qs.filter(pipeline_id=pipeline_id)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if status in Stage.Kind.values:
        qs = qs.filter(stage__kind=status)
    allowed = {"-updated_at", "updated_at", "-amount", "amount", "expected_close_date", "-expected_close_date"}
    order = order if order in allowed else "-updated_at"
    return qs.order_by(order, "-id")


def opportunity_get(*, user: User, pk) -> Opportunity:
    try:
        return (
            opportunity_visible_qs(user=user)
            .select_related("customer", "owner", "stage", "pipeline")
            .prefetch_related("products")
            .get(pk=int(pk))
        )
    except (Opportunity.DoesNotExist, ValueError, TypeError):
        raise NotFound("opportunity")


def opportunity_can_write(*, user: User, opportunity: Opportunity) -> bool:
    ids = visible_owner_ids(user)
    if user.role in User.CROSS_ROLES:
        return opportunity.owner_id == user.pk or _write_member(user, opportunity.customer_id)
    if ids is None or opportunity.owner_id in ids:
        return True
    return _write_member(user, opportunity.customer_id)


def _write_member(user: User, customer_id: int) -> bool:
    from django.utils import timezone

    today = timezone.localdate()
    return CustomerMember.objects.filter(
        Q(until__isnull=True) | Q(until__gte=today),
        user=user, customer_id=customer_id, access=CustomerMember.Access.WRITE,
    ).exists()


def kanban_columns(*, user: User, pipeline: Pipeline, scope: str = "", owner_id: int | None = None,
                   q: str = "", per_column: int = 50):
    """Stages of a pipeline with the visible opportunities in each (open stages first)."""
    stages = list(pipeline.stages.order_by("order"))
    qs = opportunity_list(user=user, pipeline_id=pipeline.pk, scope=scope, owner_id=owner_id, q=q)
    columns = []
    from django.db.models import Count, Sum

    totals = {
        row["stage_id"]: row
        for row in qs.order_by().values("stage_id").annotate(n=Count("id"), total=Sum("amount"))
    }
    cards_by_stage: dict[int, list[Opportunity]] = {s.pk: [] for s in stages}
    # One query per column would be N+1 over stages; one window-limited fetch keeps it constant.
    for opp in qs.order_by("stage__order", "-updated_at")[: per_column * max(len(stages), 1) * 4]:
        bucket = cards_by_stage.get(opp.stage_id)
        if bucket is not None and len(bucket) < per_column:
            bucket.append(opp)
    for s in stages:
        t = totals.get(s.pk, {})
        columns.append({"stage": s, "cards": cards_by_stage[s.pk], "count": t.get("n", 0), "total": t.get("total") or 0})
    return columns
