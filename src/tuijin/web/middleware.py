"""Bad query or form parameters become a 400 page naming the parameter.

One place for every page and download instead of a try/except in each view: `BadParameter` raised by
`tuijin.core.params` while a view parses its input, and any NUL character in a query or form value,
which PostgreSQL cannot store or even compare (a 500 there; SQLite let it through). The API refuses
both itself (tuijin.api).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.utils.translation import gettext as _

from tuijin.core.pages import error_page, wants_json
from tuijin.core.params import BadParameter

FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def _nul_parameter(request) -> str | None:
    sources = [request.GET]
    if request.method == "POST" and request.content_type in FORM_TYPES:
        sources.append(request.POST)
    for params in sources:
        for key, values in params.lists():
            if "\x00" in key or any("\x00" in v for v in values):
                return key.replace("\x00", "\\x00")
    return None


class BadParameterMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        if request.path.startswith("/api/"):
            return None
        name = _nul_parameter(request)
        if name is not None:
            return self._bad(request, BadParameter(name, _("参数 %(name)s 无效：含有 NUL 字符") % {"name": name}))
        return None

    def process_exception(self, request, exception):
        if isinstance(exception, BadParameter):
            return self._bad(request, exception)
        return None

    def _bad(self, request, exc: BadParameter):
        if wants_json(request):
            return JsonResponse({"ok": False, "errors": [exc.message], "parameter": exc.name}, status=400)
        return error_page(request, exc.message, status=400, title=_("请求参数有误"))
