"""requirements.lock (what `make` installs with --require-hashes) matches pyproject.toml, and `make audit`
tells an unreachable vulnerability database apart from findings."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def _lock() -> dict[str, tuple[str, list[str]]]:
    """{name: (version, hashes)} from the lock's pinned lines and their --hash continuation lines."""
    pins: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            pins[current] = (m.group(2), [])
        elif current and line.strip().startswith("--hash=sha256:"):
            pins[current][1].append(line.strip().split(":", 1)[1].rstrip(" \\"))
        elif line and not line.startswith(" "):
            current = None
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in ("test", "bench"):
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return reqs


def test_every_dependency_in_pyproject_is_locked_at_an_allowed_version():
    pins = _lock()
    problems = []
    for req in _declared():
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{req.name} is not in requirements.lock (run make lock)")
        elif not req.specifier.contains(pins[name][0], prereleases=True):
            problems.append(f"{req.name}: locked {pins[name][0]} does not satisfy {req.specifier} (run make lock)")
        for extra in req.extras:  # psycopg[binary] → psycopg-binary
            if canonicalize_name(f"{req.name}-{extra}") not in pins:
                problems.append(f"{req.name}[{extra}]: {req.name}-{extra} is not locked")
    assert not problems, "\n".join(problems)


def test_every_locked_package_is_pinned_with_hashes():
    pins = _lock()
    assert len(pins) > 30
    unhashed = [name for name, (_version, hashes) in pins.items() if not hashes]
    assert not unhashed
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for _v, hashes in pins.values() for h in hashes)


def _dep_audit():
    spec = importlib.util.spec_from_file_location("dep_audit", REPO / "tools" / "dep_audit.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_audit_fails_on_findings_and_skips_an_unreachable_database():
    evaluate = _dep_audit().evaluate
    found = {"dependencies": [
        {"name": "django", "version": "5.2.0", "vulns": [{"id": "PYSEC-0000-1", "fix_versions": ["5.2.1"]}]},
        {"name": "huey", "version": "2.5.0", "vulns": []},
    ]}
    code, lines = evaluate(found, "", 1)
    assert code == 1 and "PYSEC-0000-1" in lines[0] and "FAILED" in lines[-1]

    clean = {"dependencies": [{"name": "django", "version": "5.2.1", "vulns": []}]}
    assert evaluate(clean, "", 0)[0] == 0

    # A package mirror without vulnerability data: every lookup "not found" is not a clean bill of health.
    mirror = {"dependencies": [{"name": "django", "version": "5.2.1", "skip_reason": "Dependency not found"}]}
    code, lines = evaluate(mirror, "", 0)
    assert code == 0 and "SKIPPED" in lines[0] and "unreachable" in lines[0]

    code, lines = evaluate(None, "requests.exceptions.ConnectionError: Max retries exceeded", 1)
    assert code == 0 and "unreachable" in lines[0]
    code, _lines = evaluate(None, "pip_audit: error: unrecognized arguments", 2)
    assert code == 1
