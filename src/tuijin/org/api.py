"""API: token login and the current user."""

from __future__ import annotations

from ninja import Router, Schema
from ninja.errors import HttpError

from .auth import Throttled, authenticate_throttled
from .selectors import user_list
from .services import api_token_issue

router = Router(tags=["auth"])


class TokenIn(Schema):
    username: str
    password: str


class TokenOut(Schema):
    token: str


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
    return {"token": api_token_issue(user=user)}


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
