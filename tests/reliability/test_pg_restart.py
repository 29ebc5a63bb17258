"""Fault: PostgreSQL restarts while a live server (gunicorn, 2 workers) takes writes.

The server must recover on its own (CONN_HEALTH_CHECKS drop the dead pooled
connections) and no acknowledged write may be lost: every activity the API
answered 201 for exists afterwards, and the change trail still verifies.

It restarts the machine's PostgreSQL server, which cuts every other client's
connections too, so it runs only where that is acceptable: in CI (`CI` set) or
when asked with TUIJIN_FAULT_TESTS=1 — and only on a local PostgreSQL, as root,
with Debian's pg_ctlcluster.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, connections

from tuijin.followups.models import Activity
from tuijin.org.services import api_token_issue

pytestmark = [pytest.mark.slow]

RESTART_TIMEOUT = 120
RECOVERY_SECONDS = 30


def _restart_command() -> list[str] | None:
    versions = sorted(p.name for p in Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").exists() else []
    if not versions or not shutil.which("pg_ctlcluster"):
        return None
    return ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "restart"]


def _why_not() -> str | None:
    if connection.vendor != "postgresql":
        return "needs PostgreSQL (DATABASE_URL)"
    if connection.settings_dict.get("HOST") not in ("127.0.0.1", "localhost", "::1"):
        return "needs the PostgreSQL server on this machine"
    if not (os.environ.get("CI") or os.environ.get("TUIJIN_FAULT_TESTS") == "1"):
        return "restarts the shared PostgreSQL server: runs in CI or with TUIJIN_FAULT_TESTS=1"
    if os.geteuid() != 0 or _restart_command() is None:
        return "needs root and Debian's pg_ctlcluster"
    return None


def _database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST']}:{s.get('PORT') or 5432}/{s['NAME']}"


class Writer(threading.Thread):
    """Logs activities through the API as fast as it can; remembers what was acknowledged."""

    def __init__(self, port: int, token: str, customer_id: int, tag: str):
        super().__init__(daemon=True)
        self.port, self.token, self.customer_id, self.tag = port, token, customer_id, tag
        self.acked: dict[int, str] = {}  # activity id → subject
        self.events: list[tuple[float, bool]] = []  # (time, success)
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            subject = f"restart-{self.tag}-{n}"
            body = json.dumps({"customer_id": self.customer_id, "kind": "call", "subject": subject})
            ok = False
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                conn.request("POST", "/api/activities", body=body, headers={
                    "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                if resp.status == 201:
                    self.acked[json.loads(data)["id"]] = subject
                    ok = True
            except (OSError, http.client.HTTPException, ValueError):
                pass
            self.events.append((time.monotonic(), ok))
            if not ok:
                time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_server_recovers_from_a_postgresql_restart_without_losing_acknowledged_writes(org):
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    from bench.throughput import Server

    from tuijin.customers.services import customer_create

    rep = org.users["rep.east1"]
    customer = customer_create(actor=rep, name="重启测试客户医院", industry="hospital_public")
    token = api_token_issue(user=rep)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_"))}
    env.update(DATABASE_URL=_database_url(), TUIJIN_DEMO="1", DJANGO_SETTINGS_MODULE="tuijin.settings")

    with Server(env, app="tuijin.wsgi:application") as server:
        pid = server.proc.pid
        writers = [Writer(server.port, token, customer.pk, str(i)) for i in range(2)]
        for w in writers:
            w.start()
        time.sleep(3)
        before = sum(len(w.acked) for w in writers)
        restarted = subprocess.run(_restart_command(), capture_output=True, text=True, timeout=RESTART_TIMEOUT)
        assert restarted.returncode == 0, restarted.stderr
        restart_done = time.monotonic()
        # Keep writing until the server has recovered (bounded), then a little longer.
        deadline = restart_done + RECOVERY_SECONDS
        while time.monotonic() < deadline:
            if sum(1 for w in writers for t, ok in w.events if ok and t > restart_done) >= 20:
                break
            time.sleep(0.2)
        time.sleep(1)
        for w in writers:
            w.stop.set()
        for w in writers:
            w.join(timeout=15)
        assert server.proc.poll() is None and server.proc.pid == pid  # nobody restarted the app server
        log = server.output()

    assert before > 0, "no write succeeded before the restart"
    recovered = [t for w in writers for t, ok in w.events if ok and t > restart_done]
    assert len(recovered) >= 20, f"the server did not recover within {RECOVERY_SECONDS} s:\n{log[-3000:]}"

    connections.close_all()  # this process' own connection died with the restart too
    acked = {pk: subject for w in writers for pk, subject in w.acked.items()}
    stored = dict(Activity.objects.filter(pk__in=acked).values_list("pk", "subject"))
    assert stored == acked, f"acknowledged writes lost: {sorted(set(acked) - set(stored))[:20]}"

    from tuijin.core.audit import verify

    assert verify().ok
