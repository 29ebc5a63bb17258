"""Services of daily reports: evidence rule, outlier check (±35% boundary, fallbacks), lock, bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import override_settings
from django.utils import timezone

from tuijin.core.audit import history_for
from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.forecasting import services
from tuijin.forecasting.errors import ReportLocked
from tuijin.forecasting.models import DailyReport, ForecastEvidence, ForecastLine

from .helpers import D, evidence, future, line, new_customer, open_deal, submitted_report, today, won_deal


def _nothing_saved():
    return not DailyReport.objects.exists() and not ForecastLine.objects.exists()


def test_report_with_evidence_submits_and_locks(world):
    report = submitted_report(world)
    assert report.status == "submitted" and report.submitted_at is not None
    ln = report.lines.get()
    assert list(ln.evidence.values_list("activity_id", flat=True)) == [world.activities["rep.east1"].pk]
    actions = [e.action for e in history_for(report)]
    assert actions == ["create", "line_add", "submit"]
    submit = history_for(report).last()
    assert submit.changes["status"] == ["draft", "submitted"]
    assert submit.changes["lines"][1][0]["evidence"] == [world.activities["rep.east1"].pk]


def test_line_without_evidence_cannot_be_submitted_and_error_names_the_line(world):
    rep = world.users["rep.east1"]
    c2 = new_customer(world, "rep.east1", "第二家医院")
    o2 = open_deal(world, "rep.east1", c2)
    report = services.report_create(actor=rep, summary="总结", lines=[line(world), line(world, evidence_ids=[],
                                                                                        opportunity_id=o2.pk)])
    with pytest.raises(ValidationFailed) as exc:
        services.report_submit(actor=rep, report=report)
    assert list(exc.value.errors) == ["lines[1].evidence_ids"]
    assert "第2行" in exc.value.errors["lines[1].evidence_ids"][0]
    report.refresh_from_db()
    assert report.status == "draft" and report.submitted_at is None


def test_evidence_from_another_customer_is_refused_naming_line_and_field(world):
    rep = world.users["rep.east1"]
    other = new_customer(world, "rep.east1", "别的医院")
    wrong = evidence(world, "rep.east1", other)
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, summary="x", lines=[line(world), line(world, evidence_ids=[wrong.pk])])
    assert "lines[1].evidence_ids" in exc.value.errors
    assert "其他客户" in exc.value.errors["lines[1].evidence_ids"][0]
    assert _nothing_saved()


def test_evidence_dated_after_the_report_is_refused(world):
    rep = world.users["rep.east1"]
    customer = world.customers["rep.east1"]
    # A report for yesterday cannot lean on a conversation that happened today.
    yesterday = today() - dt.timedelta(days=1)
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, date=yesterday, lines=[line(world, expected_sign_date=future())])
    assert "晚于日报" in exc.value.errors["lines[0].evidence_ids"][0]
    assert _nothing_saved()
    old = evidence(world, "rep.east1", customer, when=timezone.now() - dt.timedelta(days=2))
    report = services.report_create(actor=rep, date=yesterday, summary="补交",
                                    lines=[line(world, evidence_ids=[old.pk])])
    assert services.report_submit(actor=rep, report=report).status == "submitted"


def test_evidence_needs_a_key_conclusion(world):
    rep = world.users["rep.east1"]
    bare = evidence(world, "rep.east1", world.customers["rep.east1"], conclusion="")
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, lines=[line(world, evidence_ids=[bare.pk])])
    assert "关键结论" in exc.value.errors["lines[0].evidence_ids"][0]


def test_evidence_of_a_customer_the_rep_cannot_see_does_not_exist_for_them(world):
    rep = world.users["rep.east1"]
    foreign = world.activities["rep.south1"]
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, lines=[line(world, evidence_ids=[foreign.pk])])
    assert "不存在" in exc.value.errors["lines[0].evidence_ids"][0]


@pytest.mark.parametrize("amount, message", [
    ("-5", "负数"), ("abc", "数字"), ("", "请填写"), ("0", "大于0"), ("NaN", "数字"), (True, "数字"),
])
def test_bad_amount_names_line_and_field_and_saves_nothing(world, amount, message):
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=world.users["rep.east1"], lines=[line(world, amount=amount)])
    assert message in exc.value.errors["lines[0].amount"][0]
    assert _nothing_saved()


def test_past_expected_date_is_refused(world):
    yesterday = (today() - dt.timedelta(days=1)).isoformat()
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=world.users["rep.east1"], lines=[line(world, expected_sign_date=yesterday)])
    assert "不能早于日报日期" in exc.value.errors["lines[0].expected_sign_date"][0]
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=world.users["rep.east1"], lines=[line(world, expected_sign_date="31/12/2027")])
    assert "lines[0].expected_sign_date" in exc.value.errors
    assert _nothing_saved()


def test_closed_or_someone_elses_opportunity_is_refused(world):
    rep = world.users["rep.east1"]
    won = won_deal(world, "rep.east1", world.customers["rep.east1"], 50000)
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, lines=[line(world, opportunity_id=won.pk)])
    assert "已关闭" in exc.value.errors["lines[0].opportunity_id"][0]
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, lines=[line(world, opportunity_id=world.opps["rep.east2"].pk)])
    assert "不是你负责的" in exc.value.errors["lines[0].opportunity_id"][0]
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, lines=[line(world, opportunity_id=999999)])
    assert "不是你负责的" in exc.value.errors["lines[0].opportunity_id"][0]
    assert _nothing_saved()


def test_opportunity_closed_after_the_line_was_added_blocks_submit(world):
    rep = world.users["rep.east1"]
    report = services.report_create(actor=rep, summary="x", lines=[line(world)])
    opp = world.opps["rep.east1"]
    from tuijin.pipeline.services import opportunity_move_stage
    opportunity_move_stage(actor=rep, opportunity=opp, stage=world.stages["lost"], loss_reason="budget")
    with pytest.raises(ValidationFailed) as exc:
        services.report_submit(actor=rep, report=report)
    assert "已关闭" in exc.value.errors["lines[0].opportunity_id"][0]


def test_duplicate_report_for_the_same_day_is_refused(world):
    rep = world.users["rep.east1"]
    services.report_create(actor=rep, summary="第一份")
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=rep, summary="第二份")
    assert "已存在" in exc.value.errors["date"][0]
    assert DailyReport.objects.count() == 1


def test_future_and_too_old_dates_are_refused(world):
    rep = world.users["rep.east1"]
    for day in (today() + dt.timedelta(days=1), today() - dt.timedelta(days=30)):
        with pytest.raises(ValidationFailed) as exc:
            services.report_create(actor=rep, date=day)
        assert "date" in exc.value.errors
    assert not DailyReport.objects.exists()


def test_same_opportunity_twice_is_refused(world):
    with pytest.raises(ValidationFailed) as exc:
        services.report_create(actor=world.users["rep.east1"], lines=[line(world), line(world)])
    assert "lines[1].opportunity_id" in exc.value.errors


def test_only_sales_people_file_reports(world):
    with pytest.raises(Forbidden):
        services.report_create(actor=world.users["finance"])


# --- outlier check ------------------------------------------------------------------------------------

@pytest.fixture
def history(world):
    """The rep's customer has signed 80,000 and 120,000 before: mean 100,000."""
    customer = world.customers["rep.east1"]
    won_deal(world, "rep.east1", customer, 80000)
    won_deal(world, "rep.east1", customer, 120000)
    return world


@pytest.mark.parametrize("amount, warns", [
    ("135000.00", False), ("135000.01", True), ("65000.00", False), ("64999.99", True), ("100000", False),
])
def test_outlier_boundary_exactly_35_percent_passes(history, amount, warns):
    report = services.report_create(actor=history.users["rep.east1"], summary="x", lines=[line(history, amount=amount)])
    ln = report.lines.get()
    assert ln.baseline_basis == "customer" and ln.baseline_mean == D("100000.00") and ln.baseline_count == 2
    assert ln.is_outlier is warns
    assert ln.deviation == ((D(amount) - 100000) / 100000).quantize(D("0.0001"))


def test_threshold_is_configurable(history):
    with override_settings(TUIJIN_FORECAST_DEVIATION=0.5):
        report = services.report_create(actor=history.users["rep.east1"], lines=[line(history, amount="140000")])
    assert report.lines.get().is_outlier is False


def test_unacknowledged_outlier_blocks_submit_then_reason_lets_it_through(history):
    rep = history.users["rep.east1"]
    report = services.report_create(actor=rep, summary="x", lines=[line(history, amount="280000")])
    with pytest.raises(ValidationFailed) as exc:
        services.report_submit(actor=rep, report=report)
    msg = exc.value.errors["lines[0].outlier_reason"][0]
    assert "+180.0%" in msg and "100,000.00" in msg
    ln = report.lines.get()
    services.line_update(actor=rep, line=ln, outlier_reason="客户新建院区，采购量翻倍")
    report = services.report_submit(actor=rep, report=report)
    ln.refresh_from_db()
    # The warning and the reason stay on the line.
    assert ln.is_outlier and ln.outlier_reason == "客户新建院区，采购量翻倍" and ln.outlier_acknowledged_at
    assert report.status == "submitted"


def test_changing_the_amount_clears_an_old_acknowledgement(history):
    rep = history.users["rep.east1"]
    report = services.report_create(actor=rep, summary="x", lines=[line(history, amount="280000",
                                                                        outlier_reason="大单")])
    ln = report.lines.get()
    assert ln.outlier_reason == "大单"
    ln = services.line_update(actor=rep, line=ln, amount="300000")
    assert ln.is_outlier and ln.outlier_reason == ""


def test_no_customer_history_falls_back_to_segment_mean(world):
    rep = world.users["rep.east1"]
    peer = new_customer(world, "rep.east2", "同类医院", industry="hospital_private", size_band="medium")
    won_deal(world, "rep.east2", peer, 200000)
    mine = new_customer(world, "rep.east1", "新客户医院", industry="hospital_private", size_band="medium")
    opp = open_deal(world, "rep.east1", mine)
    act = evidence(world, "rep.east1", mine)
    report = services.report_create(actor=rep, lines=[line(world, opportunity_id=opp.pk, amount="100000",
                                                           evidence_ids=[act.pk])])
    ln = report.lines.get()
    assert (ln.baseline_basis, ln.baseline_mean, ln.is_outlier) == ("segment", D("200000.00"), True)
    assert ln.deviation == D("-0.5000")


def test_no_history_at_all_means_no_check(world):
    mine = new_customer(world, "rep.east1", "全新行业客户", industry="new_industry", size_band="small")
    opp = open_deal(world, "rep.east1", mine)
    act = evidence(world, "rep.east1", mine)
    report = services.report_create(actor=world.users["rep.east1"],
                                    lines=[line(world, opportunity_id=opp.pk, amount="9999999", evidence_ids=[act.pk])])
    ln = report.lines.get()
    assert (ln.baseline_basis, ln.baseline_mean, ln.deviation, ln.is_outlier) == ("none", None, None, False)


# --- lock ---------------------------------------------------------------------------------------------

def test_submitted_report_refuses_every_change(world):
    rep = world.users["rep.east1"]
    report = submitted_report(world)
    ln = report.lines.get()
    c2 = new_customer(world, "rep.east1", "锁后客户")
    o2 = open_deal(world, "rep.east1", c2)
    attempts = [
        lambda: services.report_update(actor=rep, report=report, summary="改了"),
        lambda: services.line_add(actor=rep, report=report, opportunity_id=o2.pk, amount="1", confidence="commit",
                                  expected_sign_date=future(), evidence_ids=[]),
        lambda: services.line_update(actor=rep, line=ln, amount="1"),
        lambda: services.line_remove(actor=rep, line=ln),
        lambda: services.report_submit(actor=rep, report=report),
    ]
    for attempt in attempts:
        with pytest.raises(ReportLocked):
            attempt()
    ln.refresh_from_db()
    assert ln.amount == D("100000.00") and ForecastEvidence.objects.filter(line=ln).count() == 1
    report.refresh_from_db()
    assert report.summary == "拜访两家医院"


def test_a_stale_in_memory_draft_cannot_sneak_past_the_lock(world):
    rep = world.users["rep.east1"]
    report = services.report_create(actor=rep, summary="x", lines=[line(world)])
    stale = DailyReport.objects.get(pk=report.pk)  # read while still a draft
    services.report_submit(actor=rep, report=report)
    with pytest.raises(ReportLocked):
        services.report_update(actor=rep, report=stale, summary="偷偷改")


def test_manager_cannot_edit_a_reps_draft(world):
    report = services.report_create(actor=world.users["rep.east1"], summary="x")
    with pytest.raises(Forbidden):
        services.report_update(actor=world.users["manager.east"], report=report, summary="经理改")


def test_line_edits_are_in_the_change_trail(world):
    rep = world.users["rep.east1"]
    report = services.report_create(actor=rep, summary="x", lines=[line(world)])
    ln = report.lines.get()
    services.line_update(actor=rep, line=ln, amount="90000", confidence="likely")
    services.line_remove(actor=rep, line=ln)
    events = list(history_for(report))
    upd = next(e for e in events if e.action == "line_update")
    assert upd.changes["amount"] == ["100000.00", "90000.00"] and upd.changes["confidence"] == ["commit", "likely"]
    assert events[-1].action == "line_remove" and events[-1].changes["line"] == [ln.pk, None]


def test_reminders_go_to_reps_without_a_submitted_report_once(world):
    from tuijin.notify.models import Notification

    monday = dt.date(2026, 3, 2)
    DailyReport.objects.create(rep=world.users["rep.east1"], date=monday, status="submitted")
    DailyReport.objects.create(rep=world.users["rep.east2"], date=monday, status="draft")
    assert services.report_reminders_send(day=monday) == 2
    assert services.report_reminders_send(day=monday) == 0
    reminded = set(Notification.objects.filter(kind="forecast_report_missing").values_list(
        "recipient__username", flat=True))
    assert reminded == {"rep.east2", "rep.south1"}
    assert services.report_reminders_send(day=dt.date(2026, 3, 1)) == 0  # Sunday



def test_reminder_task_acts_only_at_18_local(world, monkeypatch):
    from tuijin.forecasting import tasks
    from tuijin.notify.models import Notification

    tuesday = dt.date(2026, 3, 3)
    for hour, expected in ((10, None), (18, 3)):
        moment = timezone.make_aware(dt.datetime.combine(tuesday, dt.time(hour, 5)))
        monkeypatch.setattr(tasks.timezone, "localtime", lambda *a, m=moment: m)
        assert tasks.remind_missing_reports.call_local() == expected
    assert Notification.objects.filter(kind="forecast_report_missing").count() == 3
