"""Bad input: negative / non-numeric allocations, overlapping periods, circular parents, wrong children,
permission — each error names the field and nothing is saved."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.goals.models import KeyResult, Objective, Period, Target
from tuijin.goals.services import (
    key_result_create,
    objective_create,
    period_create,
    target_allocate,
)

pytestmark = pytest.mark.django_db


def _state():
    return (Target.objects.count(), Period.objects.count(), KeyResult.objects.count(), AuditEvent.objects.count(),
            sorted(Target.objects.values_list("pk", "value")))


@pytest.mark.parametrize("value, message", [("-1", "不能为负数"), ("abc", "请输入数字"), ("", "请填写数值"),
                                            ("NaN", "请输入数字"), (True, "请输入数字")])
def test_bad_allocation_values_name_the_row_and_save_nothing(cascade, org, value, message):
    before = _state()
    with pytest.raises(ValidationFailed) as exc:
        target_allocate(actor=org.users["director"], parent=cascade.east, children=[
            {"unit": org.units["shanghai"].pk, "value": "1"}, {"unit": org.units["hangzhou"].pk, "value": value}])
    assert exc.value.errors == {"children[1].value": [message]}
    assert _state() == before


def test_circular_parent_is_rejected(cascade, org):
    before = _state()
    with pytest.raises(ValidationFailed) as exc:
        target_allocate(actor=org.users["director"], parent=cascade.shanghai, children=[
            {"unit": org.units["company"].pk, "value": "10"}, {"unit": org.units["shanghai"].pk, "value": "10"}])
    assert set(exc.value.errors) == {"children[0].unit", "children[1].unit"}
    assert "循环" in exc.value.errors["children[0].unit"][0]
    assert _state() == before


def test_children_must_be_direct_children_or_reps_of_the_unit_and_not_duplicated(cascade, org):
    before = _state()
    with pytest.raises(ValidationFailed) as exc:
        target_allocate(actor=org.users["director"], parent=cascade.east, children=[
            {"unit": org.units["shanghai_team"].pk, "value": "1"},  # grandchild
            {"user": org.users["rep.south1"].pk, "value": "1"},  # not in 华东大区
            {"unit": org.units["hangzhou"].pk, "value": "1"},
            {"unit": org.units["hangzhou"].pk, "value": "2"},  # duplicate
            {"value": "3"},  # neither unit nor user
        ])
    assert set(exc.value.errors) == {"children[0].unit", "children[1].user", "children[3].unit", "children[4].unit"}
    assert _state() == before


def test_rep_target_cannot_be_split(cascade, org):
    with pytest.raises(ValidationFailed) as exc:
        target_allocate(actor=org.users["director"], parent=cascade.rep,
                        children=[{"user": org.users["rep.east2"].pk, "value": "1"}])
    assert "parent" in exc.value.errors


def test_period_end_must_be_after_start_and_same_kind_must_not_overlap(org):
    d = org.users["director"]
    with pytest.raises(ValidationFailed) as exc:
        period_create(actor=d, kind="month", start="2026-02-10", end="2026-02-01")
    assert list(exc.value.errors) == ["end"]
    period_create(actor=d, kind="month", start=dt.date(2026, 1, 1))
    with pytest.raises(ValidationFailed) as exc:
        period_create(actor=d, kind="month", start="2026-01-15", end="2026-02-14")
    assert list(exc.value.errors) == ["start"] and "2026-01" in exc.value.errors["start"][0]
    with pytest.raises(ValidationFailed) as exc:
        period_create(actor=d, kind="week", start="not a date")
    assert set(exc.value.errors) == {"kind", "start"}
    assert Period.objects.count() == 1
    # Same period again is the same row; a quarter over the month is a different kind and fine.
    assert period_create(actor=d, kind="month", start=dt.date(2026, 1, 1)).pk == Period.objects.get().pk
    assert period_create(actor=d, kind="quarter", start=dt.date(2026, 1, 1)).end == dt.date(2026, 3, 31)


def test_same_metric_in_overlapping_period_is_rejected(cascade, org):
    d = org.users["director"]
    other = objective_create(actor=d, period=cascade.period, title="另一个目标")
    before = _state()
    with pytest.raises(ValidationFailed) as exc:
        key_result_create(actor=d, objective=other, metric="signed_revenue", target="1")
    assert list(exc.value.errors) == ["metric"]
    with pytest.raises(ValidationFailed) as exc:
        key_result_create(actor=d, objective=other, metric="no_such_metric", target="-5")
    assert set(exc.value.errors) == {"metric", "target"}
    assert _state() == before


def test_objective_with_bad_key_result_saves_nothing(org):
    d = org.users["director"]
    period = period_create(actor=d, kind="quarter", start=dt.date(2026, 4, 1))
    with pytest.raises(ValidationFailed) as exc:
        objective_create(actor=d, period=period, title="Q2", key_results=[
            {"metric": "activities", "target": "100"}, {"metric": "new_leads", "target": "x"}])
    assert list(exc.value.errors) == ["key_results[1].target"]
    assert not Objective.objects.exists() and not KeyResult.objects.exists()


def test_reps_and_managers_cannot_create_objectives(org):
    period = period_create(actor=org.users["director"], kind="quarter", start=dt.date(2026, 4, 1))
    for name in ["rep.east1", "manager.east", "finance"]:
        with pytest.raises(Forbidden):
            objective_create(actor=org.users[name], period=period, title="x")
    assert not Objective.objects.exists()


def test_rep_cannot_allocate_and_manager_only_below_own_unit(cascade, org):
    with pytest.raises(Forbidden):
        target_allocate(actor=org.users["rep.east1"], parent=cascade.shanghai,
                        children=[{"user": org.users["rep.east1"].pk, "value": "1"}])
    with pytest.raises(Forbidden):
        target_allocate(actor=org.users["manager.south"], parent=cascade.east,
                        children=[{"unit": org.units["shanghai"].pk, "value": "1"}])
    with pytest.raises(Forbidden):
        target_allocate(actor=org.users["manager.east"], parent=cascade.company,
                        children=[{"unit": org.units["east"].pk, "value": "1"}])
