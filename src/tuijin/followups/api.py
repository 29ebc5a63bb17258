"""API: activities (跟进记录)."""

from __future__ import annotations

import datetime as dt

from ninja import Query, Router, Schema

from tuijin.core.apiutils import HistoryOut, PageMeta, history_out, paginate
from tuijin.core.audit import history_for
from tuijin.core.limits import text
from tuijin.customers.selectors import contact_get, customer_get
from tuijin.pipeline.selectors import opportunity_get

from . import selectors, services
from .models import Activity

router = Router(tags=["activities"])


class ActivityOut(Schema):
    id: int
    customer_id: int
    customer_name: str
    opportunity_id: int | None
    contact_id: int | None
    owner_id: int
    owner_name: str
    kind: str
    occurred_at: dt.datetime
    duration_minutes: int
    subject: str
    conclusion: str
    notes: str
    created_at: dt.datetime

    @staticmethod
    def resolve_customer_name(obj):
        return obj.customer.name

    @staticmethod
    def resolve_owner_name(obj):
        return obj.owner.label


class ActivityPage(PageMeta):
    items: list[ActivityOut]


class ActivityIn(Schema):
    # Strings bounded by the model fields (core.limits, docs/api.md).
    customer_id: int
    kind: text(Activity, "kind")
    occurred_at: dt.datetime | None = None
    duration_minutes: int = 0
    subject: text(Activity, "subject") = ""
    conclusion: text(Activity, "conclusion") = ""
    notes: text(Activity, "notes") = ""
    opportunity_id: int | None = None
    contact_id: int | None = None


class ActivityFilters(Schema):
    q: str = ""
    scope: str = ""
    customer_id: int | None = None
    opportunity_id: int | None = None
    owner_id: int | None = None
    kind: str = ""
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    page: int = 1
    page_size: int = 20


@router.get("/activities", response=ActivityPage)
def activity_list(request, filters: Query[ActivityFilters]):
    f = filters.dict()
    page, page_size = f.pop("page"), f.pop("page_size")
    return paginate(selectors.activity_list(user=request.user, **f), page, page_size,
                    when_large=lambda: selectors.activity_list(user=request.user, walk_time_index=True, **f))


@router.post("/activities", response={201: ActivityOut})
def activity_create(request, payload: ActivityIn):
    data = payload.dict()
    customer = customer_get(user=request.user, pk=data.pop("customer_id"))
    opp_id, contact_id = data.pop("opportunity_id"), data.pop("contact_id")
    opportunity = opportunity_get(user=request.user, pk=opp_id) if opp_id else None
    contact = contact_get(user=request.user, pk=contact_id) if contact_id else None
    activity = services.activity_create(
        actor=request.user, customer=customer, opportunity=opportunity, contact=contact, **data
    )
    return selectors.activity_get(user=request.user, pk=activity.pk)


@router.get("/activities/{activity_id}", response=ActivityOut)
def activity_get(request, activity_id: int):
    return selectors.activity_get(user=request.user, pk=activity_id)


@router.get("/activities/{activity_id}/history", response=HistoryOut)
def activity_history(request, activity_id: int):
    return history_out(history_for(selectors.activity_get(user=request.user, pk=activity_id)))
