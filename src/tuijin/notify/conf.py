"""Delivery settings of tuijin.notify, read at call time so tests and deployments can change them.

Each value comes from Django settings when set there, else from the environment,
else the default below (documented in docs/notifications.md).
"""

from __future__ import annotations

import os

from django.conf import settings

DEFAULTS = {
    # Attempts before a message is given up as failed (an admin can still retry it by hand).
    "TUIJIN_NOTIFY_MAX_ATTEMPTS": 8,
    # Backoff after the n-th failed attempt: base * 2**(n-1) seconds, capped.
    "TUIJIN_NOTIFY_BACKOFF_SECONDS": 30,
    "TUIJIN_NOTIFY_BACKOFF_MAX_SECONDS": 3600,
    # How long a worker owns a claimed row; must exceed the HTTP timeout by a wide margin.
    "TUIJIN_NOTIFY_LEASE_SECONDS": 120,
    "TUIJIN_NOTIFY_HTTP_TIMEOUT": 10,
    # Rows claimed per sweep; the sweep runs again at once while a full batch was due.
    "TUIJIN_NOTIFY_BATCH": 50,
}


def _value(name: str):
    if hasattr(settings, name):
        return getattr(settings, name)
    return os.environ.get(name, DEFAULTS.get(name))


def int_setting(name: str) -> int:
    try:
        return int(_value(name))
    except (TypeError, ValueError):
        return int(DEFAULTS[name])


def max_attempts() -> int:
    return max(int_setting("TUIJIN_NOTIFY_MAX_ATTEMPTS"), 1)


def lease_seconds() -> int:
    return max(int_setting("TUIJIN_NOTIFY_LEASE_SECONDS"), 1)


def http_timeout() -> float:
    return float(int_setting("TUIJIN_NOTIFY_HTTP_TIMEOUT"))


def batch_size() -> int:
    return max(int_setting("TUIJIN_NOTIFY_BATCH"), 1)


def backoff_seconds(attempts: int) -> int:
    """Wait after the `attempts`-th failure: 30 s, 60 s, 2 min, 4 min, ... capped at an hour."""
    base = int_setting("TUIJIN_NOTIFY_BACKOFF_SECONDS")
    cap = int_setting("TUIJIN_NOTIFY_BACKOFF_MAX_SECONDS")
    return int(min(base * (2 ** max(attempts - 1, 0)), cap))


def base_url() -> str:
    """Where links in e-mails and robot messages point (the app's public address)."""
    return str(_value("TUIJIN_BASE_URL") or "http://127.0.0.1:8000").rstrip("/")


DEFAULT_ROBOT_HOSTS = ["qyapi.weixin.qq.com", "oapi.dingtalk.com", "open.feishu.cn", "open.larksuite.com"]


def robot_allowed_hosts() -> list[str]:
    value = _value("TUIJIN_ROBOT_ALLOWED_HOSTS")
    if value is None:
        return list(DEFAULT_ROBOT_HOSTS)
    if isinstance(value, str):
        value = value.split(",")
    return [str(h).strip() for h in value if str(h).strip()]


def webhook_allowed(url: str) -> bool:
    """Whether a robot webhook URL points at an allowed platform host (https unless listed as http://HOST).

    An entry is "HOST" (https, any port) or "SCHEME://HOST[:PORT]". Credentials in the URL
    ("https://qyapi.weixin.qq.com@evil/") are refused: the real host would be the part after "@".
    """
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError:
        return False
    if not host or parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return False
    for entry in robot_allowed_hosts():
        if "://" in entry:
            allowed = urllib.parse.urlsplit(entry)
            scheme, a_host, a_port = allowed.scheme.lower(), (allowed.hostname or "").lower(), allowed.port
        else:
            scheme, a_host, a_port = "https", entry.lower(), None
        if parts.scheme.lower() == scheme and host == a_host and (a_port is None or a_port == port):
            return True
    return False


def scheduler_lease_seconds() -> int:
    return max(int(_value("TUIJIN_SCHEDULER_LEASE_SECONDS") or 45), 2)
