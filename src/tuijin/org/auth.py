"""Authentication with throttling, shared by the login page and the token endpoint."""

from __future__ import annotations

from django.contrib.auth import authenticate

from . import services
from .models import User


class Throttled(Exception):
    pass


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def authenticate_throttled(request, username: str, password: str) -> User | None:
    ip = client_ip(request)
    if services.login_is_throttled(username=username, ip=ip):
        raise Throttled()
    user = authenticate(request, username=username, password=password)
    if user is None:
        services.login_failure_record(username=username, ip=ip)
        return None
    services.login_failures_clear(username=username, ip=ip)
    return user
