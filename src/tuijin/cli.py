"""The `tuijin` console command: serve, worker, demo, audit verify/checkpoint, run (web + worker), and Django commands.

`tuijin <anything else>` passes through to Django's management commands, so
`tuijin migrate` and `tuijin createsuperuser` work as expected.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def _django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tuijin.settings")
    import django

    django.setup()


def _manage(args: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tuijin.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["tuijin", *args])
    return 0


def _serve(args: list[str]) -> int:
    port = os.environ.get("PORT", "8000")
    host = os.environ.get("HOST", "127.0.0.1")
    workers = os.environ.get("TUIJIN_WEB_WORKERS", "2")
    cmd = [
        sys.executable, "-m", "gunicorn", "tuijin.wsgi:application",
        "--bind", f"{host}:{port}", "--workers", workers, "--threads", "4",
        "--access-logfile", "-", "--graceful-timeout", "10", *args,
    ]
    os.execvp(cmd[0], cmd)
    return 0


def _worker(args: list[str]) -> int:
    """The Huey consumer. It also schedules periodic jobs unless `--no-periodic` or TUIJIN_WORKER_PERIODIC=0.

    Extra workers should get --no-periodic; if two workers schedule anyway, only the one holding the
    scheduler lease enqueues periodic jobs (notify/scheduler.py), the other takes over when it dies.
    """
    args = list(args)
    periodic = os.environ.get("TUIJIN_WORKER_PERIODIC", "1").strip().lower() not in {"0", "false", "no", "off"}
    if not periodic and "--no-periodic" not in args and "-n" not in args:
        args.append("--no-periodic")
    return _manage(["run_huey", *args])


# `tuijin run`: a worker that dies is started again after 1 s, then 2, 4, ... up to a minute while it keeps
# dying quickly; a worker that ran for a minute counts as healthy again (the next restart waits 1 s).
WORKER_BACKOFF_MAX = 60.0
WORKER_STABLE_SECONDS = 60.0


def _say(message: str) -> None:
    print(f"tuijin run: {message}", file=sys.stderr, flush=True)


def _exit_reason(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _run(args: list[str]) -> int:
    """Web server and Huey worker together (what `make run` starts); Ctrl-C or SIGTERM stops both.

    The web server is the process that matters: when it exits, everything stops. A worker that dies is
    restarted with backoff (and the log says so), so one crash does not take the site down with it.
    """
    import time

    def start_worker() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "tuijin.cli", "worker"])

    worker: subprocess.Popen | None = start_worker()
    worker_started = time.monotonic()
    web = subprocess.Popen([sys.executable, "-m", "tuijin.cli", "serve"])
    _say(f"web server pid {web.pid}, worker pid {worker.pid}")
    quick_deaths = 0
    restart_at = 0.0
    stopping = False

    def stop(*_a):
        nonlocal stopping
        stopping = True
        for p in (web, worker):
            if p is not None and p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and web.poll() is None:
            if worker is not None and worker.poll() is not None:
                ran = time.monotonic() - worker_started
                quick_deaths = 0 if ran >= WORKER_STABLE_SECONDS else quick_deaths + 1
                delay = min(2.0 ** max(quick_deaths - 1, 0), WORKER_BACKOFF_MAX)
                _say(f"worker pid {worker.pid} exited ({_exit_reason(worker.returncode)}) after {ran:.0f} s; "
                     f"restarting it in {delay:.0f} s")
                worker, restart_at = None, time.monotonic() + delay
            if worker is None and time.monotonic() >= restart_at:
                worker, worker_started = start_worker(), time.monotonic()
                _say(f"worker restarted, pid {worker.pid}")
            try:
                web.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        if web.poll() is not None and not stopping:
            _say(f"web server exited ({_exit_reason(web.returncode)}); stopping the worker")
        stop()
        for p in (web, worker):
            if p is None:
                continue
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return web.returncode if web.returncode and web.returncode > 0 else 0


def _bench(args: list[str]) -> int:
    """`tuijin bench ...` = `python -m bench ...` from the checkout (the harness is not packaged)."""
    from pathlib import Path

    checkout = Path(__file__).resolve().parent.parent.parent
    if not (checkout / "bench" / "__main__.py").exists():
        print("tuijin bench runs from a source checkout (bench/ not found)", file=sys.stderr)
        return 2
    return subprocess.call([sys.executable, "-m", "bench", *args], cwd=checkout)


def _audit(args: list[str]) -> int:
    if not args or args[0] not in {"verify", "checkpoint"}:
        print("usage: tuijin audit verify | tuijin audit checkpoint", file=sys.stderr)
        return 2
    return _manage([f"audit_{args[0]}", *args[1:]])


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in {"-h", "--help", "help"}:
        print(__doc__)
        print("commands: serve | worker [--no-periodic] | run | demo [--reps N --customers N --months N --seed N] | "
              "audit verify|checkpoint | template apply CODE | bench [--scale S ...] | <django command>")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "serve":
        return _serve(rest)
    if command == "worker":
        return _worker(rest)
    if command == "run":
        return _run(rest)
    if command == "audit":
        return _audit(rest)
    if command == "bench":
        return _bench(rest)
    if command == "template":
        if rest[:1] != ["apply"] or len(rest) < 2:
            print("usage: tuijin template apply CODE", file=sys.stderr)
            return 2
        return _manage(["apply_industry_template", *rest[1:]])
    return _manage(argv)


if __name__ == "__main__":
    sys.exit(main())
