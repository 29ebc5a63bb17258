"""`tuijin run` keeps the site up when its worker dies (security issue, item 6): the worker child is killed with
SIGKILL, /healthz keeps answering, and a new worker process appears (the log says it was restarted).

A real `tuijin run` (gunicorn + Huey worker) on a free port with its own SQLite database and queue file.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> dict[int, list[str]]:
    """{pid: argv} of the direct children of `pid` (read from /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
                found[int(entry.name)] = [a for a in argv if a]
        except (OSError, ValueError, IndexError):
            continue
    return found


def _worker_pids(run_pid: int) -> set[int]:
    return {pid for pid, argv in _children(run_pid).items() if argv[1:4] == ["-m", "tuijin.cli", "worker"]}


def _healthz(port: int) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            return resp.status
    except OSError:
        return None


def _wait(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n--- log ---\n"
                         f"{log.read_text(errors='replace')[-4000:]}")


def test_the_web_server_survives_a_killed_worker_and_the_worker_is_restarted(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    for name in ("REDIS_URL", "DATABASE_URL", "TUIJIN_WORKER_PERIODIC"):
        env.pop(name, None)
    env.update({"TUIJIN_TESTING": "0", "TUIJIN_DEMO": "1", "TUIJIN_VAR_DIR": str(tmp_path), "PORT": str(port),
                "HOST": "127.0.0.1", "TUIJIN_WEB_WORKERS": "1", "TUIJIN_WORKER_THREADS": "1",
                "PYTHONUNBUFFERED": "1", "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])})
    migrate = subprocess.run([sys.executable, "-m", "tuijin.cli", "migrate", "--noinput", "-v0"], env=env,
                             capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert migrate.returncode == 0, migrate.stderr[-3000:]

    log = tmp_path / "run.log"
    with open(log, "ab") as out:
        run = subprocess.Popen([sys.executable, "-m", "tuijin.cli", "run"], env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
    try:
        _wait(lambda: _healthz(port) == 200, 90, "/healthz to answer", log)
        [first] = _wait(lambda: _worker_pids(run.pid), 30, "the worker child", log)
        os.kill(first, signal.SIGKILL)
        restarted = _wait(lambda: _worker_pids(run.pid) - {first}, 30, "a new worker process", log)
        assert len(restarted) == 1 and first not in _worker_pids(run.pid)
        assert run.poll() is None  # `tuijin run` itself is still there ...
        assert _healthz(port) == 200  # ... and so is the site
        text = log.read_text(errors="replace")
        assert f"worker pid {first} exited (killed by SIGKILL)" in text and "restarting it in" in text
        assert f"worker restarted, pid {restarted.pop()}" in text
    finally:
        if run.poll() is None:
            run.send_signal(signal.SIGTERM)
            try:
                run.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(run.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        run.wait(timeout=30)
