"""Cascade arithmetic and attenuation flags (G1, G2), including the article's +30% → +25% → +20% → +15%."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tuijin.goals.models import Target
from tuijin.goals.selectors import cascade as cascade_of

pytestmark = pytest.mark.django_db


def test_baselines_are_the_previous_quarter_and_growth_is_value_over_baseline(cascade):
    assert cascade.company.baseline == Decimal("300000.00")
    assert cascade.east.baseline == Decimal("200000.00")
    assert cascade.shanghai.baseline == Decimal("100000.00")
    assert cascade.rep.baseline == Decimal("100000.00")
    assert [round(t.growth, 4) for t in (cascade.company, cascade.east, cascade.shanghai, cascade.rep)] == [
        0.30, 0.25, 0.20, 0.15]


def test_30_25_20_15_is_flagged_at_each_step_with_absolute_and_relative_gaps(cascade, org):
    data = cascade_of(user=org.users["director"], key_result=cascade.kr)
    drops = {f["scope"]: f for f in data["flags"] if f["kind"] == "growth_drop"}
    assert set(drops) == {"华东大区", "上海", "李明"}
    east, sh, rep = drops["华东大区"], drops["上海"], drops["李明"]
    assert east["absolute_gap"] == pytest.approx(0.05) and east["relative_gap"] == pytest.approx(0.05 / 0.30, abs=1e-6)
    assert sh["absolute_gap"] == pytest.approx(0.05) and sh["relative_gap"] == pytest.approx(0.05 / 0.25, abs=1e-6)
    assert rep["absolute_gap"] == pytest.approx(0.05) and rep["relative_gap"] == pytest.approx(0.05 / 0.20, abs=1e-6)
    # In money: what the level would need to keep its parent's growth.
    assert east["value_gap"] == Decimal("10000.00")  # 200k × 1.30 − 250k
    assert sh["value_gap"] == Decimal("5000.00")  # 100k × 1.25 − 120k
    assert rep["value_gap"] == Decimal("5000.00")  # 100k × 1.20 − 115k
    # 上海 passes on 115k of its 120k: the children sum is short too.
    short = [f for f in data["flags"] if f["kind"] == "sum_short"]
    assert [(f["scope"], f["absolute_gap"]) for f in short] == [("上海", Decimal("5000.00"))]
    assert short[0]["relative_gap"] == pytest.approx(5000 / 120000, abs=1e-6)
    # 华南 (+40%) and 杭州 (+30%) keep up; the company's children sum to its target.
    assert "华南大区" not in drops and "杭州" not in drops


def test_saving_an_attenuating_allocation_returns_the_warnings(cascade):
    kinds = {k: sorted(f["kind"] for f in w) for k, w in cascade.warnings.items()}
    assert kinds == {"company": ["growth_drop"], "east": ["growth_drop"], "shanghai": ["growth_drop", "sum_short"]}


def test_cascade_rows_are_in_tree_order_with_levels(cascade, org):
    rows = cascade_of(user=org.users["director"], key_result=cascade.kr)["rows"]
    assert [(r["scope"], r["level"]) for r in rows] == [
        ("推进示范医疗器械有限公司", 0), ("华东大区", 1), ("上海", 2), ("李明", 3), ("杭州", 2), ("华南大区", 1)]
    assert rows[2]["children_sum"] == Decimal("115000.00")


def test_rep_sees_the_chain_above_them_only(cascade, org):
    rows = cascade_of(user=org.users["rep.east1"], key_result=cascade.kr)["rows"]
    assert [r["scope"] for r in rows] == ["推进示范医疗器械有限公司", "华东大区", "上海", "李明"]
    assert cascade_of(user=org.users["rep.south1"], key_result=cascade.kr)["rows"] == []


def test_manager_sees_their_subtree_and_the_chain_above(cascade, org):
    rows = cascade_of(user=org.users["manager.east"], key_result=cascade.kr)["rows"]
    assert [r["scope"] for r in rows] == ["推进示范医疗器械有限公司", "华东大区", "上海", "李明", "杭州"]


def test_reallocating_updates_in_place_and_clears_the_flag(cascade, org):
    from tuijin.goals.services import target_allocate

    r = target_allocate(actor=org.users["manager.east"], parent=cascade.shanghai,
                        children=[{"user": org.users["rep.east1"].pk, "value": "125000"}])
    assert r.warnings == []
    assert Target.objects.filter(key_result=cascade.kr).count() == 6
    assert Target.objects.get(pk=cascade.rep.pk).value == Decimal("125000.00")
