"""API: customers, contacts, team members, transfers and duplicate checks."""

from __future__ import annotations

import datetime as dt
import time

from django.conf import settings
from django.core.cache import cache
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Schema, Status

from tuijin.core.apiutils import HistoryOut, OwnerOut, PageMeta, body_fields, history_out, owner_for, paginate
from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.limits import TAG_MAX_LENGTH, bounded_list, short, text
from tuijin.org.models import User

from . import selectors, services
from .models import Contact, Customer, CustomerMember, OwnerChange

router = Router(tags=["customers"])


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


# Request bodies: every string bounded by its model field, every list by core.limits (docs/api.md).
def _c(field: str):
    return text(Customer, field)


def _k(field: str):
    return text(Contact, field)


Tags = bounded_list(short(TAG_MAX_LENGTH), "tags")


class ContactIn(Schema):
    name: _k("name")
    title: _k("title") = ""
    decision_role: _k("decision_role") = ""
    style_tags: Tags = []
    mobile: _k("mobile") = ""
    phone: _k("phone") = ""
    email: _k("email") = ""
    wechat: _k("wechat") = ""
    qq: _k("qq") = ""
    is_primary: bool = False


class CustomerIn(Schema):
    name: _c("name")
    credit_code: _c("credit_code") = ""
    industry: _c("industry") = ""
    size_band: _c("size_band") = ""
    region: _c("region") = ""
    city: _c("city") = ""
    source: _c("source") = ""
    tags: Tags = []
    status: _c("status") = "active"
    phone: _c("phone") = ""
    address: _c("address") = ""
    notes: _c("notes") = ""
    owner_id: int | None = None
    allow_duplicate: bool = False
    contacts: bounded_list(ContactIn, "contacts") = []


class CustomerPatch(Schema):
    version: int | None = None
    name: _c("name") | None = None
    credit_code: _c("credit_code") | None = None
    industry: _c("industry") | None = None
    size_band: _c("size_band") | None = None
    region: _c("region") | None = None
    city: _c("city") | None = None
    source: _c("source") | None = None
    tags: Tags | None = None
    status: _c("status") | None = None
    phone: _c("phone") | None = None
    address: _c("address") | None = None
    notes: _c("notes") | None = None


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
    name: _k("name") | None = None
    title: _k("title") | None = None
    decision_role: _k("decision_role") | None = None
    style_tags: Tags | None = None
    mobile: _k("mobile") | None = None
    phone: _k("phone") | None = None
    email: _k("email") | None = None
    wechat: _k("wechat") | None = None
    qq: _k("qq") | None = None
    is_primary: bool | None = None


class MemberIn(Schema):
    user_id: int
    access: text(CustomerMember, "access") = "read"
    until: dt.date | None = None


class MemberOut(Schema):
    user_id: int
    username: str
    access: str
    until: dt.date | None


class TransferIn(Schema):
    customer_ids: bounded_list(int, "ids")
    to_user_id: int
    keep_old_owner: bool = False
    old_owner_access: text(CustomerMember, "access") = "read"
    reason: text(OwnerChange, "reason") = ""


class DuplicateMatch(Schema):
    id: int | None  # None (and name None) for a customer the caller cannot see
    name: str | None
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


@router.get("/customers", response=CustomerPage)
def customer_list(request, filters: Query[CustomerFilters]):
    f = filters.dict()
    page, page_size = f.pop("page"), f.pop("page_size")
    return paginate(selectors.customer_list(user=request.user, **f), page, page_size)


@router.post("/customers", response={201: CustomerOut})
def customer_create(request, payload: CustomerIn):
    data = payload.dict()
    owner = owner_for(request, data.pop("owner_id"))
    contacts = data.pop("contacts")
    allow = data.pop("allow_duplicate")
    with body_fields(owner="owner_id"):
        customer = services.customer_create(
            actor=request.user, owner=owner, allow_duplicate=allow, contacts=contacts, **data
        )
    return selectors.customer_get(user=request.user, pk=customer.pk)


_clock = time.time  # replaced by tests that need a fixed minute


def _duplicate_check_allowed(user) -> bool:
    """At most TUIJIN_DUPLICATE_CHECKS_PER_MINUTE checks per user and clock minute (shared cache)."""
    key = f"tuijin:dupcheck:{user.pk}:{int(_clock() // 60)}"
    cache.add(key, 0, timeout=120)
    try:
        n = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=120)
        n = 1
    return n <= settings.TUIJIN_DUPLICATE_CHECKS_PER_MINUTE


@router.get("/customers/duplicates", response={200: list[DuplicateMatch], 429: dict})
def customer_duplicates(request, name: str = "", phone: str = "", credit_code: str = ""):
    """Duplicate check (查重) across all customers: that a match exists and its owner's display name;
    id and name only for customers the caller can see. Rate-limited per user (429)."""
    if not _duplicate_check_allowed(request.user):
        return Status(429, {"detail": "查重过于频繁，请稍后再试 / too many duplicate checks; try again in a minute"})
    return selectors.duplicates_find(name=name, phone=phone, credit_code=credit_code, user=request.user)


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
