"""Shared Playwright pieces for the end-to-end tests: Debian's Chromium and a real login.

The `browser` fixture itself is in tests/conftest.py.
"""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this machine cannot reach.
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync"]
SHOTS = "/tmp/tuijin-e2e"


def login_page(context, base_url: str, username: str):
    """Log in through the real form; returns the page on the landing view."""
    from .conftest import PASSWORD  # here, not at import: conftest imports this module

    page = context.new_page()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert "/login/" not in page.url, page.content()[:500]
    return page
