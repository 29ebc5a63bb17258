"""Writes for customers, contacts and team members; one transaction and one audit event each."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.db.models import F
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.limits import MAX_ITEMS, TAG_MAX_LENGTH, length_errors
from tuijin.org.models import User
from tuijin.org.selectors import visible_owner_ids

from .models import Contact, Customer, CustomerMember
from .normalize import credit_code_is_valid, normalize_credit_code, normalize_name, normalize_phone
from .selectors import customer_can_manage_members, customer_can_write, duplicates_find

CUSTOMER_FIELDS = [
    "name", "credit_code", "industry", "size_band", "region", "city", "source", "tags",
    "status", "phone", "address", "notes",
]
CUSTOMER_AUDIT_FIELDS = [*CUSTOMER_FIELDS, "owner"]
CONTACT_FIELDS = [
    "name", "title", "decision_role", "style_tags", "mobile", "phone", "email", "wechat", "qq", "is_primary",
]


class DuplicateFound(ValidationFailed):
    def __init__(self, matches: list[dict]):
        self.matches = matches
        errors = {}
        for m in matches:
            for f in m["matched"]:
                # A customer the actor cannot see is named by its owner only (duplicates_find masks it).
                errors.setdefault(f, []).append(
                    _("与已有客户“%(name)s”（负责人：%(owner)s）重复") % {"name": m["name"], "owner": m["owner"]}
                    if m["name"] is not None else
                    _("与负责人%(owner)s的已有客户重复") % {"owner": m["owner"]}
                )
        super().__init__(errors or {"name": _("重复客户")})


def _clean_tags(value, field: str, errors: dict) -> list[str]:
    if value in (None, ""):
        return []
    if isinstance(value, str):
        value = [t for t in (x.strip() for x in value.replace("，", ",").split(",")) if t]
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        errors[field] = _("必须是文字列表")
        return []
    tags = [t.strip() for t in value if t.strip()]
    if len(tags) > MAX_ITEMS["tags"]:
        errors[field] = _("最多%(n)s个标签") % {"n": MAX_ITEMS["tags"]}
    elif any(len(t) > TAG_MAX_LENGTH for t in tags):
        errors[field] = _("每个标签最多%(n)s字") % {"n": TAG_MAX_LENGTH}
    return tags


def validate_customer_data(data: dict, *, partial: bool = False) -> dict:
    """Clean the customer fields present in `data`; raise ValidationFailed naming each bad field."""
    errors: dict[str, str] = {}
    clean = {}
    for key, value in data.items():
        if key not in CUSTOMER_FIELDS:
            continue
        if key == "tags":
            clean[key] = _clean_tags(value, key, errors)
            continue
        value = "" if value is None else str(value).strip()
        clean[key] = value
    if not partial or "name" in clean:
        if not clean.get("name"):
            errors["name"] = _("客户名称不能为空")
    if clean.get("credit_code"):
        clean["credit_code"] = normalize_credit_code(clean["credit_code"])
        if not credit_code_is_valid(clean["credit_code"]):
            errors["credit_code"] = _("统一社会信用代码格式或校验位不正确")
    for key, choices in (
        ("status", Customer.Status.values),
        ("size_band", Customer.Size.values),
        ("source", Customer.Source.values),
    ):
        if clean.get(key) and clean[key] not in choices:
            errors[key] = _("无效的取值：%(value)s（可选：%(choices)s）") % {
                "value": clean[key], "choices": ", ".join(choices)
            }
    if clean.get("phone") and len(normalize_phone(clean["phone"])) < 7:
        errors["phone"] = _("电话号码至少7位数字")
    length_errors(Customer, clean, errors)  # the columns' max_length is the one rule for every path
    if errors:
        raise ValidationFailed(errors)
    return clean


def _can_create(actor: User) -> bool:
    return actor.is_superuser or actor.role in User.SALES_ROLES or actor.role == User.Role.ADMIN


def owner_check(*, actor: User, owner: User, field: str = "owner") -> None:
    """The owner must be active and one the actor may assign: someone in their visible owners
    (self, a manager's team) unless the actor sees everyone. Pages, API and import all pass here."""
    if not owner.is_active:
        raise ValidationFailed({field: _("负责人已停用")})
    ids = visible_owner_ids(actor)
    if ids is not None and owner.pk not in ids:
        raise ValidationFailed({field: _("不可选择该负责人：只能指定你自己或你团队中的人员")})


@transaction.atomic
def customer_create(
    *, actor: User, owner: User | None = None, allow_duplicate: bool = False, contacts: list[dict] | None = None,
    **data,
) -> Customer:
    if not _can_create(actor):
        raise Forbidden(_("你的角色不能创建客户"))
    clean = validate_customer_data(data)
    owner = owner or actor
    owner_check(actor=actor, owner=owner)
    if not allow_duplicate:
        matches = duplicates_find(
            name=clean["name"], phone=clean.get("phone", ""), credit_code=clean.get("credit_code", ""),
            phones=[str(c.get(k) or "") for c in contacts or [] for k in ("mobile", "phone")], user=actor,
        )
        if matches:
            raise DuplicateFound(matches)
    customer = Customer(owner=owner, **clean)
    _denormalize(customer)
    customer.save()
    audit.record(
        actor=actor, obj=customer, action="create",
        changes=audit.diff({}, audit.snapshot(customer, CUSTOMER_AUDIT_FIELDS)),
    )
    for i, c in enumerate(contacts or []):
        try:
            _contact_create(actor=actor, customer=customer, data=c)
        except ValidationFailed as exc:
            raise ValidationFailed({f"contacts[{i}].{k}": v for k, v in exc.errors.items()})
    _regrade(actor, customer.pk)
    return customer


def _regrade(actor: User, customer_id: int) -> None:
    """Grades depend on customer fields (SPEC G3): re-grade inside the same transaction."""
    from .grading_services import grade_recompute_for

    grade_recompute_for(actor=actor, customer_ids=[customer_id])


def _denormalize(customer: Customer) -> None:
    customer.name_normalized = normalize_name(customer.name)
    customer.phone_normalized = normalize_phone(customer.phone)


def _denormalize_contact(contact: Contact) -> None:
    # One stored number per contact for search and the duplicate check: the mobile, else the landline.
    contact.phone_normalized = normalize_phone(contact.mobile or contact.phone)


def _lock_version(model, pk, version: int | None):
    """Lock the row first, then compare versions: of two writers holding the same version exactly one wins."""
    current = model.objects.select_for_update().get(pk=pk)
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    return current


def _save_version(*, actor: User, current, changes: dict) -> None:
    """Save a changed versioned row with the version bumped in SQL, and record its update event."""
    current.version = F("version") + 1
    current.save()
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="update", changes=changes)


@transaction.atomic
def customer_update(*, actor: User, customer: Customer, version: int | None = None, **data) -> Customer:
    if not customer_can_write(user=actor, customer=customer):
        raise Forbidden(_("你对该客户只有只读权限"))
    clean = validate_customer_data(data, partial=True)
    current = _lock_version(Customer, customer.pk, version)
    if "name" in clean or "phone" in clean or "credit_code" in clean:
        matches = duplicates_find(
            name=clean.get("name", ""), phone=clean.get("phone", ""),
            credit_code=clean.get("credit_code", ""), exclude_id=current.pk, user=actor,
        )
        if matches:
            raise DuplicateFound(matches)
    before = audit.snapshot(current, CUSTOMER_AUDIT_FIELDS)
    for k, v in clean.items():
        setattr(current, k, v)
    _denormalize(current)
    changes = audit.diff(before, audit.snapshot(current, CUSTOMER_AUDIT_FIELDS))
    if not changes:
        return current
    _save_version(actor=actor, current=current, changes=changes)
    _regrade(actor, current.pk)
    current.refresh_from_db(fields=["grade", "grade_reasons"])
    return current


def validate_contact_data(data: dict, *, partial: bool = False) -> dict:
    errors: dict[str, str] = {}
    clean = {}
    for key, value in data.items():
        if key not in CONTACT_FIELDS:
            continue
        if key == "style_tags":
            clean[key] = _clean_tags(value, key, errors)
        elif key == "is_primary":
            clean[key] = bool(value) and str(value).lower() not in {"0", "false", "否", "no"}
        else:
            clean[key] = "" if value is None else str(value).strip()
    if not partial or "name" in clean:
        if not clean.get("name"):
            errors["name"] = _("联系人姓名不能为空")
    if clean.get("decision_role") and clean["decision_role"] not in Contact.DecisionRole.values:
        errors["decision_role"] = _("无效的决策角色：%(value)s") % {"value": clean["decision_role"]}
    for key in ("mobile", "phone"):
        if clean.get(key) and len(normalize_phone(clean[key])) < 7:
            errors[key] = _("电话号码至少7位数字")
    if clean.get("mobile"):
        digits = normalize_phone(clean["mobile"])
        if not (len(digits) == 11 and digits.startswith("1")):
            errors["mobile"] = _("手机号应为以1开头的11位数字")
    if clean.get("email") and ("@" not in clean["email"] or len(clean["email"]) > 254):
        errors["email"] = _("邮箱格式不正确")
    if clean.get("qq") and not clean["qq"].isdigit():
        errors["qq"] = _("QQ号只能是数字")
    length_errors(Contact, clean, errors)
    if errors:
        raise ValidationFailed(errors)
    return clean


def _contact_create(*, actor: User, customer: Customer, data: dict) -> Contact:
    clean = validate_contact_data(data)
    contact = Contact(customer=customer, **clean)
    _denormalize_contact(contact)
    contact.save()
    audit.record(
        actor=actor, obj=contact, action="create",
        changes=audit.diff({}, {**audit.snapshot(contact, CONTACT_FIELDS), "customer": customer.pk}),
    )
    return contact


@transaction.atomic
def contact_create(*, actor: User, customer: Customer, **data) -> Contact:
    if not customer_can_write(user=actor, customer=customer):
        raise Forbidden(_("你对该客户只有只读权限"))
    return _contact_create(actor=actor, customer=customer, data=data)


@transaction.atomic
def contact_update(*, actor: User, contact: Contact, version: int | None = None, **data) -> Contact:
    if not customer_can_write(user=actor, customer=contact.customer):
        raise Forbidden(_("你对该客户只有只读权限"))
    clean = validate_contact_data(data, partial=True)
    current = _lock_version(Contact, contact.pk, version)
    before = audit.snapshot(current, CONTACT_FIELDS)
    for k, v in clean.items():
        setattr(current, k, v)
    _denormalize_contact(current)
    changes = audit.diff(before, audit.snapshot(current, CONTACT_FIELDS))
    if not changes:
        return current
    _save_version(actor=actor, current=current, changes=changes)
    return current


@transaction.atomic
def customer_member_set(
    *, actor: User, customer: Customer, user: User, access: str = "read", until: dt.date | None = None
) -> CustomerMember:
    """Add or change a team member (团队成员) on a customer; only the owner and their managers may."""
    if not customer_can_manage_members(user=actor, customer=customer):
        raise Forbidden(_("只有负责人及其上级可以管理团队成员"))
    if access not in CustomerMember.Access.values:
        raise ValidationFailed({"access": _("权限只能是 read 或 write")})
    if user.pk == customer.owner_id:
        raise ValidationFailed({"user": _("负责人无需添加为团队成员")})
    member, created = CustomerMember.objects.get_or_create(customer=customer, user=user, defaults={"access": access})
    before = {} if created else {"access": member.access, "until": audit.to_jsonable(member.until)}
    member.access, member.until = access, until
    member.save()
    audit.record(
        actor=actor, obj=customer, action="member_add" if created else "member_update",
        changes=audit.diff(before, {"access": access, "until": audit.to_jsonable(until), "user": user.pk}),
    )
    return member


@transaction.atomic
def customer_member_remove(*, actor: User, customer: Customer, user: User) -> None:
    if not customer_can_manage_members(user=actor, customer=customer):
        raise Forbidden(_("只有负责人及其上级可以管理团队成员"))
    deleted, _n = CustomerMember.objects.filter(customer=customer, user=user).delete()
    if not deleted:
        raise ValidationFailed({"user": _("该用户不是团队成员")})
    audit.record(actor=actor, obj=customer, action="member_remove", changes={"user": [user.pk, None]})
