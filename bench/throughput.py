"""Throughput: a live gunicorn server (2 workers) on 127.0.0.1 driven by wrk for a bounded time per endpoint.

The server runs the product's WSGI app with bench settings (the bench database,
plus the bare reference endpoint), in demo mode so it needs no secret. wrk sends
a real bearer token through a Lua script. Without wrk (`apt-get install wrk`)
a small Python load generator with threads is used instead, and the result says
which tool produced it. The server is always stopped, also on errors.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict, workers: int = 2, threads: int = 4, app: str = "bench.wsgi:application"):
        self.port = free_port()
        self.app = app
        self.env = env
        self.workers, self.threads = workers, threads
        self.proc: subprocess.Popen | None = None
        self.log = tempfile.TemporaryFile()

    def __enter__(self):
        cmd = [sys.executable, "-m", "gunicorn", self.app, "--bind", f"127.0.0.1:{self.port}",
               "--workers", str(self.workers), "--threads", str(self.threads), "--graceful-timeout", "5",
               "--log-level", "warning"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}: {self.output()[-2000:]}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not become ready within 60 s")

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.log.close()


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def run_wrk(url: str, token: str | None, seconds: int, connections: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        if token:
            script.write(f'wrk.headers["Authorization"] = "Bearer {token}"\n')
        script_path = script.name
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s", "-s", script_path,
             url], capture_output=True, text=True, timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script_path)
    lat = dict(re.findall(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+(?:us|ms|s|m))\s*$", out, re.M))
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not (rps and total and "50" in lat and "99" in lat):
        raise RuntimeError(f"could not read wrk's output:\n{out}")
    return {
        "requests": int(total.group(1)),
        "requests_per_s": round(float(rps.group(1)), 1),
        "p50_ms": round(_ms(lat["50"]), 2),
        "p99_ms": round(_ms(lat["99"]), 2),
        "errors": (int(non2xx.group(1)) if non2xx else 0) + (sum(map(int, sock.groups())) if sock else 0),
    }


def run_python(url: str, token: str | None, seconds: int, connections: int) -> dict:
    """Fallback load generator: `connections` threads with keep-alive connections."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def worker():
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        mine, bad = [], 0
        while time.monotonic() < stop:
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers=headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status >= 400:
                    bad += 1
            except OSError:
                bad += 1
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            mine.append((time.perf_counter() - t) * 1000)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(connections)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.monotonic() - start
    latencies.sort()
    return {
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 2) if latencies else None,
        "errors": errors[0],
    }


def throughput(ctx, *, env: dict, seconds: int, connections: int = 8) -> dict:
    tool = "wrk" if shutil.which("wrk") else "python-threads"
    load = run_wrk if tool == "wrk" else run_python
    endpoints = [
        ("api.opportunities[manager]", "/api/opportunities", ctx.token("manager")),
        ("api.opportunities[rep]", "/api/opportunities", ctx.token("rep")),
        ("bare.opportunities", "/__bench__/bare-opportunities", None),
    ]
    results = []
    with Server(env) as server:
        base = f"http://127.0.0.1:{server.port}"
        for name, path, token in endpoints:
            res = load(base + path, token, seconds, connections)
            results.append({"name": name, "path": path, **res})
        server_log = server.output()
    by_name = {r["name"]: r for r in results}
    bare = by_name["bare.opportunities"]["requests_per_s"]
    return {
        "tool": tool,
        "seconds_per_endpoint": seconds,
        "connections": connections,
        "server": "gunicorn, 2 workers × 4 threads (gthread), 127.0.0.1",
        "endpoints": results,
        "ratio_ours_to_bare": {
            name: round(r["requests_per_s"] / bare, 3) if bare else None
            for name, r in by_name.items() if name != "bare.opportunities"
        },
        "server_errors_logged": server_log.count("Traceback"),
    }
