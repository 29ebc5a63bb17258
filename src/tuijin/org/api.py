"""API: token login, the caller's tokens (list, revoke), password change, and the current user."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth import update_session_auth_hash
from ninja import Router, Schema, Status
from ninja.errors import HttpError

from tuijin.core.limits import short, text

from .auth import Throttled, authenticate_throttled
from .models import ApiToken, User
from .selectors import api_token_list, user_list
from .services import api_token_create, api_token_revoke, user_password_change

router = Router(tags=["auth"])


# Long enough for any password manager's output; hashing a megabyte per try would be a cheap DoS.
PASSWORD_MAX_LENGTH = 1024


class TokenIn(Schema):
    username: text(User, "username")
    password: short(PASSWORD_MAX_LENGTH)
    name: text(ApiToken, "name") = ""  # a label for the token list ("laptop script", "BI export")


class TokenOut(Schema):
    token: str
    id: int
    expires_at: dt.datetime


class TokenInfoOut(Schema):
    """A token as listed: never its secret (only a hash is stored anyway)."""

    id: int
    name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None = None
    expires_at: dt.datetime


class PasswordIn(Schema):
    old_password: short(PASSWORD_MAX_LENGTH)
    new_password: short(PASSWORD_MAX_LENGTH)


class OrgUnitOut(Schema):
    id: int
    name: str
    kind: str


class MeOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    org_unit: OrgUnitOut | None = None
    manager_id: int | None = None
    language: str


class UserOut(Schema):
    id: int
    username: str
    display_name: str
    role: str
    org_unit_id: int | None = None
    manager_id: int | None = None


@router.post("/auth/token", auth=None, response={200: TokenOut, 401: dict, 429: dict})
def token(request, payload: TokenIn):
    try:
        user = authenticate_throttled(request, payload.username, payload.password)
    except Throttled:
        raise HttpError(429, "登录失败次数过多，请稍后再试 / too many failed logins; try later")
    if user is None:
        raise HttpError(401, "用户名或密码错误 / wrong username or password")
    raw, row = api_token_create(user=user, name=payload.name)
    return {"token": raw, "id": row.pk, "expires_at": row.expires_at}


@router.get("/auth/tokens", response=list[TokenInfoOut])
def tokens(request):
    """The caller's live (unrevoked, unexpired) tokens, newest first."""
    return list(api_token_list(user=request.user))


@router.delete("/auth/tokens/{token_id}", response={204: None})
def token_revoke(request, token_id: int):
    """Revoke one of the caller's tokens (also the one in use); another user's token is 404."""
    api_token_revoke(actor=request.user, token_id=token_id)
    return Status(204, None)


@router.post("/auth/password", response={204: None})
def password_change(request, payload: PasswordIn):
    """Change the caller's password; every API token of the caller is revoked (sign in again for a new one)."""
    user_password_change(actor=request.user, user=request.user, old_password=payload.old_password,
                         new_password=payload.new_password)
    if getattr(request, "session", None) is not None and request.session.session_key:
        update_session_auth_hash(request, request.user)  # a browser session stays signed in
    return Status(204, None)


@router.get("/me", response=MeOut)
def me(request):
    u = request.user
    return {
        "id": u.pk, "username": u.username, "display_name": u.label, "role": u.role,
        "org_unit": u.org_unit, "manager_id": u.manager_id, "language": u.language or "",
    }


@router.get("/users", response=list[UserOut], tags=["org"])
def users(request):
    """Users whose records the caller can see (for owner pickers and filters)."""
    return [
        {"id": u.pk, "username": u.username, "display_name": u.label, "role": u.role,
         "org_unit_id": u.org_unit_id, "manager_id": u.manager_id}
        for u in user_list(user=request.user)
    ]
