"""Writes for the org tree, users and API tokens; each records a change-trail event."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import ValidationFailed

from .models import ApiToken, LoginFailure, OrgUnit, User
from .selectors import visibility_cache_clear

_KIND_ORDER = [OrgUnit.Kind.COMPANY, OrgUnit.Kind.REGION, OrgUnit.Kind.CITY, OrgUnit.Kind.TEAM]


@transaction.atomic
def orgunit_create(*, actor: User | None, name: str, kind: str, parent: OrgUnit | None = None) -> OrgUnit:
    errors = {}
    if not name or not name.strip():
        errors["name"] = _("名称不能为空")
    if kind not in OrgUnit.Kind.values:
        errors["kind"] = _("未知的层级")
    elif parent is None and kind != OrgUnit.Kind.COMPANY:
        errors["parent"] = _("只有公司可以没有上级")
    elif parent is not None and _KIND_ORDER.index(kind) <= _KIND_ORDER.index(parent.kind):
        errors["kind"] = _("下级层级必须低于上级")
    if errors:
        raise ValidationFailed(errors)
    unit = OrgUnit.objects.create(name=name.strip(), kind=kind, parent=parent)
    unit.path = f"{parent.path if parent else '/'}{unit.pk}/"
    unit.depth = (parent.depth + 1) if parent else 0
    unit.save(update_fields=["path", "depth"])
    visibility_cache_clear()
    audit.record(actor=actor, obj=unit, action="create", changes=audit.diff({}, audit.snapshot(unit, ["name", "kind", "parent"])))
    return unit


USER_FIELDS = ["username", "display_name", "role", "org_unit", "manager", "email", "phone", "is_active"]


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    role: str,
    display_name: str = "",
    org_unit: OrgUnit | None = None,
    manager: User | None = None,
    email: str = "",
    phone: str = "",
) -> User:
    errors = {}
    if not username:
        errors["username"] = _("用户名不能为空")
    elif User.objects.filter(username=username).exists():
        errors["username"] = _("用户名已存在")
    if role not in User.Role.values:
        errors["role"] = _("未知的角色")
    if errors:
        raise ValidationFailed(errors)
    user = User(
        username=username,
        role=role,
        display_name=display_name,
        org_unit=org_unit,
        manager=manager,
        email=email,
        phone=phone,
        is_staff=role == User.Role.ADMIN,
        is_superuser=role == User.Role.ADMIN,
    )
    user.set_password(password)
    user.save()
    visibility_cache_clear()
    audit.record(actor=actor, obj=user, action="create", changes=audit.diff({}, audit.snapshot(user, USER_FIELDS)))
    return user


@transaction.atomic
def user_set_language(*, actor: User, language: str) -> User:
    valid = {code for code, _name in settings.LANGUAGES}
    if language not in valid:
        raise ValidationFailed({"language": _("不支持的语言")})
    before = audit.snapshot(actor, ["language"])
    actor.language = language
    actor.save(update_fields=["language"])
    audit.record(actor=actor, obj=actor, action="update", changes=audit.diff(before, audit.snapshot(actor, ["language"])))
    return actor


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user: User) -> str:
    """Create a bearer token; the raw value is returned once and never stored."""
    raw = secrets.token_urlsafe(32)
    ApiToken.objects.create(
        user=user,
        key_hash=_hash_token(raw),
        expires_at=timezone.now() + dt.timedelta(days=settings.TUIJIN_API_TOKEN_DAYS),
    )
    audit.record(actor=user, obj=user, action="api_token_issued", changes={})
    return raw


def api_token_user(raw: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user", "user__org_unit")
        .filter(key_hash=_hash_token(raw), expires_at__gt=timezone.now())
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    # Touch at most once a minute to keep reads cheap.
    if token.last_used_at is None or now - token.last_used_at > dt.timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def login_is_throttled(*, username: str, ip: str) -> bool:
    since = timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    return (
        LoginFailure.objects.filter(username=username.lower(), ip=ip, at__gte=since).count()
        >= settings.LOGIN_MAX_FAILURES
    )


def login_failure_record(*, username: str, ip: str) -> None:
    LoginFailure.objects.create(username=username.lower()[:150], ip=ip[:64])


def login_failures_clear(*, username: str, ip: str) -> None:
    LoginFailure.objects.filter(username=username.lower(), ip=ip).delete()
