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

    Run exactly one scheduling worker per deployment; extra workers get --no-periodic.
    (Every periodic job is idempotent anyway, so a second scheduler by mistake duplicates nothing.)
    """
    args = list(args)
    periodic = os.environ.get("TUIJIN_WORKER_PERIODIC", "1").strip().lower() not in {"0", "false", "no", "off"}
    if not periodic and "--no-periodic" not in args and "-n" not in args:
        args.append("--no-periodic")
    return _manage(["run_huey", *args])


def _run(args: list[str]) -> int:
    """Web server and Huey worker together (what `make run` starts); Ctrl-C stops both."""
    procs = [
        subprocess.Popen([sys.executable, "-m", "tuijin.cli", "worker"]),
        subprocess.Popen([sys.executable, "-m", "tuijin.cli", "serve"]),
    ]

    def stop(*_a):
        for p in procs:
            if p.poll() is None:
                p.terminate()

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(p.poll() is None for p in procs):
            try:
                procs[1].wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
    except KeyboardInterrupt:
        pass
    finally:
        stop()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
    return max((p.returncode or 0) for p in procs)


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
