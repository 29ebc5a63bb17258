"""Demo key accounts: a few customers who reorder often, so the high-value pool is not empty.

The base demo gives most customers one or two deals; the article's 高净值 rule
(LTV ≥ 80,000, more than 3 deals a year and over 65% in one product line) needs
repeat buyers; the reorders repeat the first deal's products. This extension
adds 4 repeat orders within the last 11 months to a handful of active customers
that already won a deal, through the same services, then backdates their times
like the base demo does (the change trail keeps the real creation time).
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

from django.utils import timezone

from tuijin.customers.models import Customer
from tuijin.pipeline.models import Opportunity, Stage
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

KEY_ACCOUNTS = 8
REORDERS = 4


def load(*, rng: random.Random, months: int) -> dict[str, int]:
    today_start = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))
    won = (
        Opportunity.objects.filter(stage__kind=Stage.Kind.WON, customer__status=Customer.Status.ACTIVE)
        .select_related("customer", "customer__owner", "pipeline")
        .order_by("customer__name", "id")
    )
    seen, picked = set(), []
    for opp in won:
        if opp.customer_id not in seen and opp.customer.owner.role in {"rep", "manager"}:
            seen.add(opp.customer_id)
            picked.append(opp)
    picked = rng.sample(picked, min(KEY_ACCOUNTS, len(picked)))
    created = 0
    for first in sorted(picked, key=lambda o: o.pk):
        won_stage = first.pipeline.stages.get(kind=Stage.Kind.WON)
        products = [p.pk for p in first.products.all()]
        for i in range(REORDERS):
            amount = max(Decimal("25000"), (first.amount * Decimal(rng.randint(30, 60)) / 100).quantize(Decimal("1")))
            opp = opportunity_create(
                actor=first.customer.owner, customer=first.customer, owner=first.customer.owner,
                pipeline=first.pipeline,
                name=f"{first.customer.name[:60]}·复购订单{i + 1}", amount=amount, products=products,
            )
            opportunity_move_stage(actor=first.customer.owner, opportunity=opp, stage=won_stage)
            closed = today_start - dt.timedelta(days=rng.randint(10, 330), hours=rng.randint(1, 10))
            opened = closed - dt.timedelta(days=rng.randint(7, 30))
            Opportunity.objects.filter(pk=opp.pk).update(
                created_at=opened, stage_entered_at=closed, last_progress_at=closed, closed_at=closed,
                expected_close_date=closed.date(),
            )
            created += 1
    return {"key-account reorders": created}
