"""/healthz names each dependency (database, queue, cache) and answers 503 when one is down (security issue,
item 5: it used to say "ok" while Redis was away). Redis is configured at import time, so each case runs the
probe in a fresh process with its own REDIS_URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client

PROBE = """
import json, os
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tuijin.settings")
import django
django.setup()
from django.test import Client
r = Client().get("/healthz")
print(json.dumps({"status_code": r.status_code, "body": r.json()}))
"""


def _probe(tmp_path: Path, redis_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST") and k != "DATABASE_URL"}
    env.update({"TUIJIN_TESTING": "0", "TUIJIN_DEMO": "1", "TUIJIN_VAR_DIR": str(tmp_path), "REDIS_URL": redis_url})
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_redis_down_makes_healthz_503_naming_queue_and_cache(tmp_path):
    answer = _probe(tmp_path, f"redis://127.0.0.1:{_dead_port()}/4")
    assert answer["status_code"] == 503
    body = answer["body"]
    assert body["status"] == "error" and body["database"] == "ok"
    assert body["queue"].startswith("error") and body["cache"].startswith("error")


def test_redis_up_makes_healthz_ok_for_every_dependency(tmp_path):
    answer = _probe(tmp_path, "redis://127.0.0.1:6379/4")
    assert answer == {"status_code": 200,
                      "body": {"status": "ok", "database": "ok", "queue": "ok", "cache": "ok"}}


@pytest.mark.django_db
def test_a_broken_cache_alone_is_reported(settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}  # stores nothing
    resp = Client().get("/healthz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "error", "database": "ok", "queue": "ok", "cache": "error: RuntimeError"}
