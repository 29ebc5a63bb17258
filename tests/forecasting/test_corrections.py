"""Data corrections (R3): manager AND finance BP must approve; either may reject; no self-approval."""

from __future__ import annotations

import datetime as dt

import pytest

from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.forecasting import services
from tuijin.forecasting.models import CorrectionRequest
from tuijin.notify.models import Notification
from tuijin.org.services import user_create

from .helpers import D, future, submitted_report, today


@pytest.fixture
def request_(world):
    report = submitted_report(world)
    ln = report.lines.get()
    req = services.correction_request_create(
        actor=world.users["rep.east1"], report=report, reason="金额录错一位",
        items=[{"line_id": ln.pk, "amount": "10000", "confidence": "likely"}],
    )
    return report, ln, req


def test_request_changes_nothing_and_notifies_manager_and_finance(world, request_):
    report, ln, req = request_
    ln.refresh_from_db()
    assert ln.amount == D("100000.00") and ln.corrected_at is None
    assert req.status == "pending"
    notified = set(Notification.objects.filter(kind="forecast_correction").values_list("recipient__username",
                                                                                      flat=True))
    assert notified == {"manager.east", "finance"}


def test_one_approval_does_not_apply(world, request_):
    report, ln, req = request_
    services.correction_approve(actor=world.users["manager.east"], correction=req)
    ln.refresh_from_db()
    req.refresh_from_db()
    assert req.status == "pending" and req.manager_approver == world.users["manager.east"]
    assert ln.amount == D("100000.00") and ln.original_amount is None


def test_both_approvals_apply_atomically_and_keep_the_original(world, request_):
    report, ln, req = request_
    services.correction_approve(actor=world.users["finance"], correction=req)
    assert CorrectionRequest.objects.get(pk=req.pk).status == "pending"
    services.correction_approve(actor=world.users["manager.east"], correction=req)
    ln.refresh_from_db()
    req.refresh_from_db()
    assert req.status == "applied" and req.applied_at
    assert (ln.amount, ln.confidence) == (D("10000.00"), "likely")
    assert (ln.original_amount, ln.original_confidence) == (D("100000.00"), "commit")
    assert ln.expected_sign_date == ln.original_expected_sign_date
    report.refresh_from_db()
    assert report.status == "submitted"
    trail = [e.action for e in history_for(report)]
    assert trail[-2:] == ["correction_request", "correction_apply"]
    apply = history_for(report).last()
    assert apply.changes[f"lines[{ln.position}].amount"] == ["100000.00", "10000.00"]
    assert [e.action for e in history_for(req)] == ["create", "approve_finance", "approve_manager", "apply"]
    assert Notification.objects.filter(recipient=world.users["rep.east1"], kind="forecast_correction_result").exists()


def test_director_above_the_manager_counts_as_the_sales_manager(world, request_):
    _report, ln, req = request_
    services.correction_approve(actor=world.users["director"], correction=req)
    services.correction_approve(actor=world.users["finance"], correction=req)
    ln.refresh_from_db()
    assert ln.amount == D("10000.00")


def test_two_managers_do_not_make_two_approvals(world, request_):
    _report, ln, req = request_
    services.correction_approve(actor=world.users["manager.east"], correction=req)
    with pytest.raises(ValidationFailed):
        services.correction_approve(actor=world.users["director"], correction=req)
    ln.refresh_from_db()
    assert ln.amount == D("100000.00")


def test_requester_cannot_approve_own_request(world):
    # A manager files a report too; his own correction needs his manager (director) and finance.
    mgr = world.users["manager.east"]
    report = submitted_report(world, "manager.east")
    req = services.correction_request_create(actor=mgr, report=report, reason="日期错",
                                             items=[{"line_id": report.lines.get().pk,
                                                     "expected_sign_date": future(20)}])
    with pytest.raises(Forbidden) as exc:
        services.correction_approve(actor=mgr, correction=req)
    assert "自己" in str(exc.value)
    with pytest.raises(Forbidden):
        services.correction_approve(actor=world.users["rep.east1"], correction=CorrectionRequest.objects.get())
    assert CorrectionRequest.objects.get().manager_approver is None


def test_unrelated_people_cannot_approve(world, request_):
    _report, _ln, req = request_
    for username in ("manager.south", "rep.east2", "legal"):
        with pytest.raises(Forbidden):
            services.correction_approve(actor=world.users[username], correction=req)


def test_rejection_keeps_the_original_and_needs_a_reason(world, request_):
    _report, ln, req = request_
    services.correction_approve(actor=world.users["manager.east"], correction=req)
    with pytest.raises(ValidationFailed) as exc:
        services.correction_reject(actor=world.users["finance"], correction=req, reason=" ")
    assert "reason" in exc.value.errors
    services.correction_reject(actor=world.users["finance"], correction=req, reason="合同金额与报价单一致，无需修正")
    req.refresh_from_db()
    ln.refresh_from_db()
    assert req.status == "rejected" and req.rejected_by == world.users["finance"]
    assert ln.amount == D("100000.00") and ln.original_amount is None and ln.corrected_at is None
    with pytest.raises(ValidationFailed):
        services.correction_approve(actor=world.users["finance"], correction=req)
    assert Notification.objects.filter(recipient=world.users["rep.east1"], title__contains="驳回").exists()


def test_request_validation(world):
    rep = world.users["rep.east1"]
    draft = services.report_create(actor=rep, summary="x")
    with pytest.raises(ValidationFailed) as exc:
        services.correction_request_create(actor=rep, report=draft, reason="r", items=[])
    assert "report" in exc.value.errors
    report = submitted_report(world, "rep.east2")
    ln = report.lines.get()
    with pytest.raises(Forbidden):
        services.correction_request_create(actor=world.users["manager.east"], report=report, reason="r",
                                           items=[{"line_id": ln.pk, "amount": "1"}])
    e2 = world.users["rep.east2"]
    with pytest.raises(ValidationFailed) as exc:
        services.correction_request_create(actor=e2, report=report, reason="", items=[
            {"line_id": ln.pk, "amount": "-1"},
            {"line_id": 999999, "amount": "1"},
            {"line_id": ln.pk, "expected_sign_date": (today() - dt.timedelta(days=3)).isoformat()},
        ])
    errors = exc.value.errors
    assert {"reason", "items[0].amount", "items[1].line_id", "items[2].line_id"} <= set(errors)
    with pytest.raises(ValidationFailed) as exc:
        services.correction_request_create(actor=e2, report=report, reason="r", items=[{"line_id": ln.pk,
                                                                                       "amount": "100000"}])
    assert "相同" in exc.value.errors["items[0].amount"][0]
    assert not CorrectionRequest.objects.exists()
    services.correction_request_create(actor=e2, report=report, reason="r", items=[{"line_id": ln.pk, "amount": "5"}])
    with pytest.raises(ValidationFailed) as exc:
        services.correction_request_create(actor=e2, report=report, reason="r2",
                                           items=[{"line_id": ln.pk, "amount": "6"}])
    assert "待审批" in exc.value.errors["report"][0]


def test_any_active_finance_user_is_a_finance_bp(world, request_):
    _report, ln, req = request_
    second = user_create(actor=None, username="finance2", password="pw-xyz-12345", role="finance",
                         display_name="钱财务")
    services.correction_approve(actor=second, correction=req)
    services.correction_approve(actor=world.users["manager.east"], correction=req)
    ln.refresh_from_db()
    assert ln.amount == D("10000.00")
