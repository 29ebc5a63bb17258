"""Template filters of the goal pages: the permission checks of goals.permissions, so links match access."""

from django import template

from tuijin.goals.permissions import can_view_team_board as _can_view_team_board

register = template.Library()


@register.filter
def can_view_team_board(user) -> bool:
    return _can_view_team_board(user)
