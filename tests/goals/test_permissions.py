"""The team board has one policy (goals.permissions.can_view_team_board) for the page and the API."""

from __future__ import annotations

import pytest

from tuijin.demo.org import LOGINS
from tuijin.goals.permissions import can_view_team_board

pytestmark = pytest.mark.django_db

ALLOWED = {"admin", "director", "manager.east", "manager.south"}


def test_team_board_page_and_api_agree_for_every_role(org, login, api_client):
    for username, *_rest in LOGINS:
        user = org.users[username]
        page = login(user).get("/goals/team/?on=2026-02-14")
        api = api_client(user).get("/api/goals/boards/team?on=2026-02-14")
        allowed = username in ALLOWED
        assert can_view_team_board(user) is allowed, username
        assert (page.status_code, api.status_code) == ((200, 200) if allowed else (403, 403)), username
        # The navigation offers the team board exactly to those allowed.
        board = login(user).get("/goals/board/").content.decode()
        assert ('href="/goals/team/"' in board) is allowed, username


def test_a_manager_sees_only_units_below_their_own(org):
    manager = org.users["manager.east"]
    assert can_view_team_board(manager, org.units["shanghai"])
    assert not can_view_team_board(manager, org.units["south"])
    assert not can_view_team_board(manager, org.units["company"])
