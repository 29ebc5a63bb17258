"""Bad query or form parameters (`tuijin.core.params.BadParameter`) become a 400 page naming the parameter.

One place for every page and download instead of a try/except in each view; the API maps the same
exception to its 422 shape itself (tuijin.api).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _

from tuijin.core.params import BadParameter

from .common import error_page, wants_json


class BadParameterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, BadParameter):
            return None
        if wants_json(request):
            return JsonResponse({"ok": False, "errors": [exception.message], "parameter": exception.name},
                                status=400)
        return error_page(request, exception.message, status=400, title=_("请求参数有误"))
