"""Authentication with throttling, shared by the login page and the token endpoint.

The client address behind a reverse proxy: `client_ip` trusts the forwarding header
(settings.TUIJIN_CLIENT_IP_HEADER, X-Forwarded-For by default) only when the direct peer is one of
settings.TUIJIN_TRUSTED_PROXIES, and then takes the right-most address that is not itself a trusted
proxy (the left part of the header is whatever the client chose to send).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.contrib.auth import authenticate

from . import throttle
from .models import User


class Throttled(Exception):
    pass


@lru_cache(maxsize=8)
def _trusted_networks(spec: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(s, strict=False) for s in spec)


def _parse(value: str):
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def _is_trusted(addr) -> bool:
    nets = _trusted_networks(tuple(settings.TUIJIN_TRUSTED_PROXIES))
    return addr is not None and any(addr in net for net in nets)


def client_ip(request) -> str:
    peer_raw = request.META.get("REMOTE_ADDR", "")
    peer = _parse(peer_raw)
    if not _is_trusted(peer):
        return peer_raw
    header = "HTTP_" + settings.TUIJIN_CLIENT_IP_HEADER.upper().replace("-", "_")
    hops = [h for h in request.META.get(header, "").split(",") if h.strip()]
    client = peer
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            break  # a garbled entry: stop at the last address a trusted proxy vouched for
        client = addr
        if not _is_trusted(addr):
            break
    return str(client)


def authenticate_throttled(request, username: str, password: str) -> User | None:
    ip = client_ip(request)
    if not throttle.attempt_reserve(username=username, ip=ip):
        raise Throttled()
    user = authenticate(request, username=username, password=password)
    if user is None:
        throttle.attempt_failed(username=username, ip=ip)
        return None
    throttle.attempt_succeeded(username=username, ip=ip)
    return user
