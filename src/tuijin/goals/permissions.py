"""Who may see what on the goal pages and API, decided once for both (docs/goals.md, "Permissions").

The team board shows every visible person's KPIs and the roll-up of one org
unit. It is for the people who lead a unit: a manager (their own unit) and the
company-wide roles — director, VP, admin (the company). Reps and the cross-role
staff (finance, legal, presales, delivery, service) have their own board only;
the page answers 403 and so does the API.
"""

from __future__ import annotations

from tuijin.org.models import OrgUnit, User
from tuijin.org.selectors import is_company_wide


def team_board_unit(user: User) -> OrgUnit | None:
    """The unit whose roll-up the user's team board shows: a manager's own unit, the company otherwise."""
    if user.role == User.Role.MANAGER:
        return user.org_unit
    return OrgUnit.objects.filter(parent__isnull=True).order_by("path").first()


def can_view_team_board(user: User, unit: OrgUnit | None = None) -> bool:
    """Managers (of their unit, which they must have) and company-wide roles; nobody else."""
    if not (user and user.is_authenticated and user.is_active):
        return False
    if is_company_wide(user):
        return True
    if user.role == User.Role.MANAGER and user.org_unit_id:
        return unit is None or unit.path.startswith(user.org_unit.path)
    return False
