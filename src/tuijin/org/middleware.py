"""Per-request org concerns: the signed-in user's language, and the request-scoped visibility cache."""

from django.utils import translation

from .selectors import visibility_scope


class UserLanguageMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and user.language:
            translation.activate(user.language)
            request.LANGUAGE_CODE = user.language
        return self.get_response(request)


class VisibilityScopeMiddleware:
    """Computes each user's visible set at most once per request (see org.selectors.visible_owner_ids)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with visibility_scope():
            return self.get_response(request)
