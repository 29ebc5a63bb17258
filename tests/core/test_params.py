"""core.params: query and form parameters that the database or date arithmetic cannot hold are refused
with BadParameter naming the parameter; absent or empty means "not given"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.http import QueryDict

from tuijin.core.errors import ValidationFailed
from tuijin.core.params import BadParameter, date_param, id_param, int_param, text_param


def q(text: str) -> QueryDict:
    return QueryDict(text)


@pytest.mark.parametrize(("query", "expected"), [
    ("", None), ("owner_id=", None), ("owner_id=%20", None), ("owner_id=7", 7), ("owner_id=+7", 7),
    ("owner_id=%207%20", 7), (f"owner_id={2**63 - 1}", 2**63 - 1),
])
def test_id_param_accepts_ids_and_treats_empty_as_absent(query, expected):
    assert id_param(q(query), "owner_id") == expected


@pytest.mark.parametrize("value", [
    str(2**63), str(-(2**63) - 1), "0", "-1", "1e20", "1.5", "abc", "1_000", "%D9%A1%D9%A2", "9" * 40, "%00",
])
def test_id_param_refuses_what_cannot_be_an_id_naming_the_parameter(value):
    with pytest.raises(BadParameter) as caught:
        id_param(q(f"owner_id={value}"), "owner_id")
    assert caught.value.name == "owner_id" and "owner_id" in caught.value.message
    assert isinstance(caught.value, ValidationFailed)  # the API maps it to its 422 shape
    assert caught.value.errors == {"owner_id": [caught.value.message]}


def test_int_param_bounds():
    assert int_param(q("stale=0"), "stale", min_value=0, max_value=10) == 0
    assert int_param(q("stale=10"), "stale", min_value=0, max_value=10) == 10
    assert int_param(q(""), "stale", default=3) == 3
    for bad in ("11", "-1", "100000000000000000000"):
        with pytest.raises(BadParameter):
            int_param(q(f"stale={bad}"), "stale", min_value=0, max_value=10)


@pytest.mark.parametrize(("value", "expected"), [
    ("", None), ("2026-11-30", dt.date(2026, 11, 30)), ("1900-01-01", dt.date(1900, 1, 1)),
    ("2999-12-31", dt.date(2999, 12, 31)),
])
def test_date_param_accepts_days_in_range(value, expected):
    assert date_param(q(f"since={value}"), "since") == expected


@pytest.mark.parametrize("value", ["0001-01-01", "9999-12-31", "2026-02-30", "20261130", "2026-11-30T00:00",
                                   "yesterday", "%ED%A0%80"])
def test_date_param_refuses_other_values(value):
    with pytest.raises(BadParameter) as caught:
        date_param(q(f"since={value}"), "since")
    assert "since" in caught.value.message


def test_text_param_limits_length():
    assert text_param(q("q=%20abc%20"), "q") == "abc"
    assert text_param(q(""), "q") == ""
    assert text_param(q("q=" + "x" * 200), "q") == "x" * 200
    with pytest.raises(BadParameter):
        text_param(q("q=" + "x" * 201), "q")
