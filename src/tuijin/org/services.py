"""Writes for the org tree, users, passwords and API tokens; each records a change-trail event.

Token and password policy (docs/security.md): a password change or a deactivation revokes every API token
of the user; token authentication never writes on a read except `last_used_at`, at most once an hour,
after the request's transaction and never failing the request.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import secrets
from contextlib import contextmanager

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import NotFound, ValidationFailed

from .models import ApiToken, OrgUnit, User
from .selectors import visibility_cache_clear

logger = logging.getLogger(__name__)

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
    validate_password: bool = True,
) -> User:
    """Create a login. The password must pass AUTH_PASSWORD_VALIDATORS (422 naming `password`);
    `validate_password=False` is for the demo's published shared password only (tuijin.demo)."""
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
    if validate_password:
        _validate_password(password, user)
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


def _validate_password(password: str, user: User) -> None:
    """Django's AUTH_PASSWORD_VALIDATORS (length, common passwords, similarity to the user's names)."""
    try:
        password_validation.validate_password(password or "", user)
    except DjangoValidationError as exc:
        raise ValidationFailed({"password": list(exc.messages)})


def _tokens_revoke_all(*, actor: User | None, user: User, reason: str) -> int:
    """Revoke every live token of `user` (inside the caller's transaction); one audit event for them."""
    now = timezone.now()
    live = ApiToken.objects.filter(user=user, revoked_at__isnull=True)
    ids = list(live.values_list("pk", flat=True))
    if ids:
        ApiToken.objects.filter(pk__in=ids).update(revoked_at=now)
        audit.record(actor=actor, obj=user, action="api_tokens_revoked",
                     changes={"api_tokens": [sorted(ids), []], "reason": [None, reason]})
    return len(ids)


@transaction.atomic
def user_password_change(*, actor: User, user: User, new_password: str, old_password: str | None = None) -> User:
    """Set a new password. Self-service passes `old_password` (checked); every API token of the user is revoked.

    The caller's own session stays valid only if the view calls update_session_auth_hash; other sessions end
    because Django ties sessions to the password hash.
    """
    if old_password is not None and not user.check_password(old_password):
        raise ValidationFailed({"old_password": _("原密码不正确")})
    _validate_password(new_password, user)
    user.set_password(new_password)
    user.save(update_fields=["password"])
    revoked = _tokens_revoke_all(actor=actor, user=user, reason="password_change")
    # The hash never enters the change trail; the event says only that the password changed.
    audit.record(actor=actor, obj=user, action="password_change", changes={"api_tokens_revoked": [None, revoked]})
    return user


@transaction.atomic
def user_deactivate(*, actor: User | None, user: User) -> User:
    """Deactivate a login: sessions and tokens stop working; the user's records stay."""
    before = audit.snapshot(user, ["is_active"])
    user.is_active = False
    user.save(update_fields=["is_active"])
    _tokens_revoke_all(actor=actor, user=user, reason="deactivation")
    visibility_cache_clear()
    audit.record(actor=actor, obj=user, action="update", changes=audit.diff(before, audit.snapshot(user, ["is_active"])))
    return user


def _hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@transaction.atomic
def api_token_issue(*, user: User, name: str = "") -> str:
    """Create a bearer token; the raw value is returned once and never stored."""
    return api_token_create(user=user, name=name)[0]


@transaction.atomic
def api_token_create(*, user: User, name: str = "") -> tuple[str, ApiToken]:
    """Like api_token_issue, also returning the row (its id is what the token list and revoke use)."""
    name = (name or "").strip()
    if len(name) > 100:
        raise ValidationFailed({"name": _("名称最多 100 个字符")})
    raw = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        key_hash=_hash_token(raw),
        name=name,
        expires_at=timezone.now() + dt.timedelta(days=settings.TUIJIN_API_TOKEN_DAYS),
    )
    audit.record(actor=user, obj=token, action="api_token_issued",
                 changes={"user": [None, user.pk], "name": [None, name], "expires_at": [None, token.expires_at]})
    return raw, token


@transaction.atomic
def api_token_revoke(*, actor: User, token_id: int) -> ApiToken:
    """Revoke one of the actor's own live tokens; anyone else's (or an unknown id) is NotFound."""
    token = (ApiToken.objects.select_for_update()
             .filter(pk=token_id, user=actor, revoked_at__isnull=True).first())
    if token is None:
        raise NotFound()
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit.record(actor=actor, obj=token, action="api_token_revoked",
                 changes={"revoked_at": [None, token.revoked_at]})
    return token


def api_token_user(raw: str) -> User | None:
    token = (
        ApiToken.objects.select_related("user", "user__org_unit")
        .filter(key_hash=_hash_token(raw), expires_at__gt=timezone.now(), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at >= TOKEN_TOUCH_INTERVAL:
        # After the surrounding transaction (if any) commits, never inside it: see _token_touch.
        transaction.on_commit(lambda: _token_touch(token.pk, now))
    return token.user


# `last_used_at` is informational (the token list shows it); an hour's precision is plenty and keeps reads
# free of writes: a read must not queue behind another request holding SQLite's write lock.
TOKEN_TOUCH_INTERVAL = dt.timedelta(hours=1)
# How long the touch may wait for SQLite's write lock before giving up (the read does not wait for it).
TOKEN_TOUCH_LOCK_WAIT_MS = 50


@contextmanager
def _short_lock_wait():
    """On SQLite, wait at most TOKEN_TOUCH_LOCK_WAIT_MS for the write lock instead of the busy timeout."""
    if connection.vendor != "sqlite":
        yield
        return
    connection.ensure_connection()
    with connection.cursor() as cur:
        cur.execute(f"PRAGMA busy_timeout = {int(TOKEN_TOUCH_LOCK_WAIT_MS)}")
    # Back to what the connection was opened with (settings: OPTIONS["timeout"]; sqlite3's default is 5 s).
    restore_ms = int(float(connection.settings_dict.get("OPTIONS", {}).get("timeout", 5)) * 1000)
    try:
        yield
    finally:
        with connection.cursor() as cur:
            cur.execute(f"PRAGMA busy_timeout = {restore_ms}")


def _token_touch(token_id: int, now) -> None:
    """Record a token's use; a busy database only costs the timestamp, never the request."""
    try:
        with _short_lock_wait():
            ApiToken.objects.filter(pk=token_id).exclude(last_used_at__gt=now - TOKEN_TOUCH_INTERVAL).update(
                last_used_at=now)
    except DatabaseError as exc:  # OperationalError "database is locked" and friends
        logger.warning("API token %s: last_used_at not recorded (%s)", token_id, exc)
