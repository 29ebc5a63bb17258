"""The robots page's enable/disable button says what it does (pgettext "action"), not the status label."""

from __future__ import annotations

import re

import pytest
from django.utils import translation


def buttons(body: str) -> list[str]:
    """Labels of the buttons in the enable/disable forms (the ones posting `active`)."""
    return re.findall(r'name="active" value="[01]">\s*<button[^>]*>([^<]+)</button>', body)


@pytest.mark.parametrize("language, disable, enable, on, off", [
    ("zh-hans", "停用", "启用", "启用", "停用"),
    ("en", "Disable", "Enable", "Enabled", "Disabled"),
])
def test_toggle_buttons_are_actions_and_badges_are_states(org, login, make_robot, language, disable, enable, on, off):
    admin = org.users["admin"]
    admin.language = language
    admin.save(update_fields=["language"])
    make_robot("wecom", name="群A")  # listed by name: the active one first
    make_robot("dingtalk", name="群B", is_active=False)
    body = login(admin).get("/notifications/robots/").content.decode()
    assert buttons(body) == [disable, enable]
    badges = re.findall(r'<td data-label="[^"]+"><span class="badge text-bg-(?:success|secondary)">([^<]+)</span></td>',
                        body)
    assert sorted(badges) == sorted([on, off])
    with translation.override(language):
        assert translation.pgettext("action", "停用") == disable
