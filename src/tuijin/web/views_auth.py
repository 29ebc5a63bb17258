"""Login (throttled), logout (POST only), the self-service password change, and the language switch
that also remembers the user's choice."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

from tuijin.core.errors import ValidationFailed
from tuijin.org.auth import Throttled, authenticate_throttled
from tuijin.org.services import user_password_change, user_set_language


def _safe_next(request, value: str | None, default: str = "/") -> str:
    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return default


def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request, next_url))
    error, status, username = "", 200, ""
    if request.method == "POST":
        username = (request.POST.get("username") or "").strip()
        password = request.POST.get("password") or ""
        try:
            user = authenticate_throttled(request, username, password)
        except Throttled:
            user = None
            error, status = _("登录失败次数过多，请稍后再试"), 429
        else:
            if user is None:
                error, status = _("用户名或密码错误"), 200
        if user is not None:
            login(request, user)
            return redirect(_safe_next(request, next_url))
    return render(request, "registration/login.html",
                  {"error": error, "next": next_url, "username": username}, status=status)


@login_required
def password_change_view(request):
    """Old password, new password twice; the validators' messages are shown per field. Revokes API tokens."""
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        new = request.POST.get("new_password") or ""
        if new != (request.POST.get("new_password2") or ""):
            errors["new_password2"] = [_("两次输入的新密码不一致")]
        else:
            try:
                user_password_change(actor=request.user, user=request.user,
                                     old_password=request.POST.get("old_password") or "", new_password=new)
            except ValidationFailed as exc:
                errors = {("new_password" if k == "password" else k): v for k, v in exc.errors.items()}
            else:
                update_session_auth_hash(request, request.user)  # this session stays; others end
                messages.success(request, _("密码已修改；所有 API 令牌已吊销"))
                return redirect("password_change")
    return render(request, "registration/password_change.html", {"errors": errors},
                  status=422 if errors else 200)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("login")


@require_POST
def language_view(request):
    """Remember the choice on the user (it follows them to other devices), then let Django set the cookie."""
    language = request.POST.get("language", "")
    if request.user.is_authenticated:
        try:
            user_set_language(actor=request.user, language=language)
        except ValidationFailed:
            pass  # set_language below ignores unknown codes too
    return set_language(request)
