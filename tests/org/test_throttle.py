"""Login throttling (org.throttle, org.auth.client_ip): per address+username, per address, per username
under attack; the real client address behind a trusted proxy; exactly the limit evaluated in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client, RequestFactory, override_settings

from tests.conftest import PASSWORD
from tuijin.org import auth as auth_module
from tuijin.org.auth import client_ip
from tuijin.org.models import LoginThrottle, User
from tuijin.org.throttle import throttle_purge

REPO = Path(__file__).resolve().parents[2]
JSON = "application/json"
ATTACKER, OWNER = "203.0.113.66", "198.51.100.7"


def api_login(username, password, ip, **extra):
    return Client().post("/api/auth/token", {"username": username, "password": password}, content_type=JSON,
                         REMOTE_ADDR=ip, **extra)


def page_login(username, password, ip, **extra):
    return Client().post("/login/", {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_spraying_one_password_over_many_usernames_from_one_address_is_throttled(org):
    names = [*org.users][:10] + [f"nobody{i}" for i in range(10)]  # real and unknown names alike
    statuses = [api_login(name, "Spring2026!", ATTACKER).status_code for name in names]
    assert statuses == [401] * 10 + [429] * 10  # LOGIN_MAX_FAILURES_PER_IP evaluated, then refused
    # Refused means not evaluated, even for a right password; the page says so too.
    assert api_login("rep.east2", PASSWORD, ATTACKER).json()["detail"].startswith("登录失败次数过多")
    page = page_login("rep.east2", PASSWORD, ATTACKER)
    assert page.status_code == 429 and "登录失败次数过多" in page.content.decode()
    # Another address is not affected.
    assert api_login("rep.east2", PASSWORD, OWNER).status_code == 200


def test_owner_signs_in_from_a_clean_address_while_the_attackers_is_locked(org):
    for _ in range(5):
        assert api_login("rep.east1", "guess", ATTACKER).status_code == 401
    assert api_login("rep.east1", PASSWORD, ATTACKER).status_code == 429
    assert page_login("rep.east1", PASSWORD, ATTACKER).status_code == 429
    assert api_login("rep.east1", PASSWORD, OWNER).status_code == 200
    page = page_login("rep.east1", PASSWORD, OWNER)
    assert page.status_code == 302


def test_a_username_under_attack_from_many_addresses_locks_only_addresses_that_failed(org, settings):
    limit = settings.LOGIN_MAX_FAILURES_PER_USERNAME
    botnet = [f"192.0.2.{i}" for i in range(1, limit + 1)]
    for ip in botnet:  # one guess each: no pair and no address reaches its own limit
        assert api_login("rep.east1", "guess", ip).status_code == 401
    # Now any address that failed on this name is refused, even with the right password...
    assert api_login("rep.east1", PASSWORD, botnet[0]).status_code == 429
    assert api_login("rep.east1", "another guess", botnet[1]).status_code == 429
    # ...while an address that never failed on it still signs in, and other names are untouched.
    assert api_login("rep.east1", PASSWORD, OWNER).status_code == 200
    assert api_login("rep.east2", PASSWORD, botnet[0]).status_code == 200


def test_a_success_gives_back_its_reservation(org):
    # 4 failures + a success, twice, from one address: the success counts for neither the pair nor the address.
    for _ in range(2):
        for _ in range(4):
            assert api_login("rep.east1", "bad", OWNER).status_code == 401
        assert api_login("rep.east1", PASSWORD, OWNER).status_code == 200
    counts = dict(LoginThrottle.objects.values_list("key", "count"))
    assert counts[f"pair:rep.east1|{OWNER}"] == 0
    assert counts[f"ip:{OWNER}"] == 8 and counts["user:rep.east1"] == 8


def test_ipv6_counts_per_64(org):
    for i in range(5):  # one host rotating through its /64
        assert api_login("rep.east1", "bad", f"2001:db8:1:2::{i + 1:x}").status_code == 401
    assert api_login("rep.east1", PASSWORD, "2001:db8:1:2::ffff").status_code == 429
    assert api_login("rep.east1", PASSWORD, "2001:db8:1:3::1").status_code == 200


def test_expired_counters_count_as_zero_and_are_purged(org, settings):
    for _ in range(5):
        api_login("rep.east1", "bad", ATTACKER)
    assert api_login("rep.east1", PASSWORD, ATTACKER).status_code == 429
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 0  # every window has passed
    assert throttle_purge() >= 3
    assert api_login("rep.east1", PASSWORD, ATTACKER).status_code == 200


# --- the client address behind a reverse proxy ----------------------------------------------------------


def ip_of(remote, forwarded=None, header="HTTP_X_FORWARDED_FOR"):
    extra = {header: forwarded} if forwarded is not None else {}
    return client_ip(RequestFactory().get("/", REMOTE_ADDR=remote, **extra))


@override_settings(TUIJIN_TRUSTED_PROXIES=["10.0.0.1", "10.1.0.0/16"])
def test_forwarded_for_is_honoured_only_from_a_trusted_proxy():
    assert ip_of("10.0.0.1", "198.51.100.9") == "198.51.100.9"
    assert ip_of("203.0.113.9", "198.51.100.9") == "203.0.113.9"  # not a proxy of ours: header ignored
    # The client may prepend anything; the right-most address our proxies did not add is the client.
    assert ip_of("10.0.0.1", "1.2.3.4, 198.51.100.9") == "198.51.100.9"
    assert ip_of("10.0.0.1", "198.51.100.9, 10.1.4.4") == "198.51.100.9"  # two trusted hops
    assert ip_of("10.0.0.1", "garbage, 198.51.100.9") == "198.51.100.9"
    assert ip_of("10.0.0.1", "198.51.100.9, garbage") == "10.0.0.1"
    assert ip_of("10.0.0.1") == "10.0.0.1"


@override_settings(TUIJIN_TRUSTED_PROXIES=["10.0.0.1"], TUIJIN_CLIENT_IP_HEADER="X-Real-IP")
def test_the_client_address_header_is_configurable():
    assert ip_of("10.0.0.1", "198.51.100.9", header="HTTP_X_REAL_IP") == "198.51.100.9"
    assert ip_of("10.0.0.1", "198.51.100.9") == "10.0.0.1"  # X-Forwarded-For is not the configured header


@override_settings(TUIJIN_TRUSTED_PROXIES=["10.0.0.1"])
def test_behind_the_proxy_one_client_is_locked_not_everyone(org):
    proxy = "10.0.0.1"
    for _ in range(5):
        assert api_login("rep.east1", "bad", proxy, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 401
    assert api_login("rep.east1", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429
    assert api_login("rep.east1", PASSWORD, proxy, HTTP_X_FORWARDED_FOR=OWNER).status_code == 200
    # Sent directly, a forged header does not give a fresh address.
    for i in range(5):
        api_login("rep.east2", "bad", "203.0.113.99", HTTP_X_FORWARDED_FOR=f"198.51.100.{i + 100}")
    assert api_login("rep.east2", PASSWORD, "203.0.113.99",
                     HTTP_X_FORWARDED_FOR="198.51.100.200").status_code == 429


# --- parallel tries: exactly the limit is evaluated ------------------------------------------------------


def parallel_tries(n: int = 40) -> dict:
    """n threads try one wrong password for one username from one address at once; what was evaluated.

    Each evaluation waits until all n tries have been decided (evaluated or refused), so a check-then-count
    race would let all n through; counting before evaluating, under a row lock, lets exactly the limit through.
    """
    User.objects.create_user("rep.parallel", password=PASSWORD, role="rep")
    lock, all_decided = threading.Lock(), threading.Event()
    tally = {"decided": 0, "evaluated": 0}
    real_authenticate = auth_module.authenticate

    def decided():
        with lock:
            tally["decided"] += 1
            if tally["decided"] == n:
                all_decided.set()

    def counting_authenticate(request, **credentials):
        with lock:
            tally["evaluated"] += 1
        decided()
        all_decided.wait(timeout=60)  # bounded: a lost thread fails the assertions, it does not hang
        return real_authenticate(request, **credentials)

    barrier = threading.Barrier(n)
    statuses: list = [None] * n

    def attempt(i):
        try:
            barrier.wait(timeout=60)
            resp = api_login("rep.parallel", "wrong-password", ATTACKER)
            statuses[i] = resp.status_code
            if resp.status_code != 401:
                decided()
        except Exception as exc:  # asserted on by the caller
            statuses[i] = repr(exc)
            decided()
        finally:
            connection.close()

    auth_module.authenticate = counting_authenticate
    try:
        threads = [threading.Thread(target=attempt, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    finally:
        auth_module.authenticate = real_authenticate
    return {
        "hung": sum(t.is_alive() for t in threads), "evaluated": tally["evaluated"], "statuses": statuses,
        "pair_count": LoginThrottle.objects.get(key=f"pair:rep.parallel|{ATTACKER}").count,
    }


PARALLEL_SCRIPT = """
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from tests.org.test_throttle import parallel_tries
print("RESULT " + json.dumps(parallel_tries()))
"""


@pytest.mark.django_db(transaction=True)
def test_forty_parallel_tries_evaluate_exactly_the_limit(settings, tmp_path):
    """On PostgreSQL (DATABASE_URL) in this process: row locks over 40 connections. On SQLite in a fresh
    interpreter on a file database (WAL, BEGIN IMMEDIATE, busy timeout) as deployed: the suite's shared-cache
    in-memory database fails concurrent writers at once ("table is locked") instead of queueing them."""
    if connection.vendor == "sqlite":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_", "DATABASE_URL"))}
        env.update(TUIJIN_VAR_DIR=str(tmp_path), TUIJIN_TESTING="1", DJANGO_SETTINGS_MODULE="tuijin.settings")
        result = subprocess.run([sys.executable, "-c", PARALLEL_SCRIPT], env=env, capture_output=True, text=True,
                                timeout=300, cwd=REPO)
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    else:
        out = parallel_tries()
    limit = settings.LOGIN_MAX_FAILURES
    assert out["hung"] == 0
    assert out["evaluated"] == limit
    assert sorted(out["statuses"], key=str) == [401] * limit + [429] * (40 - limit)
    assert out["pair_count"] == limit
