"""Request-id middleware: every audit event records which request caused it."""

import re

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
