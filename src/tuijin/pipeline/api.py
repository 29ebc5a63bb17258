"""API: pipelines, products and opportunities (including stage moves)."""

from __future__ import annotations

import datetime as dt

from ninja import Query, Router, Schema

from tuijin.core.apiutils import (
    HistoryOut,
    Money,
    OwnerOut,
    PageMeta,
    body_fields,
    history_out,
    owner_for,
    paginate,
)
from tuijin.core.audit import history_for
from tuijin.core.errors import ValidationFailed
from tuijin.core.limits import bounded_list, short, text
from tuijin.customers.selectors import customer_get

from . import selectors, services
from .models import Opportunity, Product, Stage

router = Router(tags=["opportunities"])


class StageOut(Schema):
    id: int
    code: str
    name: str
    name_en: str
    order: int
    probability: int
    kind: str


class PipelineOut(Schema):
    id: int
    code: str
    name: str
    name_en: str
    is_default: bool
    stages: list[StageOut]

    @staticmethod
    def resolve_stages(obj):
        return list(obj.stages.all())


class ProductOut(Schema):
    id: int
    code: str
    name: str
    name_en: str
    line_id: int
    list_price: Money


class CustomerRef(Schema):
    id: int
    name: str


class OpportunityOut(Schema):
    id: int
    name: str
    customer: CustomerRef
    owner: OwnerOut
    pipeline_id: int
    stage: StageOut
    amount: Money
    expected_close_date: dt.date | None
    probability: int
    loss_reason: str
    loss_note: str
    last_progress_at: dt.datetime
    stage_entered_at: dt.datetime
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int

    @staticmethod
    def resolve_owner(obj):
        return {"id": obj.owner.pk, "username": obj.owner.username, "display_name": obj.owner.label}


class OpportunityDetail(OpportunityOut):
    product_ids: list[int]

    @staticmethod
    def resolve_product_ids(obj):
        return sorted(p.pk for p in obj.products.all())


class OpportunityPage(PageMeta):
    items: list[OpportunityOut]


# Request bodies: strings bounded by their model fields, lists by core.limits (docs/api.md).
Name = text(Opportunity, "name")
LossReason = text(Opportunity, "loss_reason")
LossNote = text(Opportunity, "loss_note")
ProductIds = bounded_list(int, "ids")
# A number or a bounded numeric string; services.opportunity_* parse it (422 naming "amount" when bad).
AmountIn = short(32) | int | float


class OpportunityIn(Schema):
    name: Name
    customer_id: int
    owner_id: int | None = None
    pipeline_id: int | None = None
    stage_id: int | None = None
    amount: AmountIn = "0"
    expected_close_date: dt.date | None = None
    probability: int | None = None
    product_ids: ProductIds = []


class OpportunityPatch(Schema):
    version: int | None = None
    name: Name | None = None
    amount: AmountIn | None = None
    expected_close_date: dt.date | None = None
    probability: int | None = None
    product_ids: ProductIds | None = None
    loss_reason: LossReason | None = None
    loss_note: LossNote | None = None


class StageMoveIn(Schema):
    stage_id: int
    version: int | None = None
    loss_reason: LossReason = ""
    loss_note: LossNote = ""


class OpportunityFilters(Schema):
    q: str = ""
    scope: str = ""
    stage_id: int | None = None
    pipeline_id: int | None = None
    owner_id: int | None = None
    customer_id: int | None = None
    status: str = ""
    order: str = "-updated_at"
    page: int = 1
    page_size: int = 20


@router.get("/pipelines", response=list[PipelineOut], tags=["pipelines"])
def pipeline_list(request):
    return list(selectors.pipeline_list())


@router.get("/products", response=list[ProductOut], tags=["pipelines"])
def product_list(request):
    return list(Product.objects.filter(is_active=True))


@router.get("/opportunities", response=OpportunityPage)
def opportunity_list(request, filters: Query[OpportunityFilters]):
    f = filters.dict()
    page, page_size = f.pop("page"), f.pop("page_size")
    return paginate(selectors.opportunity_list(user=request.user, **f), page, page_size,
                    when_large=lambda: selectors.opportunity_list(user=request.user, walk_sort_index=True, **f))


def _stage(stage_id: int | None, field: str = "stage_id") -> Stage | None:
    if stage_id is None:
        return None
    stage = Stage.objects.select_related("pipeline").filter(pk=stage_id).first()
    if stage is None:
        raise ValidationFailed({field: "阶段不存在 / unknown stage"})
    return stage


@router.post("/opportunities", response={201: OpportunityDetail})
def opportunity_create(request, payload: OpportunityIn):
    data = payload.dict()
    customer = customer_get(user=request.user, pk=data.pop("customer_id"))
    owner = owner_for(request, data.pop("owner_id"))
    stage = _stage(data.pop("stage_id"))
    pipeline_id = data.pop("pipeline_id")
    pipeline = None
    if pipeline_id is not None:
        pipeline = selectors.pipeline_list().filter(pk=pipeline_id).first()
        if pipeline is None:
            raise ValidationFailed({"pipeline_id": "销售流程不存在 / unknown pipeline"})
    data["products"] = data.pop("product_ids")
    with body_fields(owner="owner_id"):
        opp = services.opportunity_create(
            actor=request.user, customer=customer, owner=owner, pipeline=pipeline, stage=stage, **data
        )
    return selectors.opportunity_get(user=request.user, pk=opp.pk)


@router.get("/opportunities/{opportunity_id}", response=OpportunityDetail)
def opportunity_get(request, opportunity_id: int):
    return selectors.opportunity_get(user=request.user, pk=opportunity_id)


@router.patch("/opportunities/{opportunity_id}", response=OpportunityDetail)
def opportunity_patch(request, opportunity_id: int, payload: OpportunityPatch):
    opp = selectors.opportunity_get(user=request.user, pk=opportunity_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version", None)
    if "product_ids" in data:
        data["products"] = data.pop("product_ids")
    services.opportunity_update(actor=request.user, opportunity=opp, version=version, **data)
    return selectors.opportunity_get(user=request.user, pk=opportunity_id)


@router.post("/opportunities/{opportunity_id}/stage", response=OpportunityDetail)
def opportunity_stage(request, opportunity_id: int, payload: StageMoveIn):
    opp = selectors.opportunity_get(user=request.user, pk=opportunity_id)
    stage = _stage(payload.stage_id)
    services.opportunity_move_stage(
        actor=request.user, opportunity=opp, stage=stage, version=payload.version,
        loss_reason=payload.loss_reason, loss_note=payload.loss_note,
    )
    return selectors.opportunity_get(user=request.user, pk=opportunity_id)


@router.get("/opportunities/{opportunity_id}/history", response=HistoryOut)
def opportunity_history(request, opportunity_id: int):
    return history_out(history_for(selectors.opportunity_get(user=request.user, pk=opportunity_id)))
