"""Login throttling: atomic attempt counters per (username, address), per address and per username.

Policy (docs/security.md, modelled on OWASP's authentication and credential-stuffing guidance):

- (username, address) pair: LOGIN_MAX_FAILURES (5) unsuccessful tries within the window lock that pair,
  also for the right password. The owner elsewhere is not locked out by someone guessing at their name.
- address: LOGIN_MAX_FAILURES_PER_IP (10) unsuccessful tries within the window, over any usernames, lock
  the address for every username (password spraying: one password over many names).
- username: after LOGIN_MAX_FAILURES_PER_USERNAME (20) unsuccessful tries from anywhere within the window
  the username is "under attack": every address that has failed on it at least once is locked for it, while
  an address that never failed on it (the owner at the office, on the phone) may still sign in.
- An IPv6 client counts per /64 (one host can hold a whole /64); the address is the real client's, taken
  from settings.TUIJIN_CLIENT_IP_HEADER only when the direct peer is in TUIJIN_TRUSTED_PROXIES (org.auth).

Windows are fixed: a counter starts at its first unsuccessful try and is void LOGIN_FAILURE_WINDOW_SECONDS
later. A try is counted *before* the password is checked (a reservation, under a row lock), so N parallel
tries cannot all pass a "fewer than 5 so far?" check: exactly the limit is evaluated. A success gives the
reservation back and clears its pair. A refused (throttled) try is not evaluated and not counted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from .models import LoginThrottle

logger = logging.getLogger("tuijin.security")


@dataclass(frozen=True)
class Keys:
    pair: str
    ip: str
    user: str

    def all(self) -> list[str]:
        return sorted([self.pair, self.ip, self.user])  # one lock order everywhere: no deadlocks


def address_key(ip: str) -> str:
    """The address as counted: IPv4 as is, IPv6 by its /64 network."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if addr.version == 6:
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.ip_network(f"{addr}/64", strict=False))
    return str(addr)


def keys_for(*, username: str, ip: str) -> Keys:
    name, addr = username.strip().lower()[:150], address_key(ip)
    return Keys(pair=f"pair:{name}|{addr}", ip=f"ip:{addr}", user=f"user:{name}")


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def attempt_reserve(*, username: str, ip: str) -> bool:
    """Count one try before its password is checked; False (nothing counted) when the try is throttled."""
    keys, now = keys_for(username=username, ip=ip), timezone.now()
    with transaction.atomic():
        LoginThrottle.objects.bulk_create(
            [LoginThrottle(key=k, count=0, window_start=now) for k in keys.all()], ignore_conflicts=True)
        rows = {r.key: r for r in LoginThrottle.objects.select_for_update().filter(key__in=keys.all()).order_by("key")}
        counts = {}
        for key, row in rows.items():
            counts[key] = 0 if now - row.window_start >= _window() else row.count
        pair, ip_count, user = counts[keys.pair], counts[keys.ip], counts[keys.user]
        if (pair >= settings.LOGIN_MAX_FAILURES or ip_count >= settings.LOGIN_MAX_FAILURES_PER_IP
                or (user >= settings.LOGIN_MAX_FAILURES_PER_USERNAME and pair > 0)):
            logger.warning("login throttled: username=%r ip=%s (pair %d, address %d, username %d)",
                           username[:150], ip, pair, ip_count, user)
            return False
        for key, row in rows.items():
            if counts[key] == 0:  # a fresh or expired counter starts its window now
                row.count, row.window_start = 1, now
                row.save(update_fields=["count", "window_start"])
            else:
                LoginThrottle.objects.filter(pk=row.pk).update(count=F("count") + 1)
    return True


def attempt_succeeded(*, username: str, ip: str) -> None:
    """Give back the reservation of a successful try and clear its pair's failures."""
    keys = keys_for(username=username, ip=ip)
    with transaction.atomic():
        LoginThrottle.objects.filter(key=keys.pair).update(count=0)
        LoginThrottle.objects.filter(key__in=[keys.ip, keys.user], count__gt=0).update(count=F("count") - 1)


def attempt_failed(*, username: str, ip: str) -> None:
    """The reservation stays as the failure; only leave a trace for whoever reads the security log."""
    logger.info("login failed: username=%r ip=%s", username[:150], ip)


def throttle_purge() -> int:
    """Delete counters whose window has passed (they count as zero anyway)."""
    deleted, _ = LoginThrottle.objects.filter(window_start__lt=timezone.now() - _window()).delete()
    return deleted
