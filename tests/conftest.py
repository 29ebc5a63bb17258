"""Shared fixtures: the demo org skeleton (same logins as the README) and a few records per rep."""

from __future__ import annotations

import datetime as dt
import os

import pytest
from django.test import Client
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from tuijin.customers.services import customer_create
from tuijin.demo.org import build_org
from tuijin.followups.services import activity_create
from tuijin.pipeline.services import industry_template_apply, opportunity_create

from . import browser as browser_support

PASSWORD = "pw-for-tests-1"

# Property tests run on a shared 2-core machine: time per example says nothing about correctness there,
# so no deadline and no "too slow" health check (the example counts stay as each test sets them).
hypothesis_settings.register_profile(
    "tuijin", deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
hypothesis_settings.load_profile("tuijin")


@pytest.fixture(scope="session", autouse=True)
def _clock_from_environment():
    """TUIJIN_TEST_NOW=2027-01-01T00:30:00+08:00 runs the whole suite as if started then (the clock ticks on).

    No test may depend on the day it runs; this is how to check that for a day of your choice, e.g. the
    hours when the UTC and Asia/Shanghai dates differ: `TUIJIN_TEST_NOW=... make test-fast`.
    """
    when = os.environ.get("TUIJIN_TEST_NOW")
    if not when:
        yield
        return
    import time_machine

    with time_machine.travel(dt.datetime.fromisoformat(when), tick=True):
        yield


@pytest.fixture
def org(db):
    """Org tree and the 11 documented logins, plus the medical-devices pipeline."""
    o = build_org(password=PASSWORD)
    o.pipeline = industry_template_apply(actor=None, code="medical_devices")
    o.stages = {s.code: s for s in o.pipeline.stages.all()}
    return o


@pytest.fixture
def world(org):
    """One customer, opportunity and activity owned by each rep (and one per manager)."""
    org.customers, org.opps, org.activities = {}, {}, {}
    for i, username in enumerate(["rep.east1", "rep.east2", "rep.south1", "manager.east"]):
        u = org.users[username]
        c = customer_create(
            actor=u, name=f"测试客户{i}号医院", industry="hospital_public", region="华东" if "east" in username else "华南",
            phone=f"021-5555{i:04d}", contacts=[{"name": f"联系人{i}", "mobile": f"1380000{i:04d}"}],
        )
        o = opportunity_create(
            actor=u, customer=c, name=f"CT采购{i}", amount="100000", expected_close_date=dt.date(2027, 3, 1),
        )
        a = activity_create(actor=u, customer=c, opportunity=o, kind="visit", subject="首次拜访", conclusion="需求确认")
        org.customers[username], org.opps[username], org.activities[username] = c, o, a
    return org


@pytest.fixture
def login():
    """login(user) → a Django test Client with a session for that user."""

    def _login(user):
        client = Client()
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def api_client():
    """api_client(user) → a Client that sends a real bearer token obtained from /api/auth/token."""

    def _make(user, password=PASSWORD):
        client = Client()
        resp = client.post("/api/auth/token", {"username": user.username, "password": password},
                           content_type="application/json")
        assert resp.status_code == 200, resp.content
        token = resp.json()["token"]
        client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        return client

    return _make


@pytest.fixture
def browser(monkeypatch):
    # `make test` installs Debian's chromium; a missing browser is a failure, not a skip.
    assert os.path.exists(browser_support.CHROMIUM), "Debian's chromium is not installed (make test installs it)"
    from playwright import sync_api

    # Playwright's sync API runs an event loop in this thread; Django's ORM would refuse to run here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    os.makedirs(browser_support.SHOTS, exist_ok=True)
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=browser_support.CHROMIUM, args=browser_support.ARGS)
        yield b
        b.close()
