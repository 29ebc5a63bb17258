"""Amounts on pages: thousands separators in both languages (tuijin/formats overrides zh_Hans)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.template import engines
from django.utils import translation

from tuijin.pipeline.models import Opportunity

AMOUNTS = "{% load humanize %}{{ v|floatformat:0|intcomma }}|{{ v|floatformat:2|intcomma }}|{{ n|intcomma }}"


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_intcomma_groups_by_thousands_in_both_languages(language):
    template = engines["django"].from_string(AMOUNTS)
    with translation.override(language):
        out = template.render({"v": Decimal("1234567.50"), "n": -98765432})
    assert out == "1,234,568|1,234,567.50|-98,765,432"


def test_zh_hans_keeps_its_own_date_formats():
    # Only the number settings are overridden; the rest still comes from Django's zh_Hans module.
    from django.utils.formats import get_format

    with translation.override("zh-hans"):
        assert get_format("THOUSAND_SEPARATOR") == "," and get_format("NUMBER_GROUPING") == 3
        assert get_format("DATE_FORMAT") == "Y年n月j日" and get_format("DECIMAL_SEPARATOR") == "."


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_opportunity_page_shows_amount_with_separators(world, login, language):
    user = world.users["rep.east1"]
    user.language = language
    user.save(update_fields=["language"])
    opp = world.opps["rep.east1"]
    Opportunity.objects.filter(pk=opp.pk).update(amount=Decimal("12345678.90"))
    client = login(user)
    assert "¥12,345,678.90" in client.get(f"/opportunities/{opp.pk}/").content.decode()
    assert "¥12,345,679" in client.get("/opportunities/").content.decode()
