"""Who can see whose records: the one place row-level visibility is decided (SPEC P3).

A rep sees own records; a manager sees everyone in the org subtree of their
unit and their reports by manager chain; director, VP and admin see the whole
company; cross-role staff see what customer team membership grants them
(decided in customers.selectors). Both the API and the pages call these.
"""

from __future__ import annotations

import contextvars
from contextlib import contextmanager

from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import ApiToken, OrgUnit, User


def is_company_wide(user: User) -> bool:
    return user.is_superuser or user.role in User.COMPANY_WIDE_ROLES


def subtree_units(unit: OrgUnit) -> QuerySet[OrgUnit]:
    return OrgUnit.objects.filter(path__startswith=unit.path)


def manager_chain(user: User) -> list[User]:
    """Direct manager first, up to the top; stops on cycles."""
    chain, seen, current = [], {user.pk}, user.manager
    while current is not None and current.pk not in seen:
        chain.append(current)
        seen.add(current.pk)
        current = current.manager
    return chain


def report_ids(user: User) -> set[int]:
    """All users below `user` in the manager chain (breadth-first, one query per level)."""
    found: set[int] = set()
    frontier = {user.pk}
    while frontier:
        nxt = set(User.objects.filter(manager_id__in=frontier).values_list("pk", flat=True)) - found - {user.pk}
        found |= nxt
        frontier = nxt
    return found


# The visible set of a manager costs one query for the org subtree plus one per level of the
# manager chain, and one page calls several selectors (list, filters, owner picker, counts):
# measured at scale M, a manager's list page ran 21 queries instead of 8. Inside a request the
# org does not change, so the set is computed once per user and request (VisibilityScopeMiddleware).
# Outside a scope (tasks, commands, tests calling selectors directly) nothing is cached.
_visible_cache: contextvars.ContextVar[dict | None] = contextvars.ContextVar("tuijin_visible_cache", default=None)


@contextmanager
def visibility_scope():
    """Cache visible sets for the duration of the block (one request)."""
    token = _visible_cache.set({})
    try:
        yield
    finally:
        _visible_cache.reset(token)


def visibility_cache_clear() -> None:
    """Called by the org services: a changed org invalidates what this request computed."""
    cache = _visible_cache.get()
    if cache is not None:
        cache.clear()


def visible_owner_ids(user: User) -> set[int] | None:
    """Ids of users whose owned records `user` sees; None means everyone's."""
    if not user.is_authenticated or not user.is_active:
        return set()
    if is_company_wide(user):
        return None
    cache = _visible_cache.get()
    if cache is not None:
        if user.pk not in cache:
            cache[user.pk] = frozenset(_compute_visible_owner_ids(user))
        return set(cache[user.pk])
    return _compute_visible_owner_ids(user)


def _compute_visible_owner_ids(user: User) -> set[int]:
    ids = {user.pk}
    if user.role == User.Role.MANAGER:
        if user.org_unit_id:
            ids |= set(
                User.objects.filter(org_unit__path__startswith=user.org_unit.path).values_list("pk", flat=True)
            )
        ids |= report_ids(user)
    return ids


def user_list(*, user: User) -> QuerySet[User]:
    """Users `user` may pick as owners or see in filters."""
    qs = User.objects.filter(is_active=True).select_related("org_unit")
    ids = visible_owner_ids(user)
    if ids is None:
        return qs
    return qs.filter(Q(pk__in=ids))


def team_user_ids(user: User) -> set[int] | None:
    """Subordinates only (excludes the user): 下属负责的."""
    ids = visible_owner_ids(user)
    if ids is None:
        return None
    return ids - {user.pk}


def user_directory(*, roles: set[str] | None = None) -> QuerySet[User]:
    """The staff directory: every active colleague, for pickers (team members, transfer targets).

    Names and roles are not customer data, so this is not limited by visibility;
    what a picked user may then do is decided by the services.
    """
    qs = User.objects.filter(is_active=True).select_related("org_unit").order_by("role", "username")
    return qs.filter(role__in=list(roles)) if roles else qs


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """The user's own live tokens (not revoked, not expired), newest first."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=timezone.now()).order_by(
        "-created_at", "-pk")
