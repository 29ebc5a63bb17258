"""Reads of customers and contacts that respect row-level visibility (SPEC P3).

A customer is visible when its owner is in the user's visible set (own,
subtree for managers, everyone for director/VP/admin) or the user is a current
team member. Pages and API both call these functions.
"""

from __future__ import annotations

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from tuijin.core.errors import NotFound
from tuijin.core.paging import NoIndex
from tuijin.org.models import User
from tuijin.org.selectors import team_user_ids, visible_owner_ids

from .models import Contact, Customer, CustomerMember
from .normalize import normalize_credit_code, normalize_name, normalize_phone


def _active_memberships(user: User) -> QuerySet[CustomerMember]:
    today = timezone.localdate()
    return CustomerMember.objects.filter(user=user).filter(Q(until__isnull=True) | Q(until__gte=today))


def membership_q(user: User) -> Q:
    """Q on Customer: `user` is a current team member."""
    return Q(Exists(_active_memberships(user).filter(customer_id=OuterRef("pk"))))


def visible_customers_q(user: User, prefix: str = "") -> Q | None:
    """A Q limiting rows to visible customers; None means no limit.

    prefix is "" on Customer itself, "customer__" on rows that belong to a customer.
    Shape matters at scale (bench/, docs/benchmarks.md): uncorrelated `IN (subquery)`
    conditions on indexed columns, not a correlated EXISTS per row, and on related
    rows a condition on their own customer_id column instead of a join to customers.
    Measured at 1,000,000 activities on SQLite, a rep's activity count went from a
    2-second full scan with one EXISTS per row to index lookups.
    """
    ids = visible_owner_ids(user)
    if ids is None:
        return None
    members = _active_memberships(user).values("customer_id")
    if not prefix:
        return Q(owner_id__in=ids) | Q(pk__in=members)
    visible = Customer.objects.filter(Q(owner_id__in=ids) | Q(pk__in=members)).values("pk")
    return Q(**{f"{prefix}id__in": visible})


def filter_visible_by_owner_or_customer(qs: QuerySet, user: User, *, walk: bool = False) -> QuerySet:
    """Rows carrying owner_id and customer_id (opportunities, activities) that `user` sees: their
    owner is visible, or their customer is.

    walk: for large visible sets (core.paging): the same condition on `+owner_id` / `+customer_id`
    (core.paging.NoIndex), so the database walks the index of the list's sort order and stops
    after a page instead of collecting every visible row through the owner/customer indexes.
    """
    ids = visible_owner_ids(user)
    if ids is None:
        return qs
    if walk:
        visible = Customer.objects.filter(visible_customers_q(user)).values("pk")
        qs = qs.alias(_owner=NoIndex(F("owner_id")), _customer=NoIndex(F("customer_id")))
        return qs.filter(Q(_owner__in=ids) | Q(_customer__in=visible))
    return qs.filter(Q(owner_id__in=ids) | visible_customers_q(user, prefix="customer__"))


def customer_visible_qs(*, user: User) -> QuerySet[Customer]:
    qs = Customer.objects.all()
    q = visible_customers_q(user)
    return qs if q is None else qs.filter(q)


def customer_list(
    *,
    user: User,
    q: str = "",
    scope: str = "",
    status: str = "",
    industry: str = "",
    region: str = "",
    owner_id: int | None = None,
    grade: str = "",
    order: str = "-updated_at",
) -> QuerySet[Customer]:
    """Visible customers with search and filters; scope is mine / shared / team."""
    qs = customer_visible_qs(user=user).select_related("owner")
    if q:
        q = q.strip()
        cond = Q(name__icontains=q) | Q(name_normalized__contains=normalize_name(q))
        digits = normalize_phone(q)
        if len(digits) >= 4:
            cond |= Q(phone_normalized__contains=digits)
        if len(q) >= 6:
            cond |= Q(credit_code=normalize_credit_code(q))
        qs = qs.filter(cond)
    if scope == "mine":
        qs = qs.filter(owner=user)
    elif scope == "shared":
        qs = qs.filter(membership_q(user)).exclude(owner=user)
    elif scope == "team":
        ids = team_user_ids(user)
        qs = qs.exclude(owner=user) if ids is None else qs.filter(owner_id__in=ids)
    if status:
        qs = qs.filter(status=status)
    if industry:
        qs = qs.filter(industry=industry)
    if region:
        qs = qs.filter(region=region)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    if grade:
        # "none" selects the customers no rule graded (grade is blank).
        qs = qs.filter(grade="" if grade == "none" else grade)
    allowed = {"-updated_at", "updated_at", "name", "-name", "-created_at", "created_at", "-last_contact_at"}
    order = order if order in allowed else "-updated_at"
    return qs.order_by(order, "-id")


def customer_get(*, user: User, pk) -> Customer:
    try:
        return customer_visible_qs(user=user).select_related("owner", "owner__org_unit").get(pk=int(pk))
    except (Customer.DoesNotExist, ValueError, TypeError):
        raise NotFound("customer")


def customer_can_write(*, user: User, customer: Customer) -> bool:
    ids = visible_owner_ids(user)
    if ids is None or customer.owner_id in ids:
        return user.role not in User.CROSS_ROLES or customer.owner_id == user.pk
    return _active_memberships(user).filter(customer=customer, access=CustomerMember.Access.WRITE).exists()


def customer_can_transfer(*, user: User, customer: Customer) -> bool:
    if user.role in User.CROSS_ROLES:
        return False
    ids = visible_owner_ids(user)
    return ids is None or customer.owner_id in ids


def customer_can_manage_members(*, user: User, customer: Customer) -> bool:
    """Who may grant, change or end team membership: the owner and whoever could transfer the customer
    (the owner's managers by org unit or manager chain, company-wide roles) — not team members, even
    with write access, so access cannot be passed on sideways (docs/architecture.md, Decisions)."""
    return customer_can_transfer(user=user, customer=customer)


def contact_list(*, user: User, q: str = "", customer_id: int | None = None) -> QuerySet[Contact]:
    qs = Contact.objects.select_related("customer")
    cond = visible_customers_q(user, prefix="customer__")
    if cond is not None:
        qs = qs.filter(cond)
    if customer_id:
        qs = qs.filter(customer_id=customer_id)
    if q:
        digits = normalize_phone(q)
        c = Q(name__icontains=q) | Q(customer__name__icontains=q)
        if len(digits) >= 4:
            c |= Q(phone_normalized__contains=digits)
        qs = qs.filter(c)
    return qs.order_by("-id")


def contact_get(*, user: User, pk) -> Contact:
    try:
        return contact_list(user=user).get(pk=int(pk))
    except (Contact.DoesNotExist, ValueError, TypeError):
        raise NotFound("contact")


def duplicates_find(
    *, name: str = "", phone: str = "", credit_code: str = "", phones=(), exclude_id=None, user: User | None = None,
) -> list[dict]:
    """Duplicate candidates across all customers (leads included), whoever owns them.

    `phones` are the record's other numbers (its contacts' mobiles and landlines): every number,
    normalized, is compared with customers' phones and contacts' stored numbers, so a new contact
    whose landline equals an existing contact's mobile is a duplicate too. (A contact stores one
    number, its mobile or else its landline, in Contact.phone_normalized.)

    Returns only what a duplicate warning needs: the matched fields and the owner's display name,
    never contacts or notes. With `user`, a customer that user cannot see is masked (id and name
    None): the check answers by mobile or credit code, so otherwise it is a reverse lookup of other
    reps' customers (security review). Without `user` (internal callers) id and name are included.
    """
    cond = Q()
    norm = normalize_name(name) if name else ""
    numbers = sorted({d for p in (phone, *phones) if p and len(d := normalize_phone(p)) >= 7})
    code = normalize_credit_code(credit_code) if credit_code else ""
    if norm:
        cond |= Q(name_normalized=norm)
    if numbers:
        cond |= Q(phone_normalized__in=numbers) | Q(contacts__phone_normalized__in=numbers)
    if code:
        cond |= Q(credit_code=code)
    if not cond:
        return []
    qs = Customer.objects.filter(cond).select_related("owner").distinct()
    if exclude_id:
        qs = qs.exclude(pk=exclude_id)
    found = list(qs[:10])
    visible = {c.pk for c in found}
    if user is not None and found:
        visible = set(customer_visible_qs(user=user).filter(pk__in=visible).values_list("pk", flat=True))
    out = []
    for c in found:
        fields = []
        if norm and c.name_normalized == norm:
            fields.append("name")
        if code and c.credit_code == code:
            fields.append("credit_code")
        if numbers and (c.phone_normalized in numbers or not fields):
            fields.append("phone")
        shown = c.pk in visible
        out.append({"id": c.pk if shown else None, "name": c.name if shown else None, "owner": c.owner.label,
                    "matched": fields})
    return out
