"""/healthz for load balancers and monitoring: each dependency with its status; 503 when one is down.

Checked: the database (SELECT 1), the task queue (Huey's storage: Redis when REDIS_URL is set, else the
SQLite queue file) and the cache (a write and a read back). A dependency that is down is named with the
exception's class only; details stay in the log.
"""

import logging
import uuid

from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _queue() -> None:
    from huey.contrib.djhuey import HUEY

    HUEY.storage.queue_size()  # a round trip to Redis / a read of the queue table


def _cache() -> None:
    token = uuid.uuid4().hex
    cache.set("tuijin:healthz", token, timeout=30)
    if cache.get("tuijin:healthz") != token:
        raise RuntimeError("cache did not return what was written")


CHECKS = {"database": _database, "queue": _queue, "cache": _cache}


def healthz(request):
    result: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as exc:  # any failure of a dependency means "not healthy"
            logger.warning("healthz: %s is down: %r", name, exc)
            result[name] = f"error: {exc.__class__.__name__}"
        else:
            result[name] = "ok"
    healthy = all(v == "ok" for v in result.values())
    return JsonResponse({"status": "ok" if healthy else "error", **result}, status=200 if healthy else 503)
