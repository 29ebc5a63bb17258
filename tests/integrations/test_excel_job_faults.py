"""Import jobs under real faults, with real processes (helpers shared with tests/notify/test_faults.py):

- a `tuijin worker` is killed with SIGKILL at 20% of an import → nothing of it remains, the sweep marks
  the job interrupted, and a restart on a new worker imports every row exactly once;
- REDIS_URL points at a dead port → starting an import says the queue is unreachable (page and API 503),
  no 500 anywhere, and the job can be started again.

PYTHONPATH is passed to the subprocesses so they run this worktree's code. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from django.core.cache.backends.filebased import FileBasedCache
from django.db import connection

from ..notify.test_faults import Worker, _env, _free_port, _prepare_db, _run, _wait

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 480  # under BULK_MIN_CUSTOMERS: one customer_create per row, so progress moves in small steps
SRC = str(Path(__file__).resolve().parents[2] / "src")

PRELUDE = """
import json, os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tuijin.settings")
import django
django.setup()
from tuijin.org.models import User
from tuijin.integrations.excel import services
from tuijin.integrations.excel.models import ImportJob
from tuijin.customers.models import Customer
rep, _ = User.objects.get_or_create(username="fault.importer", defaults={"role": "rep"})
"""

CREATE = PRELUDE + """
sys.path.insert(0, sys.argv[1])
from helpers import row, xlsx_bytes
job = services.import_job_create(actor=rep, filename="kill.xlsx",
                                 data=xlsx_bytes([row(i) for i in range(1, int(sys.argv[2]) + 1)]))
print(json.dumps({"id": job.pk, "status": job.status}))
"""

START = PRELUDE + """
job = ImportJob.objects.get(pk=int(sys.argv[1]))
job = services.import_job_start(actor=rep, job=job)
print(json.dumps({"status": job.status}))
"""

SWEEP = PRELUDE + """
print(json.dumps({"swept": services.import_jobs_sweep()}))
"""


def _env_for(tmp_path, **extra):
    env = _env(tmp_path, **extra)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _json(done) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


class State:
    """Reads the job and the customer count the way the subprocesses see them, without starting Django again."""

    def __init__(self, tmp_path: Path, job_id: int):
        self.job_id = job_id
        self.db = tmp_path / "tuijin.sqlite3"
        self.cache = FileBasedCache(str(tmp_path / "cache"), {})

    def _query(self, sql, params=()):
        if connection.vendor == "postgresql":
            with connection.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchone()
        with sqlite3.connect(self.db, timeout=30) as db:
            return db.execute(sql, params).fetchone()

    def job(self) -> dict:
        status, error, created, heartbeat = self._query(
            "SELECT status, error, created_count, heartbeat_at FROM excel_importjob WHERE id = ?", (self.job_id,))
        return {"status": status, "error": error, "created": created, "heartbeat_at": heartbeat}

    def customers(self) -> int:
        return self._query("SELECT COUNT(*) FROM customers_customer WHERE name LIKE ?", ("导入测试%",))[0]

    def progress(self) -> int:
        return (self.cache.get(f"tuijin:excel:import:{self.job_id}:progress") or {}).get("done", 0)


def test_worker_killed_at_20_percent_leaves_nothing_and_the_restarted_job_imports_once(tmp_path):
    env = _env_for(tmp_path, TUIJIN_IMPORT_HEARTBEAT_TIMEOUT="3")
    _prepare_db(env)
    log = tmp_path / "worker.log"
    created = _json(_run(env, "-c", CREATE, str(Path(__file__).parent), str(ROWS)))
    # The upload only stored the file: the dry run waits for a worker (it is not run in the web process).
    assert created["status"] == "validating"
    job_id = created["id"]
    state = State(tmp_path, job_id)
    first = Worker(env, log)
    try:
        _wait(lambda: state.job()["status"] == "validated", 120, "the dry run in the worker", log)
        assert _json(_run(env, "-c", START, str(job_id)))["status"] in ("queued", "running")
        _wait(lambda: state.progress() >= ROWS // 5, 120, "the import to reach 20%", log)
        first.kill()  # SIGKILL in the middle of the import's transaction
    finally:
        first.kill()
    at_kill = state.progress()
    assert ROWS // 5 <= at_kill < ROWS, at_kill
    assert state.job()["status"] == "running"  # nobody is left to say otherwise
    assert state.customers() == 0  # the transaction died with the process: nothing half-imported

    # No heartbeat for 3 s: the sweep (the worker runs it every minute; here called directly) marks it.
    _wait(lambda: _json(_run(env, "-c", SWEEP))["swept"] == 1, 60, "the sweep to mark the job interrupted")
    job = state.job()
    assert job["status"] == "interrupted" and "中断" in job["error"] and job["heartbeat_at"] is None

    second = Worker(env, log)
    try:
        assert _json(_run(env, "-c", START, str(job_id)))["status"] in ("queued", "running", "done")
        _wait(lambda: state.job()["status"] == "done", 180, "the restarted import", log)
    finally:
        second.stop()
    assert state.job()["created"] == ROWS
    assert state.customers() == ROWS  # every row once: the killed attempt left no duplicates


REDIS_DOWN = PRELUDE + """
sys.path.insert(0, sys.argv[1])
from helpers import row, xlsx_bytes
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
out = {}
client = Client(raise_request_exception=False)
client.force_login(rep)
resp = client.post("/import/customers/", {"file": SimpleUploadedFile("c.xlsx", xlsx_bytes([row(1), row(2)])),
                                          "dup_mode": "skip"})
out["upload"] = resp.status_code
job = ImportJob.objects.get()
out["after_upload"] = job.status
page = client.get(f"/import/jobs/{job.pk}/")
out["upload_page"] = [page.status_code, "任务队列暂时无法连接" in page.content.decode()]
# The dry run, as the worker would run it once the queue is back (run here: there is no queue).
ImportJob.objects.filter(pk=job.pk).update(status="validating", heartbeat_at=None)
services.import_job_validate(job_id=job.pk)
job.refresh_from_db()
out["validated"] = job.status
resp = client.post(f"/import/jobs/{job.pk}/start", follow=True)
out["start_page"] = [resp.status_code, "任务队列暂时无法连接" in resp.content.decode()]
job.refresh_from_db()
out["after_start"] = job.status
api = client.post(f"/api/imports/{job.pk}/start")
out["api_start"] = [api.status_code, api.json()["detail"], api.json()["job"]["status"]]
out["api_get"] = client.get(f"/api/imports/{job.pk}").status_code
out["progress"] = client.get(f"/import/jobs/{job.pk}/progress").status_code
job.refresh_from_db()
out["final"] = job.status
out["customers"] = Customer.objects.filter(name__startswith="导入测试").count()
print(json.dumps(out, ensure_ascii=False))
"""


def test_redis_on_a_dead_port_gives_a_clear_message_and_the_job_can_be_started_again(tmp_path):
    env = _env_for(tmp_path, REDIS_URL=f"redis://127.0.0.1:{_free_port()}/3")
    _prepare_db(env)
    out = _json(_run(env, "-c", REDIS_DOWN, str(Path(__file__).parent)))
    assert out["upload"] == 302 and out["after_upload"] == "interrupted"
    assert out["upload_page"] == [200, True]
    assert out["validated"] == "validated"
    assert out["start_page"] == [200, True] and out["after_start"] == "validated"
    code, detail, status = out["api_start"]
    assert code == 503 and "任务队列暂时无法连接" in detail and status == "validated"
    assert out["api_get"] == 200 and out["progress"] == 200
    assert out["final"] == "validated" and out["customers"] == 0
