"""Response hardening: Content-Security-Policy (and templates that live within it), no caching of
anything a signed-in user sees, only the listed front-end files served, API docs behind login."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client, override_settings

from tuijin.core.middleware import content_security_policy

SRC = Path(settings.SRC_DIR)
TEMPLATES = sorted(SRC.rglob("templates/**/*.html"))


def _csp(resp) -> dict[str, str]:
    policy = resp["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


# --------------------------------------------------------------------------- CSP

def test_every_page_carries_a_strict_policy_with_a_fresh_nonce(world, login):
    client = login(world.users["rep.east1"])
    first, second = client.get("/"), client.get("/customers/")
    for resp in (first, second):
        policy = _csp(resp)
        script = policy["script-src"]
        assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
        assert "'nonce-" in script
        assert policy["style-src"] == "style-src 'self'"
        assert policy["object-src"] == "object-src 'none'" and policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert policy["base-uri"] == "base-uri 'none'"
    nonce = re.compile(r"'nonce-([^']+)'")
    assert nonce.search(first["Content-Security-Policy"]).group(1) != nonce.search(
        second["Content-Security-Policy"]).group(1)
    # Anonymous pages and errors too.
    assert "script-src" in Client().get("/login/")["Content-Security-Policy"]
    assert "script-src" in client.get("/customers/999999/")["Content-Security-Policy"]


def test_inline_script_runs_only_with_the_nonce_of_its_own_response(world, login):
    client = login(world.users["manager.east"])
    resp = client.get("/forecasts/accuracy/")
    assert resp.status_code == 200
    html = resp.content.decode()
    header_nonce = re.search(r"'nonce-([^']+)'", resp["Content-Security-Policy"]).group(1)
    inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)([^>]*)>", html)
    assert inline, "the accuracy page has an inline chart script"
    assert all(f'nonce="{header_nonce}"' in attrs for attrs in inline)


HANDLER = re.compile(r"""\son(?:abort|blur|change|click|dblclick|error|focus\w*|input|invalid|key\w+|load|mouse\w+|"""
                     r"""pointer\w+|reset|scroll|select|submit|toggle|touch\w+|drag\w*|drop|wheel|resize|"""
                     r"""animation\w+|transition\w+|beforeunload|unload)\s*=\s*["']([^"']*)["']""", re.I)
# Rendered to PDF by WeasyPrint on the server, never served to a browser as a page.
NOT_PAGES = {"report_pdf.html"}


def _allowed_handler(code: str) -> bool:
    digest = base64.b64encode(hashlib.sha256(code.encode()).digest()).decode()
    return f"sha256-{digest}" in settings.TUIJIN_CSP_SCRIPT_HASHES


@pytest.mark.parametrize("path", TEMPLATES, ids=[str(p.relative_to(SRC)) for p in TEMPLATES])
def test_templates_need_nothing_the_policy_forbids(path):
    """The class test: every template of every app, including branches no page test renders."""
    text = path.read_text()
    if path.parts[-2] == "ninja" or path.name in NOT_PAGES:
        return
    for match in re.finditer(r"<script\b([^>]*)>", text):
        attrs = match.group(1)
        assert "src=" in attrs or "application/json" in attrs or 'nonce="{{ request.csp_nonce }}"' in attrs, (
            f"inline <script> without the request's nonce: {match.group(0)}")
    assert not re.search(r"<style\b", text), "inline <style>: move the rules to a static .css file"
    assert "javascript:" not in text.lower(), "javascript: URL"
    for code in HANDLER.findall(text):
        assert _allowed_handler(code), f"inline event handler {code!r}: use a data- attribute and static JS"
    assert "hx-on" not in text, "hx-on needs eval, which the policy (and htmx-config allowEval) forbids"


def test_the_allowed_handler_hash_is_the_auto_submit_one():
    assert _allowed_handler("this.form.submit()")
    assert "'unsafe-hashes'" in content_security_policy("n")


# --------------------------------------------------------------------------- caching

def test_signed_in_pages_downloads_and_api_answers_are_not_stored(world, login, api_client):
    client = login(world.users["rep.east1"])
    customer = world.customers["rep.east1"]
    for url in ("/", "/customers/", f"/customers/{customer.pk}/", "/opportunities/kanban/",
                "/customers/999999/", "/export/customers.xlsx", "/import/customers/template.xlsx"):
        resp = client.get(url)
        assert resp["Cache-Control"] == "private, no-store", (url, resp.get("Cache-Control"))
    export = client.get("/export/customers.xlsx")
    assert export["Content-Disposition"].startswith("attachment")
    api = api_client(world.users["rep.east1"])
    assert "no-store" in api.get("/api/customers")["Cache-Control"]


def test_static_files_keep_their_caching(world, login):
    client = login(world.users["rep.east1"])
    resp = client.get("/static/web/app.css")
    assert resp.status_code == 200 and "no-store" not in resp.get("Cache-Control", "")


# --------------------------------------------------------------------------- vendored files

VENDOR_REF = re.compile(r"""static ['"](vendor/[^'"]+)['"]""")


def test_every_vendor_file_a_template_uses_is_listed_and_exists():
    used = {m for p in TEMPLATES for m in VENDOR_REF.findall(p.read_text())}
    assert used, "templates load bootstrap/htmx/echarts from vendor/"
    listed = {f"vendor/{f}" for f in settings.TUIJIN_VENDOR_FILES}
    assert used <= listed, used - listed
    for name in settings.TUIJIN_VENDOR_FILES:
        assert (Path(settings.TUIJIN_VENDOR_ROOT) / name).is_file(), name


def test_only_the_listed_vendor_files_are_served(db):
    client = Client()
    for name in settings.TUIJIN_VENDOR_FILES:
        assert client.get(f"/static/vendor/{name}").status_code == 200, name
        assert finders.find(f"vendor/{name}")
    root = Path(settings.TUIJIN_VENDOR_ROOT)
    others = ["bootstrap/package.json", "bootstrap/dist/css/bootstrap.css", "echarts/dist/echarts.js",
              "htmx.org/dist/htmx.js", "sortablejs/Sortable.js", ".package-lock.json",
              "bootstrap/dist/css/bootstrap.min.css.map", "zrender/package.json"]
    for name in others:
        assert (root / name).exists(), f"test premise: {name} is in node_modules"
        assert client.get(f"/static/vendor/{name}").status_code == 404, name
        assert finders.find(f"vendor/{name}") is None
    assert client.get("/static/vendor/../node_modules/bootstrap/package.json").status_code == 404


def test_collectstatic_copies_only_the_listed_vendor_files(tmp_path):
    from django.core.management import call_command

    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", interactive=False, verbosity=0)
    copied = {str(p.relative_to(tmp_path / "vendor")) for p in (tmp_path / "vendor").rglob("*")
              if p.is_file() and not p.name.endswith((".gz", ".br"))}
    assert copied == set(settings.TUIJIN_VENDOR_FILES)


# --------------------------------------------------------------------------- API docs

def test_api_docs_and_schema_need_a_login_outside_debug(world, login, api_client):
    assert settings.TUIJIN_API_DOCS_PUBLIC is False  # tests run in neither debug nor demo mode
    anon = Client()
    docs = anon.get("/api/docs")
    assert docs.status_code == 302 and docs["Location"].startswith("/login/")
    schema = anon.get("/api/openapi.json")
    assert schema.status_code == 401 and schema["WWW-Authenticate"] == "Bearer"
    assert anon.get("/api/openapi.json", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401
    user = world.users["rep.east1"]
    assert login(user).get("/api/docs").status_code == 200
    assert login(user).get("/api/openapi.json").json()["info"]["title"] == "Tuijin API"
    assert api_client(user).get("/api/openapi.json").status_code == 200


@override_settings(TUIJIN_API_DOCS_PUBLIC=True)
def test_api_docs_stay_open_in_debug_or_demo_mode(db):
    assert Client().get("/api/openapi.json").status_code == 200
    assert Client().get("/api/docs").status_code == 200
