"""`tuijin demo`: the generated org, logins, visibility, pipeline history, determinism and the change trail."""

from __future__ import annotations

import datetime as dt
import io
import random
import re

import pytest
import time_machine
from django.conf import settings
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction
from django.db.models import Max, Min, Sum
from django.utils import timezone

from tuijin.core import audit
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Contact, Customer, CustomerMember, OwnerChange
from tuijin.customers.normalize import credit_code_is_valid, normalize_name
from tuijin.customers.selectors import customer_list
from tuijin.demo.generate import DemoError, _plan, generate
from tuijin.demo.org import LOGINS
from tuijin.followups.models import Activity
from tuijin.org.models import User
from tuijin.pipeline.models import Opportunity, Stage
from tuijin.pipeline.services import industry_templates

SMALL = {"reps": 5, "customers": 30, "months": 2, "seed": 7}


@pytest.fixture
def demo(db):
    return generate(**SMALL)


def fingerprint() -> dict:
    """What must be identical for the same seed on the same day."""
    return {
        "users": sorted(User.objects.values_list("username", "display_name", "role")),
        "customers": sorted(Customer.objects.values_list("name", "owner__username", "city", "credit_code")),
        "contacts": sorted(Contact.objects.values_list("name", "mobile")),
        "opps": sorted(
            (name, str(amount), stage, str(created), str(progress))
            for name, amount, stage, created, progress in Opportunity.objects.values_list(
                "name", "amount", "stage__code", "created_at", "last_progress_at")
        ),
        "amount": Opportunity.objects.aggregate(s=Sum("amount"))["s"],
        "activities": sorted((str(w), s, c) for w, s, c in Activity.objects.values_list(
            "occurred_at", "subject", "conclusion")),
    }


def test_documented_logins_authenticate_with_demo_password(demo):
    password = settings.TUIJIN_DEMO_PASSWORD
    for username, role, display, _unit, _manager in LOGINS:
        user = authenticate(username=username, password=password)
        assert user is not None, username
        assert (user.role, user.display_name) == (role, display)
    assert authenticate(username="rep.east1", password="wrong") is None
    assert "rep.east1" in demo and "TUIJIN_DEMO_PASSWORD" in demo and "tuijin-demo" in demo


def test_extra_reps_fill_teams_and_north_gets_a_manager(demo):
    reps = User.objects.filter(role=User.Role.REP)
    assert reps.count() == SMALL["reps"]
    extra = User.objects.filter(username__in=["rep.south2", "rep.north1"]).select_related("org_unit", "manager")
    assert {u.username: (u.org_unit.kind, u.manager.username) for u in extra} == {
        "rep.south2": ("team", "manager.south"), "rep.north1": ("team", "manager.north"),
    }
    north = User.objects.get(username="manager.north")
    assert north.role == User.Role.MANAGER and north.manager.username == "director"
    for u in User.objects.filter(username__in=["rep.south2", "rep.north1"]):
        assert authenticate(username=u.username, password=settings.TUIJIN_DEMO_PASSWORD) is not None
        assert re.fullmatch(r"[\u4e00-\u9fff]{2,3}", u.display_name)


def check_visibility_follows_the_org():
    users = {u.username: u for u in User.objects.all()}
    rep_ids = set(customer_list(user=users["rep.east1"]).values_list("pk", flat=True))
    mgr_ids = set(customer_list(user=users["manager.east"]).values_list("pk", flat=True))
    south_ids = set(Customer.objects.filter(owner=users["rep.south1"]).values_list("pk", flat=True))
    assert Customer.objects.filter(owner=users["rep.east1"]).exists()
    assert rep_ids < mgr_ids
    assert south_ids and not (south_ids & mgr_ids)
    # Every documented sales login has customers of its own to show.
    for username in ["rep.east1", "rep.east2", "rep.south1", "manager.east", "manager.south"]:
        assert customer_list(user=users[username]).exists(), username


def test_visibility_follows_the_org(demo):
    check_visibility_follows_the_org()


def test_customers_and_contacts_are_realistic(demo):
    customers = list(Customer.objects.select_related("owner__org_unit"))
    assert len(customers) == SMALL["customers"]
    names = [normalize_name(c.name) for c in customers]
    assert len(set(names)) == len(names)
    codes = [c.credit_code for c in customers if c.credit_code]
    assert len(codes) >= 5 and all(credit_code_is_valid(code) for code in codes)
    region_of = {"华东大区": "华东", "华南大区": "华南", "华北大区": "华北"}
    for c in customers:
        unit = c.owner.org_unit
        while unit.kind != "region":
            unit = unit.parent
        assert c.region == region_of[unit.name], c.name
        assert c.city and c.industry and c.size_band and c.source
    statuses = {c.status for c in customers}
    assert Customer.Status.ACTIVE in statuses
    mobiles = list(Contact.objects.values_list("mobile", flat=True))
    assert len(mobiles) >= SMALL["customers"] and len(set(mobiles)) == len(mobiles)
    assert all(re.fullmatch(r"1[358]\d{9}", m) for m in mobiles)
    assert Contact.objects.exclude(title="").count() == len(mobiles)
    assert Contact.objects.filter(is_primary=True).count() == SMALL["customers"]


def test_pipeline_has_won_lost_and_stage_trail(demo):
    check_pipeline_has_won_lost_and_stage_trail()


def check_pipeline_has_won_lost_and_stage_trail():
    opps = Opportunity.objects.select_related("stage")
    assert opps.count() >= SMALL["customers"]
    won = opps.filter(stage__kind=Stage.Kind.WON)
    lost = opps.filter(stage__kind=Stage.Kind.LOST)
    assert won.exists() and lost.exists()
    assert not lost.filter(loss_reason="").exists()
    assert set(lost.values_list("loss_reason", flat=True)) <= set(Opportunity.LossReason.values)
    assert not opps.filter(stage__kind=Stage.Kind.OPEN).exclude(loss_reason="").exists()
    assert not opps.filter(stage__kind=Stage.Kind.OPEN, closed_at__isnull=False).exists()
    assert not opps.exclude(stage__kind=Stage.Kind.OPEN).filter(closed_at__isnull=True).exists()
    assert AuditEvent.objects.filter(object_type="pipeline.opportunity", action="stage_change").exists()
    assert all(o.amount > 0 and o.products.exists() for o in opps)
    # One transfer gives owner history; the old owner keeps read access as a team member.
    change = OwnerChange.objects.get()
    assert (change.from_user.username, change.to_user.username) == ("rep.east2", "rep.east1")
    assert CustomerMember.objects.filter(customer=change.customer, user__username="rep.east2").exists()


def test_history_spans_the_months_and_has_red_lights(demo):
    check_history_spans_the_months_and_has_red_lights()


def check_history_spans_the_months_and_has_red_lights():
    now = timezone.now()
    agg = Customer.objects.aggregate(first=Min("created_at"))
    assert agg["first"] < now - dt.timedelta(days=30 * (SMALL["months"] - 1))
    acts = Activity.objects.aggregate(first=Min("occurred_at"), last=Max("occurred_at"))
    assert acts["last"] < now and acts["first"] < now - dt.timedelta(days=30)
    assert Activity.objects.count() >= 6 * SMALL["customers"]
    for o in Opportunity.objects.all():
        assert o.created_at <= o.stage_entered_at <= o.last_progress_at <= now
    for c in Customer.objects.all():
        assert c.created_at <= c.last_contact_at < now

    # rep.east2 is the documented quiet rep (red light); rep.east1 progressed a deal within days.
    quiet = Opportunity.objects.filter(owner__username="rep.east2").aggregate(m=Max("last_progress_at"))["m"]
    assert quiet is None or now - quiet >= dt.timedelta(days=6)
    assert now - Activity.objects.filter(owner__username="rep.east2").aggregate(m=Max("occurred_at"))["m"] >= (
        dt.timedelta(days=6))
    busy = Opportunity.objects.filter(owner__username="rep.east1", stage__kind=Stage.Kind.OPEN).aggregate(
        m=Max("last_progress_at"))["m"]
    assert now - busy < dt.timedelta(days=5)


def test_change_trail_verifies(demo):
    result = audit.verify()
    assert result.ok, result.reason
    assert result.checked > SMALL["customers"]


def test_second_run_is_refused(demo):
    before = Customer.objects.count()
    with pytest.raises(DemoError):
        generate(**SMALL)
    assert Customer.objects.count() == before
    with pytest.raises(CommandError):
        call_command("demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("demo", "--if-empty", stdout=out)
    assert "already" in out.getvalue()


class _Rollback(Exception):
    pass


def _fingerprint_of_run(**kwargs) -> dict:
    """Generate inside a savepoint, fingerprint, roll back: the next run starts from an empty database.

    (A savepoint rather than `flush`: PostgreSQL refuses TRUNCATE inside the test's transaction.)
    """
    try:
        with transaction.atomic():
            generate(**kwargs)
            result = fingerprint()
            raise _Rollback
    except _Rollback:
        pass
    assert not User.objects.exists()
    return result


def test_same_seed_same_data_other_seed_differs(db):
    first = _fingerprint_of_run(**SMALL)
    assert _fingerprint_of_run(**SMALL) == first
    assert _fingerprint_of_run(**{**SMALL, "seed": 8})["customers"] != first["customers"]


@pytest.mark.parametrize("code", ["retail_fmcg", "saas_b2b"])
def test_other_templates(db, code):
    generate(reps=3, customers=12, months=1, seed=1, template=code)
    industries = {i["code"] for i in industry_templates()[code]["industries"]}
    assert set(Customer.objects.values_list("industry", flat=True)) <= industries
    assert Opportunity.objects.filter(pipeline__code=code).count() == Opportunity.objects.count() > 0
    assert audit.verify().ok


@pytest.mark.parametrize("kwargs", [{"reps": 2}, {"months": 0}, {"template": "no_such_template"}])
def test_bad_arguments(db, kwargs):
    with pytest.raises(DemoError):
        generate(**{**SMALL, **kwargs})
    assert not User.objects.exists()


def test_summary_labels_every_extension_count_in_the_active_language(db, monkeypatch):
    from django.utils import translation

    from tuijin.demo import generate as module

    seen = {}
    real_summary = module._summary

    def spy(result, **kwargs):
        seen.update(result.extra_counts)
        return real_summary(result, **kwargs)

    monkeypatch.setattr(module, "_summary", spy)
    with translation.override("zh-hans"):
        summary = generate(**SMALL)
    # Every count an extension reports has a label, and the summary shows labels, not the raw keys.
    assert seen and set(seen) <= set(module.EXTENSION_LABELS)
    for key in seen:
        assert key not in summary
    assert f"大客户复购商机 {seen['key-account reorders']}" in summary and "销售日报" in summary
    assert "用户名" in summary and re.search(r"rep\.east1 +销售 ", summary)
    with translation.override("en"):
        labels = {str(label) for label in module.EXTENSION_LABELS.values()}
    assert "key-account reorders" in labels and "daily reports" in labels


# --------------------------------------------------------------------------- the guarantees hold on every day

def _plan_for(day: dt.date, *, reps: int, customers: int, months: int, seed: int, code: str = "medical_devices"):
    tpl = industry_templates()[code]
    stages = [(st["code"], st["kind"]) for st in tpl["stages"]]
    prices = {p["code"]: int(p["list_price"]) for line in tpl["product_lines"] for p in line["products"]}
    return _plan(rng=random.Random(seed), reps=reps, customers=customers, months=months, tpl=tpl,
                 stages=stages, prices=prices, today=day)


def _assert_plan_guarantees(plan, day: dt.date) -> None:
    anchor = plan.planner.anchor()
    assert anchor.date() == day
    by_owner: dict[str, list] = {}
    for c in plan.customers:
        by_owner.setdefault(c.owner, []).append(c)
        # Nothing is planned for today or later: the history ends before the run, whatever the hour.
        assert c.created_at < anchor
        for a in c.activities:
            assert c.created_at <= a.when < anchor and a.when < a.logged_at < anchor
        for o in c.opps:
            assert c.created_at <= o.times[0] and o.times == sorted(o.times) and o.times[-1] < anchor
            assert o.times[-1] <= o.last_progress < anchor
    quiet_days = {o.username: o.quiet_days for o in plan.owners}
    for owner in plan.owners:
        assert by_owner.get(owner.username), (day, owner.username)
    # The quiet rep has a customer to hand over (the demo's one transfer) and is quiet.
    assert any(c.status != "churned" for c in by_owner["rep.east2"]), day
    for username in plan.quiet:
        assert quiet_days[username] >= 7
        for c in by_owner[username]:
            assert all(anchor - a.when >= dt.timedelta(days=6) for a in c.activities if a.actor == username), day
            assert all(anchor - o.last_progress >= dt.timedelta(days=6) for o in c.opps), day
    # Every other rep progressed a live deal within the last three days (green light unless chosen red).
    for owner in plan.owners:
        if owner.username in plan.quiet or not owner.username.startswith("rep."):
            continue
        live = [o for c in by_owner[owner.username] for o in c.opps if o.outcome == "open" and not o.stale]
        assert live and max(o.last_progress for o in live) >= anchor - dt.timedelta(days=3), (day, owner.username)


def test_plan_guarantees_hold_on_every_day_of_a_year():
    # Pure planning (no database) at the test size: every day from June 2027 to May 2028, so every weekday,
    # month end, the year boundary and the leap day 2028-02-29 are in.
    first = dt.date(2027, 6, 1)
    for day in (first + dt.timedelta(days=i) for i in range(366)):
        _assert_plan_guarantees(_plan_for(day, **SMALL), day)


@pytest.mark.parametrize("code", ["medical_devices", "retail_fmcg", "saas_b2b"])
def test_plan_guarantees_hold_for_the_default_and_smallest_sizes(code):
    for day in [dt.date(2026, 12, 1), dt.date(2027, 1, 1), dt.date(2027, 3, 1), dt.date(2027, 6, 5),
                dt.date(2027, 6, 7), dt.date(2028, 2, 29)]:
        _assert_plan_guarantees(_plan_for(day, reps=12, customers=300, months=6, seed=2026, code=code), day)
        _assert_plan_guarantees(_plan_for(day, reps=3, customers=12, months=1, seed=1, code=code), day)


# Instants (UTC) where the local (Asia/Shanghai) date and calendar differ from UTC's, plus a weekend,
# a Monday before working hours and a leap day.
FROZEN_INSTANTS = [
    "2026-11-30T17:00:00+00:00",  # 2026-12-01 01:00 in Shanghai (the day that broke round 1's generator)
    "2026-12-31T16:30:00+00:00",  # New Year's Day in Shanghai, New Year's Eve in UTC
    "2027-02-28T16:10:00+00:00",  # 1 March in Shanghai
    "2027-06-05T08:00:00+00:00",  # a Saturday
    "2027-06-06T16:05:00+00:00",  # Monday 00:05 in Shanghai, still Sunday in UTC
    "2028-02-29T12:00:00+00:00",  # leap day
]


@pytest.mark.parametrize("instant", FROZEN_INSTANTS)
def test_generated_demo_keeps_its_guarantees_at_frozen_instants(db, instant):
    with time_machine.travel(dt.datetime.fromisoformat(instant), tick=True):
        generate(**SMALL)
        check_visibility_follows_the_org()
        check_pipeline_has_won_lost_and_stage_trail()
        check_history_spans_the_months_and_has_red_lights()
        assert audit.verify().ok
