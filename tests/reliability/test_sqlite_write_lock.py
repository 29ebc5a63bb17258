"""A read while another connection holds SQLite's write lock (a long import, a bulk transfer) still answers.

Found in production: token authentication wrote `last_used_at` on every read, so a reader queued behind a
one-minute write transaction and failed with 500 when the busy timeout ran out. Runs in a fresh
interpreter on a file database (the test suite's in-memory database has no real file locks), with a real
second sqlite3 connection holding BEGIN IMMEDIATE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUSY_TIMEOUT = 4  # seconds: short, so the pre-fix failure (wait, then "database is locked") is quick

SCRIPT = r"""
import json, sqlite3, time
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
call_command("migrate", verbosity=0, interactive=False)
from tuijin.org.models import ApiToken, User
from tuijin.org.services import api_token_issue

assert connection.vendor == "sqlite"
user = User.objects.create_user("lock.rep", password="lock-pw-12345", role="rep")
raw = api_token_issue(user=user)
ApiToken.objects.update(last_used_at=None)  # due for its "last used" touch
client = Client(HTTP_AUTHORIZATION=f"Bearer {raw}")

locker = sqlite3.connect(str(settings.DATABASES["default"]["NAME"]), timeout=0, isolation_level=None)
locker.execute("BEGIN IMMEDIATE")  # what any Django write transaction here starts with
locker.execute("UPDATE org_apitoken SET expires_at = expires_at")  # and writes, as a long import would
started = time.monotonic()
try:
    resp = client.get("/api/me")
    status, body = resp.status_code, resp.json()
except Exception as exc:  # the pre-fix failure: the test client re-raises the view's OperationalError
    status, body = 500, repr(exc)
elapsed = time.monotonic() - started
with connection.cursor() as cur:
    cur.execute("PRAGMA busy_timeout")
    busy_ms = cur.fetchone()[0]
locker.execute("ROLLBACK")
locker.close()
# With the lock gone, the next read records the use.
after = client.get("/api/me").status_code
print("RESULT " + json.dumps({
    "status": status, "body": body, "elapsed": elapsed, "busy_ms": busy_ms, "after": after,
    "last_used": ApiToken.objects.get().last_used_at is not None,
}))
"""


def test_a_read_answers_200_while_another_connection_holds_the_write_lock(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_", "DATABASE_URL"))}
    env.update(TUIJIN_VAR_DIR=str(tmp_path), TUIJIN_TESTING="1", TUIJIN_SQLITE_BUSY_TIMEOUT=str(BUSY_TIMEOUT),
               DJANGO_SETTINGS_MODULE="tuijin.settings")
    result = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])
    assert out["status"] == 200, out["body"]
    assert out["body"]["username"] == "lock.rep"
    # The read did not queue for the lock: it skipped the touch instead of waiting out the busy timeout.
    assert out["elapsed"] < BUSY_TIMEOUT
    # The connection's busy timeout is the configured one again (the touch shortens it only for itself).
    assert out["busy_ms"] == BUSY_TIMEOUT * 1000
    assert out["after"] == 200 and out["last_used"] is True
