"""Security checks beyond tests/test_settings_security.py: cookies on a real request in production mode,
and no secrets in the repository."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

PROD_ENV = {
    "TUIJIN_SECRET_KEY": "p" * 20 + "-production-secret-for-cookie-check-0123456789",
    "TUIJIN_AUDIT_KEY": "q" * 20 + "-production-audit-key-for-cookie-check-0123456789",
    "TUIJIN_ALLOWED_HOSTS": "crm.example.com",
    "TUIJIN_DEBUG": "0",
    "TUIJIN_DEMO": "0",
    "TUIJIN_TESTING": "0",
}

# Runs in a fresh interpreter with production settings on its own SQLite file: migrate, create a user,
# then the full middleware stack handles a plain-HTTP request, a login page and a login over HTTPS.
REQUEST_SCRIPT = r"""
import json
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0, interactive=False)
from tuijin.org.models import User
User.objects.create_user("cookie.rep", password="cookie-pw-12345", role="rep")
from django.test import Client
c = Client(HTTP_HOST="crm.example.com")
plain = c.get("/login/")
page = c.get("/login/", secure=True)
csrf = page.cookies["csrftoken"]
login = c.post("/login/", {"username": "cookie.rep", "password": "cookie-pw-12345",
                           "csrfmiddlewaretoken": csrf.value}, secure=True)
session = login.cookies["sessionid"]
out = {
    "plain_status": plain.status_code, "plain_location": plain.get("Location", ""),
    "page_status": page.status_code, "hsts": page.get("Strict-Transport-Security", ""),
    "csrf_secure": bool(csrf["secure"]), "csrf_samesite": csrf["samesite"],
    "login_status": login.status_code,
    "session_secure": bool(session["secure"]), "session_httponly": bool(session["httponly"]),
    "session_samesite": session["samesite"],
}
print("RESULT " + json.dumps(out))
"""


def test_session_and_csrf_cookies_are_secure_on_a_real_production_request(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_", "DATABASE_URL"))}
    env.update(PROD_ENV, TUIJIN_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="tuijin.settings")
    result = subprocess.run([sys.executable, "-c", REQUEST_SCRIPT], env=env, capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("RESULT "))
    out = json.loads(line[len("RESULT "):])
    # Plain HTTP is redirected to HTTPS before anything else happens.
    assert out["plain_status"] == 301 and out["plain_location"].startswith("https://crm.example.com/")
    assert out["page_status"] == 200 and "max-age=" in out["hsts"]
    assert out["csrf_secure"] is True and out["csrf_samesite"] == "Lax"
    assert out["login_status"] == 302  # logged in: the session cookie below is a real one
    assert out["session_secure"] is True and out["session_httponly"] is True
    assert out["session_samesite"] == "Lax"


# --------------------------------------------------------------------------- secrets

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN (?:RSA |EC |DSA |OPENSSH |PGP |ENCRYPTED )?PRIVATE KEY( BLOCK)?-----"),
    "AWS access key": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bgithub_pat_[A-Za-z0-9_]{40,}"),
    "Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "Stripe key": re.compile(r"\b[sr]k_live_[0-9A-Za-z]{20,}"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in a URL": re.compile(r"\b[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s:@'\"]{3,}@[\w.-]+"),
    # A hard-coded Django/Tuijin secret: an assignment of a long literal (the demo key is allowed, by name).
    "secret key literal": re.compile(
        r"""(?:SECRET_KEY|TUIJIN_SECRET_KEY)["']?\s*[:=]\s*["'](?!tuijin-insecure-demo-key)[^"'\s]{32,}["']"""),
    "webhook secret literal": re.compile(
        r"""(?i)(?:webhook|robot|app)_?secret["']?\s*[:=]\s*["'][A-Za-z0-9+/=_-]{24,}["']"""),
}
# Files that must never be committed at all.
FORBIDDEN_NAMES = re.compile(r"(^|/)(\.env(\.[\w-]+)?|id_rsa|id_ed25519|.*\.pem|.*\.key|.*\.p12|.*\.pfx)$")
ALLOWED_NAMES = {".env.example"}


def repository_files() -> list[str]:
    """Tracked files plus new files that are not ignored (what the next commit may contain)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=REPO,
                         capture_output=True, check=True).stdout
    return sorted({p for p in out.decode().split("\0") if p})


def scan(text: str) -> list[str]:
    return [name for name, pattern in SECRET_PATTERNS.items() if pattern.search(text)]


def test_the_scanner_finds_what_it_looks_for():
    # Built at run time so this file itself contains no matching literal.
    samples = {
        "private key": "-----BEGIN " + "RSA PRIVATE KEY-----\nMIIE...",
        "AWS access key": "key = 'AKIA" + "ABCDEFGHIJKLMNOP'",
        "GitHub token": "ghp_" + "a" * 36,
        "password in a URL": "postgres://app:" + "s3cret" + "@db.example.com/app",
        "secret key literal": "SECRET_KEY = '" + "k" * 40 + "'",
    }
    for name, text in samples.items():
        assert name in scan(text), name
    assert scan("SECRET_KEY = 'tuijin-insecure-demo-key-do-not-use-in-production'") == []
    assert scan("DATABASE_URL=postgres://postgres@127.0.0.1:5432/test") == []


@pytest.mark.skipif(not (REPO / ".git").exists(), reason="not a git checkout")
def test_no_secrets_in_the_repository():
    files = repository_files()
    assert len(files) > 50  # really scanned the checkout
    found = []
    for rel in files:
        if FORBIDDEN_NAMES.search(rel) and Path(rel).name not in ALLOWED_NAMES:
            found.append(f"{rel}: a file of this kind must not be committed")
            continue
        path = REPO / rel
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary files (images, fonts)
        found += [f"{rel}: {name}" for name in scan(text)]
    assert not found, "possible secrets in the repository:\n" + "\n".join(found)
