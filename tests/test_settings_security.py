"""Production settings: no default secret or audit key, `check --deploy` clean, secure cookies."""

import os
import subprocess
import sys

PROD_ENV = {
    "TUIJIN_SECRET_KEY": "x" * 20 + "-production-secret-for-deploy-check-0123456789",
    "TUIJIN_AUDIT_KEY": "a" * 20 + "-production-audit-key-for-deploy-check-0123456789",
    "TUIJIN_ALLOWED_HOSTS": "crm.example.com",
    "TUIJIN_DEBUG": "0",
    "TUIJIN_DEMO": "0",
    "TUIJIN_TESTING": "0",
}


def _run(code_or_args, env_extra, *, module=False):
    # Only the test's own settings: other tests (e2e) set DJANGO_* variables in this process.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TUIJIN_", "DJANGO_", "DATABASE_URL"))}
    env.update(env_extra)
    env["DJANGO_SETTINGS_MODULE"] = "tuijin.settings"
    args = [sys.executable, *(code_or_args if module else ["-c", code_or_args])]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)


def test_check_deploy_is_clean_in_production_mode():
    result = _run(["-m", "tuijin.cli", "check", "--deploy", "--fail-level", "WARNING"], PROD_ENV, module=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_settings_refuse_to_load_without_a_secret_outside_demo_mode():
    env = {k: v for k, v in PROD_ENV.items() if k != "TUIJIN_SECRET_KEY"}
    result = _run("import django; django.setup()", env)
    assert result.returncode != 0
    assert "TUIJIN_SECRET_KEY" in result.stderr


def test_production_cookies_are_secure_and_http_only():
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SESSION_COOKIE_HTTPONLY, s.DEBUG, "
        "s.PASSWORD_HASHERS[0])"
    )
    result = _run(code, PROD_ENV)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "True", "True", "True", "False", "django.contrib.auth.hashers.Argon2PasswordHasher",
    ]


def test_demo_mode_has_a_key_but_is_never_the_production_default():
    code = "import django; django.setup(); from django.conf import settings as s; print(s.SECRET_KEY[:13])"
    demo = _run(code, {**{k: v for k, v in PROD_ENV.items() if k != "TUIJIN_SECRET_KEY"}, "TUIJIN_DEMO": "1"})
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.strip() == "tuijin-insecu"


def test_settings_refuse_to_load_without_an_audit_key_outside_demo_mode():
    env = {k: v for k, v in PROD_ENV.items() if k != "TUIJIN_AUDIT_KEY"}
    result = _run("import django; django.setup()", env)
    assert result.returncode != 0
    assert "TUIJIN_AUDIT_KEY is not set" in result.stderr


def test_settings_refuse_a_short_audit_key():
    result = _run("import django; django.setup()", {**PROD_ENV, "TUIJIN_AUDIT_KEY": "short-key"})
    assert result.returncode != 0
    assert "TUIJIN_AUDIT_KEY is too short" in result.stderr


def test_demo_mode_derives_an_audit_key_from_the_secret_key():
    code = ("import django; django.setup(); from django.conf import settings as s; "
            "print(len(s.TUIJIN_AUDIT_KEY), s.TUIJIN_AUDIT_KEY != s.SECRET_KEY)")
    env = {k: v for k, v in PROD_ENV.items() if k != "TUIJIN_AUDIT_KEY"}
    demo = _run(code, {**env, "TUIJIN_DEMO": "1"})
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.split() == ["64", "True"]
