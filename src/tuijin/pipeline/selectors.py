"""Reads of pipelines and opportunities that respect row-level visibility.

An opportunity is visible when its owner is in the user's visible set or its
customer is visible to the user (owner visible, or the user is a team member).
"""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from tuijin.core.errors import NotFound
from tuijin.customers.models import Customer, CustomerMember
from tuijin.customers.selectors import filter_visible_by_owner_or_customer, membership_q, visible_customers_q
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


def opportunity_visible_qs(*, user: User, walk_sort_index: bool = False) -> QuerySet[Opportunity]:
    """Visible opportunities; walk_sort_index for large visible sets (see core.paging.NoIndex)."""
    return filter_visible_by_owner_or_customer(Opportunity.objects.all(), user, walk=walk_sort_index)


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
    walk_sort_index: bool = False,
) -> QuerySet[Opportunity]:
    """Visible opportunities with filters; status is open / won / lost.

    walk_sort_index (large visible sets, core.paging): only the default order has an index to walk.
    """
    allowed = {"-updated_at", "updated_at", "-amount", "amount", "expected_close_date", "-expected_close_date"}
    order = order if order in allowed else "-updated_at"
    walk = walk_sort_index and order == "-updated_at"
    qs = opportunity_visible_qs(user=user, walk_sort_index=walk).select_related(
        "customer", "owner", "stage", "pipeline")
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
        # stage_id IN (stages of that kind) rather than a join on stage.kind: the stage index (and the
        # covering stage/owner/customer/amount index of the roll-ups) can serve it; measured at scale M.
        qs = qs.filter(stage_id__in=Stage.objects.filter(kind=status).values("pk"))
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


_CARD_FIELDS = ("id", "name", "amount", "version", "stage_id", "pipeline_id", "last_progress_at", "updated_at",
                "customer__id", "customer__name", "owner__id", "owner__username", "owner__display_name")


# Above this many visible cards on the board, fetching each column's newest cards walks the
# stage's (stage, -updated_at) index; below it, the owner/customer indexes find the few rows faster.
KANBAN_WALK_ABOVE = 1000


def kanban_columns(*, user: User, pipeline: Pipeline, scope: str = "", owner_id: int | None = None,
                   q: str = "", per_column: int = 30):
    """Stages of a pipeline with the visible opportunities in each (the most recently updated first).

    One grouped query for every column's count and total, then one query per stage for its cards:
    the number of queries follows the pipeline's stage count, never the data. Each card query walks
    the (stage, -updated_at) index and stops after per_column rows; a single query ordered by
    (stage order, updated_at) instead sorted every visible opportunity (100,000 for a director at
    scale M: 150 ms of the page's 190). Cards load only the fields a card shows: building five
    model instances with every column for each of 400 cards cost more than the SQL.
    A column shows the per_column most recent cards and links to the list for the rest.
    """
    from django.db.models import Count, Sum

    stages = list(pipeline.stages.order_by("order"))
    # No pipeline_id condition: the pipeline's stage ids imply it, and a condition on a column
    # outside the covering (stage, owner, customer, amount) index would make SQLite read every row.
    qs = opportunity_list(user=user, scope=scope, owner_id=owner_id, q=q)
    totals = {
        row["stage_id"]: row
        for row in qs.filter(stage_id__in=[s.pk for s in stages]).order_by().values("stage_id")
        .annotate(n=Count("id"), total=Sum("amount"))
    }
    cards_qs = qs
    if sum(t["n"] for t in totals.values()) > KANBAN_WALK_ABOVE:
        # Many visible cards: walk each stage's (stage, -updated_at) index (core.paging.NoIndex).
        # Otherwise SQLite unions the owner/customer index lookups over every visible opportunity
        # and only then keeps the stage: 35–130 ms per column for a regional manager at scale M.
        cards_qs = opportunity_list(user=user, scope=scope, owner_id=owner_id, q=q, walk_sort_index=True)
    columns = []
    for s in stages:
        t = totals.get(s.pk, {})
        cards = list(
            cards_qs.filter(stage_id=s.pk).select_related(None).select_related("customer", "owner")
            .only(*_CARD_FIELDS).order_by("-updated_at", "-id")[:per_column]
        )
        columns.append({"stage": s, "cards": cards, "count": t.get("n", 0), "total": t.get("total") or 0})
    return columns


def open_pipeline_rollup(*, user: User) -> list[dict]:
    """Visible open opportunities counted and summed per (stage, owner): one row per pair.

    Pages derive the by-stage funnel and the by-owner table from these few hundred rows instead
    of running one aggregate each; the covering (stage, owner, customer, amount) index answers it
    without reading the table (scale M, a director: 100 ms → 11 ms on SQLite).
    """
    from django.db.models import Count, Sum

    open_ids = list(Stage.objects.filter(kind=Stage.Kind.OPEN).values_list("pk", flat=True))
    return list(
        opportunity_visible_qs(user=user).filter(stage_id__in=open_ids).order_by()
        .values("stage_id", "owner_id").annotate(n=Count("id"), total=Sum("amount"))
    )


def won_by_owner(*, user: User, since) -> dict[int, dict]:
    """Visible opportunities won since `since`, counted and summed per owner."""
    from django.db.models import Count, Sum

    # A literal id list, not a subquery: with the subquery SQLite scanned the owner index (scale M: 180 ms → 40 ms).
    won = list(Stage.objects.filter(kind=Stage.Kind.WON).values_list("pk", flat=True))
    rows = (opportunity_visible_qs(user=user).filter(stage_id__in=won, closed_at__gte=since).order_by()
            .values("owner_id").annotate(n=Count("id"), total=Sum("amount")))
    return {r["owner_id"]: r for r in rows}


def open_by_customer_region(*, user: User) -> list[dict]:
    """Visible open opportunities counted and summed per customer region (company-wide home page)."""
    from django.db.models import Count, Sum

    open_ids = list(Stage.objects.filter(kind=Stage.Kind.OPEN).values_list("pk", flat=True))
    return list(
        opportunity_visible_qs(user=user).filter(stage_id__in=open_ids).order_by()
        .values("customer__region").annotate(n=Count("id"), total=Sum("amount")).order_by("customer__region")
    )

