"""Request-id middleware (every audit event records which request caused it) and the security headers
middleware (Content-Security-Policy with a per-request nonce; no caching of anything a signed-in user sees)."""

import base64
import re
import secrets

from django.conf import settings

from .context import reset_request_id, set_request_id

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        token = set_request_id(incoming if _SAFE_ID.match(incoming) else None)
        request.request_id = incoming if _SAFE_ID.match(incoming) else None
        try:
            response = self.get_response(request)
        finally:
            reset_request_id(token)
        return response


def content_security_policy(nonce: str) -> str:
    """The policy for one response; settings.TUIJIN_CSP_SCRIPT_HASHES lists the inline handlers still allowed."""
    hashes = " ".join(f"'{h}'" for h in settings.TUIJIN_CSP_SCRIPT_HASHES)
    script = f"script-src 'self' 'nonce-{nonce}'" + (f" 'unsafe-hashes' {hashes}" if hashes else "")
    return "; ".join([
        "default-src 'self'",
        script,
        # Stylesheets only from our origin; style="" attributes are allowed (server-rendered widths and
        # ECharts' tooltip markup use them; they cannot run code).
        "style-src 'self'",
        "style-src-attr 'unsafe-inline'",
        "img-src 'self' data:",  # Bootstrap's form controls draw their icons from data: SVGs
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


class SecurityHeadersMiddleware:
    """Content-Security-Policy on every response, and `Cache-Control: private, no-store` on everything
    answered to a signed-in user (session or API token) and on every download.

    Templates that still need an inline <script> mark it `nonce="{{ request.csp_nonce }}"`; the nonce is
    new for every request, so markup injected into a page cannot carry a valid one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.csp_nonce = base64.b64encode(secrets.token_bytes(16)).decode()
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = content_security_policy(request.csp_nonce)
        user = getattr(request, "user", None)
        private = (user is not None and user.is_authenticated) or "Authorization" in request.headers
        download = response.get("Content-Disposition", "").lower().startswith("attachment")
        if (private or download) and "no-store" not in response.get("Cache-Control", ""):
            response["Cache-Control"] = "private, no-store"
        return response
