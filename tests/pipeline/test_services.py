"""Opportunities: creation, updates, stage moves, and customer transfer with owner history."""

import datetime as dt
import decimal

import pytest

from tuijin.core.audit import history_for, verify
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Customer, CustomerMember, OwnerChange
from tuijin.customers.services import customer_create, customer_member_set
from tuijin.pipeline.models import Opportunity
from tuijin.pipeline.services import (
    customer_transfer,
    industry_template_apply,
    opportunity_create,
    opportunity_move_stage,
    opportunity_update,
)


def fresh(obj):
    obj.refresh_from_db()
    return obj


def test_create_starts_in_the_first_open_stage_with_its_probability(world):
    opp = world.opps["rep.east1"]
    assert opp.stage == world.stages["qualify"]
    assert opp.probability == world.stages["qualify"].probability
    assert opp.amount == decimal.Decimal("100000.00")
    assert [e.action for e in history_for(opp)] == ["create"]


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "", "amount": "1"}, "name"),
        ({"name": "x", "amount": "-1"}, "amount"),
        ({"name": "x", "amount": "abc"}, "amount"),
        ({"name": "x", "amount": "NaN"}, "amount"),
        ({"name": "x", "probability": 101}, "probability"),
        ({"name": "x", "expected_close_date": "2027-13-01"}, "expected_close_date"),
        ({"name": "x", "products": [999999]}, "products"),
    ],
)
def test_create_validation_names_the_field(world, data, field):
    n = Opportunity.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        opportunity_create(actor=world.users["rep.east1"], customer=world.customers["rep.east1"], **data)
    assert field in exc.value.errors
    assert Opportunity.objects.count() == n


def test_create_in_a_closed_stage_or_on_a_churned_customer_is_rejected(world):
    rep, c = world.users["rep.east1"], world.customers["rep.east1"]
    with pytest.raises(ValidationFailed) as exc:
        opportunity_create(actor=rep, customer=c, name="x", stage=world.stages["won"])
    assert "stage" in exc.value.errors
    Customer.objects.filter(pk=c.pk).update(status="churned")
    with pytest.raises(ValidationFailed) as exc:
        opportunity_create(actor=rep, customer=fresh(c), name="x")
    assert "customer" in exc.value.errors


def test_create_with_a_stage_of_another_pipeline_is_rejected(world):
    other = industry_template_apply(actor=None, code="saas_b2b", make_default=False)
    with pytest.raises(ValidationFailed) as exc:
        opportunity_create(actor=world.users["rep.east1"], customer=world.customers["rep.east1"], name="x",
                           pipeline=world.pipeline, stage=other.stages.order_by("order").first())
    assert "stage" in exc.value.errors


def test_cross_role_staff_cannot_create_opportunities(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["presales"], access="write")
    with pytest.raises(Forbidden):
        opportunity_create(actor=world.users["presales"], customer=c, name="售前商机")


def test_read_member_cannot_create_an_opportunity_on_the_customer(world):
    c = world.customers["rep.south1"]
    customer_member_set(actor=world.users["rep.south1"], customer=c, user=world.users["rep.east1"], access="read")
    with pytest.raises(Forbidden):
        opportunity_create(actor=world.users["rep.east1"], customer=c, name="越权商机")
    assert not Opportunity.objects.filter(name="越权商机").exists()


def test_move_stage_changes_probability_and_records_before_after(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    moved = opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["demo"], version=opp.version)
    assert moved.stage == world.stages["demo"] and moved.probability == 40
    assert moved.version == opp.version + 1
    assert moved.closed_at is None
    event = list(history_for(opp))[-1]
    assert event.action == "stage_change"
    assert event.changes["stage"] == [world.stages["qualify"].pk, world.stages["demo"].pk]
    assert event.changes["probability"] == [10, 40]


def test_moving_to_lost_needs_a_reason(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    with pytest.raises(ValidationFailed) as exc:
        opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["lost"])
    assert "loss_reason" in exc.value.errors
    with pytest.raises(ValidationFailed):
        opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["lost"], loss_reason="bored")
    assert fresh(opp).stage == world.stages["qualify"]
    lost = opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["lost"],
                                  loss_reason="competitor", loss_note="对手降价")
    assert (lost.loss_reason, lost.loss_note, lost.probability) == ("competitor", "对手降价", 0)
    assert lost.closed_at is not None


def test_a_loss_reason_on_an_open_stage_is_rejected(world):
    with pytest.raises(ValidationFailed) as exc:
        opportunity_move_stage(actor=world.users["rep.east1"], opportunity=world.opps["rep.east1"],
                               stage=world.stages["demo"], loss_reason="competitor")
    assert "loss_reason" in exc.value.errors


def test_reopening_clears_loss_reason_and_closed_at(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["lost"], loss_reason="budget")
    reopened = opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["survey"])
    assert (reopened.loss_reason, reopened.closed_at) == ("", None)


def test_stage_of_another_pipeline_is_rejected(world):
    other = industry_template_apply(actor=None, code="saas_b2b", make_default=False)
    opp = world.opps["rep.east1"]
    with pytest.raises(ValidationFailed) as exc:
        opportunity_move_stage(actor=world.users["rep.east1"], opportunity=opp,
                               stage=other.stages.order_by("order")[1])
    assert "stage" in exc.value.errors
    assert fresh(opp).stage == world.stages["qualify"]


def test_stale_stage_move_changes_nothing(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["survey"], version=opp.version)
    n = AuditEvent.objects.count()
    with pytest.raises(StaleVersion) as exc:
        opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["demo"], version=opp.version)
    assert exc.value.current_version == opp.version + 1
    assert fresh(opp).stage == world.stages["survey"]
    assert AuditEvent.objects.count() == n


def test_moving_to_the_current_stage_is_a_no_op(world):
    opp = world.opps["rep.east1"]
    n = AuditEvent.objects.count()
    same = opportunity_move_stage(actor=world.users["rep.east1"], opportunity=opp, stage=world.stages["qualify"],
                                  version=opp.version)
    assert same.version == opp.version
    assert AuditEvent.objects.count() == n


def test_winning_makes_a_lead_customer_active_and_records_it(world):
    rep = world.users["rep.east1"]
    lead = customer_create(actor=rep, name="新线索医院", status="lead")
    opp = opportunity_create(actor=rep, customer=lead, name="首单")
    opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["won"])
    lead.refresh_from_db()
    assert lead.status == "active"
    assert lead.version == 2  # others editing with the old version must get a conflict
    last = list(history_for(lead))[-1]
    assert last.changes == {"status": ["lead", "active"]}
    assert last.actor == rep
    assert verify().ok


def test_winning_keeps_a_churned_or_active_customer_status(world):
    rep, c = world.users["rep.east1"], world.customers["rep.east1"]
    opportunity_move_stage(actor=rep, opportunity=world.opps["rep.east1"], stage=world.stages["won"])
    assert fresh(c).status == "active"
    assert [e.action for e in history_for(c)] == ["create"]


def test_others_cannot_move_or_edit(world):
    opp = world.opps["rep.east1"]
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["rep.east2"], access="read")
    for name in ["rep.east2", "finance", "rep.south1"]:
        with pytest.raises(Forbidden):
            opportunity_move_stage(actor=world.users[name], opportunity=opp, stage=world.stages["demo"])
        with pytest.raises(Forbidden):
            opportunity_update(actor=world.users[name], opportunity=opp, amount="1")
    moved = opportunity_move_stage(actor=world.users["manager.east"], opportunity=opp, stage=world.stages["demo"])
    assert moved.stage == world.stages["demo"]


def test_update_records_changes_and_checks_version(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    updated = opportunity_update(actor=rep, opportunity=opp, version=opp.version, amount="250000.5",
                                 expected_close_date=dt.date(2027, 6, 30))
    assert updated.amount == decimal.Decimal("250000.50") and updated.version == opp.version + 1
    assert list(history_for(opp))[-1].changes == {
        "amount": ["100000.00", "250000.50"], "expected_close_date": ["2027-03-01", "2027-06-30"]}
    with pytest.raises(StaleVersion):
        opportunity_update(actor=rep, opportunity=opp, version=opp.version, amount="1")
    assert fresh(opp).amount == decimal.Decimal("250000.50")


def test_loss_reason_only_on_lost_opportunities(world):
    opp, rep = world.opps["rep.east1"], world.users["rep.east1"]
    with pytest.raises(ValidationFailed) as exc:
        opportunity_update(actor=rep, opportunity=opp, loss_reason="budget")
    assert "loss_reason" in exc.value.errors


# --- transfer (转移) ---------------------------------------------------------------------------------


def test_transfer_moves_open_opportunities_only_and_keeps_owner_history(world):
    east1, east2, mgr = world.users["rep.east1"], world.users["rep.east2"], world.users["manager.east"]
    c = world.customers["rep.east1"]
    open_opp = world.opps["rep.east1"]
    won_opp = opportunity_create(actor=east1, customer=c, name="已赢单")
    opportunity_move_stage(actor=east1, opportunity=won_opp, stage=world.stages["won"])
    n = customer_transfer(actor=mgr, customers=[c], to_user=east2, reason="离职交接")
    assert n == 1
    assert fresh(c).owner == east2 and c.version == 2
    assert fresh(open_opp).owner == east2
    assert fresh(won_opp).owner == east1
    change = OwnerChange.objects.get(customer=c)
    assert (change.from_user, change.to_user, change.actor, change.reason) == (east1, east2, mgr, "离职交接")
    assert not CustomerMember.objects.filter(customer=c, user=east1).exists()
    ev = list(history_for(c))[-1]
    assert (ev.action, ev.actor, ev.changes["owner"]) == ("transfer", mgr, [east1.pk, east2.pk])
    assert list(history_for(open_opp))[-1].changes == {"owner": [east1.pk, east2.pk]}
    assert [e.action for e in history_for(won_opp)] == ["create", "stage_change"]
    assert verify().ok


def test_transfer_can_keep_the_old_owner_as_member(world):
    east1, east2 = world.users["rep.east1"], world.users["rep.east2"]
    c = world.customers["rep.east1"]
    customer_member_set(actor=east1, customer=c, user=east2, access="read")
    customer_transfer(actor=east1, customers=[c], to_user=east2, keep_old_owner=True, old_owner_access="write")
    m = CustomerMember.objects.get(customer=c)
    assert (m.user, m.access) == (east1, "write")  # the new owner's old membership is gone


def test_transfer_is_all_or_nothing(world):
    mgr = world.users["manager.east"]
    cs = [world.customers["rep.east1"], world.customers["rep.south1"]]
    with pytest.raises(Forbidden):
        customer_transfer(actor=mgr, customers=cs, to_user=world.users["rep.east2"])
    assert fresh(cs[0]).owner == world.users["rep.east1"]
    assert not OwnerChange.objects.exists()


@pytest.mark.parametrize("to", ["finance", "presales"])
def test_transfer_only_to_active_sales_staff(world, to):
    with pytest.raises(ValidationFailed) as exc:
        customer_transfer(actor=world.users["admin"], customers=[world.customers["rep.east1"]],
                          to_user=world.users[to])
    assert "to_user" in exc.value.errors


def test_transfer_to_current_owner_is_skipped(world):
    n = customer_transfer(actor=world.users["admin"], customers=[world.customers["rep.east1"]],
                          to_user=world.users["rep.east1"])
    assert n == 0 and not OwnerChange.objects.exists()


def test_cross_role_member_cannot_transfer(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["presales"], access="write")
    with pytest.raises(Forbidden):
        customer_transfer(actor=world.users["presales"], customers=[c], to_user=world.users["rep.east2"])


def test_bulk_transfer_records_an_event_per_record(world):
    admin = world.users["admin"]
    target = world.users["rep.south1"]
    cs = [world.customers[n] for n in ["rep.east1", "rep.east2", "manager.east"]]
    n_before = AuditEvent.objects.filter(action="transfer").count()
    assert customer_transfer(actor=admin, customers=cs, to_user=target) == 3
    # 3 customers + their 3 open opportunities
    assert AuditEvent.objects.filter(action="transfer").count() - n_before == 6
    assert OwnerChange.objects.count() == 3
    assert verify().ok


def test_template_apply_is_idempotent(org):
    again = industry_template_apply(actor=None, code="medical_devices")
    assert again.pk == org.pipeline.pk
    assert again.stages.count() == 7
    with pytest.raises(ValidationFailed):
        industry_template_apply(actor=None, code="no_such_template")


def test_transfer_to_a_deactivated_user_names_the_field_and_changes_nothing(world):
    c = world.customers["rep.east1"]
    target = world.users["rep.east2"]
    target.is_active = False
    target.save(update_fields=["is_active"])
    n_events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        customer_transfer(actor=world.users["manager.east"], customers=[c], to_user=target)
    assert set(exc.value.errors) == {"to_user"}
    assert fresh(c).owner == world.users["rep.east1"]
    assert not OwnerChange.objects.exists() and AuditEvent.objects.count() == n_events


@pytest.mark.parametrize("actor, owner, allowed", [
    ("rep.east1", "rep.east2", False), ("manager.east", "rep.east2", True), ("manager.east", "rep.south1", False),
])
def test_opportunity_owner_must_be_one_the_actor_may_assign(world, actor, owner, allowed):
    kwargs = {"actor": world.users[actor], "customer": world.customers["rep.east1"], "owner": world.users[owner],
              "name": "指定负责人商机", "amount": "1000"}
    if allowed:
        assert opportunity_create(**kwargs).owner == world.users[owner]
        return
    with pytest.raises(ValidationFailed) as exc:
        opportunity_create(**kwargs)
    assert set(exc.value.errors) == {"owner"}
    assert not Opportunity.objects.filter(name="指定负责人商机").exists()
