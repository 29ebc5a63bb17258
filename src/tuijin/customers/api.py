"""API: customers, contacts, team members, transfers and duplicate checks."""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema

from tuijin.core.apiutils import HistoryOut, PageMeta, history_out, paginate
from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.org.models import User

from . import selectors, services

router = Router(tags=["customers"])


class OwnerOut(Schema):
    id: int
    username: str
    display_name: str


class CustomerOut(Schema):
    id: int
    name: str
    credit_code: str
    industry: str
    size_band: str
    region: str
    city: str
    source: str
    tags: list[str]
    status: str
    phone: str
    address: str
    notes: str
    owner: OwnerOut
    last_contact_at: dt.datetime | None
    grade: str = ""
    grade_reasons: list[dict] = []
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int

    @staticmethod
    def resolve_owner(obj):
        return {"id": obj.owner.pk, "username": obj.owner.username, "display_name": obj.owner.label}


class CustomerPage(PageMeta):
    items: list[CustomerOut]


class ContactIn(Schema):
    name: str
    title: str = ""
    decision_role: str = ""
    style_tags: list[str] = []
    mobile: str = ""
    phone: str = ""
    email: str = ""
    wechat: str = ""
    qq: str = ""
    is_primary: bool = False


class CustomerIn(Schema):
    name: str
    credit_code: str = ""
    industry: str = ""
    size_band: str = ""
    region: str = ""
    city: str = ""
    source: str = ""
    tags: list[str] = []
    status: str = "active"
    phone: str = ""
    address: str = ""
    notes: str = ""
    owner_id: int | None = None
    allow_duplicate: bool = False
    contacts: list[ContactIn] = []


class CustomerPatch(Schema):
    version: int | None = None
    name: str | None = None
    credit_code: str | None = None
    industry: str | None = None
    size_band: str | None = None
    region: str | None = None
    city: str | None = None
    source: str | None = None
    tags: list[str] | None = None
    status: str | None = None
    phone: str | None = None
    address: str | None = None
    notes: str | None = None


class CustomerFilters(Schema):
    q: str = ""
    scope: str = ""
    status: str = ""
    industry: str = ""
    region: str = ""
    owner_id: int | None = None
    grade: str = ""
    order: str = "-updated_at"
    page: int = 1
    page_size: int = 20


class ContactOut(Schema):
    id: int
    customer_id: int
    name: str
    title: str
    decision_role: str
    style_tags: list[str]
    mobile: str
    phone: str
    email: str
    wechat: str
    qq: str
    is_primary: bool
    version: int


class ContactPage(PageMeta):
    items: list[ContactOut]


class ContactCreate(ContactIn):
    customer_id: int


class ContactPatch(Schema):
    version: int | None = None
    name: str | None = None
    title: str | None = None
    decision_role: str | None = None
    style_tags: list[str] | None = None
    mobile: str | None = None
    phone: str | None = None
    email: str | None = None
    wechat: str | None = None
    qq: str | None = None
    is_primary: bool | None = None


class MemberIn(Schema):
    user_id: int
    access: str = "read"
    until: dt.date | None = None


class MemberOut(Schema):
    user_id: int
    username: str
    access: str
    until: dt.date | None


class TransferIn(Schema):
    customer_ids: list[int]
    to_user_id: int
    keep_old_owner: bool = False
    old_owner_access: str = "read"
    reason: str = ""


class DuplicateMatch(Schema):
    id: int
    name: str
    owner: str
    matched: list[str]


class GradePoolOut(Schema):
    grade: str
    name: str
    count: int
    records: str
    page: str


class GradePoolsOut(Schema):
    items: list[GradePoolOut]


def _owner_for(request, owner_id: int | None) -> User:
    """The user behind `owner_id`; whether the caller may assign them is the service's rule (owner_check)."""
    if owner_id is None:
        return request.user
    owner = User.objects.filter(pk=owner_id).first()
    if owner is None:  # the service's own wording for someone you may not pick: a missing id reveals nothing
        raise ValidationFailed({"owner_id": _("不可选择该负责人：只能指定你自己或你团队中的人员")})
    return owner


@contextmanager
def body_fields(**names: str):
    """Services name model fields (`owner`); the API reports the body field the client sent (`owner_id`)."""
    try:
        yield
    except ValidationFailed as exc:
        raise ValidationFailed({names.get(k, k): v for k, v in exc.errors.items()}) from exc


@router.get("/customers", response=CustomerPage)
def customer_list(request, filters: Query[CustomerFilters]):
    f = filters.dict()
    page, page_size = f.pop("page"), f.pop("page_size")
    return paginate(selectors.customer_list(user=request.user, **f), page, page_size)


@router.post("/customers", response={201: CustomerOut})
def customer_create(request, payload: CustomerIn):
    data = payload.dict()
    owner = _owner_for(request, data.pop("owner_id"))
    contacts = data.pop("contacts")
    allow = data.pop("allow_duplicate")
    with body_fields(owner="owner_id"):
        customer = services.customer_create(
            actor=request.user, owner=owner, allow_duplicate=allow, contacts=contacts, **data
        )
    return selectors.customer_get(user=request.user, pk=customer.pk)


@router.get("/customers/duplicates", response=list[DuplicateMatch])
def customer_duplicates(request, name: str = "", phone: str = "", credit_code: str = ""):
    """Duplicate check (查重) across all customers; shows only name and owner of a match."""
    return selectors.duplicates_find(name=name, phone=phone, credit_code=credit_code)


@router.get("/customers/pools", response=GradePoolsOut, tags=["grading"])
def customer_pools(request):
    """The user's customer pools per grade (SPEC G3): counts, each with the URL of its records."""
    from .grading_selectors import grade_pools

    return {"items": grade_pools(user=request.user)}


@router.post("/customers/transfer", response={200: dict})
def customer_transfer(request, payload: TransferIn):
    from tuijin.pipeline.services import customer_transfer as transfer

    customers = [selectors.customer_get(user=request.user, pk=pk) for pk in payload.customer_ids]
    # An unknown or inactive target is bad input (422 naming the field), not a missing resource.
    to_user = User.objects.filter(pk=payload.to_user_id).first()
    if to_user is None:
        raise ValidationFailed({"to_user_id": "用户不存在 / unknown user"})
    with body_fields(to_user="to_user_id"):
        moved = transfer(
            actor=request.user, customers=customers, to_user=to_user, keep_old_owner=payload.keep_old_owner,
            old_owner_access=payload.old_owner_access, reason=payload.reason,
        )
    return {"transferred": moved}


@router.get("/customers/{customer_id}", response=CustomerOut)
def customer_get(request, customer_id: int):
    return selectors.customer_get(user=request.user, pk=customer_id)


@router.patch("/customers/{customer_id}", response=CustomerOut)
def customer_patch(request, customer_id: int, payload: CustomerPatch):
    customer = selectors.customer_get(user=request.user, pk=customer_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version", None)
    services.customer_update(actor=request.user, customer=customer, version=version, **data)
    return selectors.customer_get(user=request.user, pk=customer_id)


@router.get("/customers/{customer_id}/history", response=HistoryOut)
def customer_history(request, customer_id: int):
    return history_out(history_for(selectors.customer_get(user=request.user, pk=customer_id)))


@router.get("/customers/{customer_id}/members", response=list[MemberOut])
def member_list(request, customer_id: int):
    customer = selectors.customer_get(user=request.user, pk=customer_id)
    return [
        {"user_id": m.user_id, "username": m.user.username, "access": m.access, "until": m.until}
        for m in customer.members.select_related("user")
    ]


@router.post("/customers/{customer_id}/members", response={201: MemberOut})
def member_add(request, customer_id: int, payload: MemberIn):
    customer = selectors.customer_get(user=request.user, pk=customer_id)
    user = get_object_or_404(User, pk=payload.user_id, is_active=True)
    m = services.customer_member_set(
        actor=request.user, customer=customer, user=user, access=payload.access, until=payload.until
    )
    return {"user_id": user.pk, "username": user.username, "access": m.access, "until": m.until}


@router.delete("/customers/{customer_id}/members/{user_id}", response={204: None})
def member_remove(request, customer_id: int, user_id: int):
    customer = selectors.customer_get(user=request.user, pk=customer_id)
    user = get_object_or_404(User, pk=user_id)
    services.customer_member_remove(actor=request.user, customer=customer, user=user)
    return None


@router.get("/contacts", response=ContactPage, tags=["contacts"])
def contact_list(request, q: str = "", customer_id: int | None = None, page: int = 1, page_size: int = 20):
    return paginate(selectors.contact_list(user=request.user, q=q, customer_id=customer_id), page, page_size)


@router.post("/contacts", response={201: ContactOut}, tags=["contacts"])
def contact_create(request, payload: ContactCreate):
    data = payload.dict()
    customer = selectors.customer_get(user=request.user, pk=data.pop("customer_id"))
    return services.contact_create(actor=request.user, customer=customer, **data)


@router.get("/contacts/{contact_id}", response=ContactOut, tags=["contacts"])
def contact_get(request, contact_id: int):
    return selectors.contact_get(user=request.user, pk=contact_id)


@router.patch("/contacts/{contact_id}", response=ContactOut, tags=["contacts"])
def contact_patch(request, contact_id: int, payload: ContactPatch):
    contact = selectors.contact_get(user=request.user, pk=contact_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version", None)
    return services.contact_update(actor=request.user, contact=contact, version=version, **data)


@router.get("/contacts/{contact_id}/history", response=HistoryOut, tags=["contacts"])
def contact_history(request, contact_id: int):
    return history_out(history_for(selectors.contact_get(user=request.user, pk=contact_id)))


__all__ = ["router", "Forbidden"]
