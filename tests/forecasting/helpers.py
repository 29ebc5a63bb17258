"""Builders shared by the forecasting tests: won history, evidence, a ready-to-submit report."""

from __future__ import annotations

import datetime as dt
import decimal

from django.utils import timezone

from tuijin.customers.services import customer_create
from tuijin.followups.services import activity_create
from tuijin.forecasting import services
from tuijin.pipeline.services import opportunity_create, opportunity_move_stage

TODAY = None


def today() -> dt.date:
    return timezone.localdate()


def future(days: int = 10) -> str:
    return (today() + dt.timedelta(days=days)).isoformat()


def won_deal(world, username: str, customer, amount) -> object:
    """A deal of `customer` signed (won) by `username`: history for the outlier model."""
    user = world.users[username]
    opp = opportunity_create(actor=user, customer=customer, name=f"已签{amount}", amount=str(amount))
    return opportunity_move_stage(actor=user, opportunity=opp, stage=world.stages["won"], version=opp.version)


def new_customer(world, username: str, name: str, **fields):
    return customer_create(actor=world.users[username], name=name, allow_duplicate=True, **fields)


def open_deal(world, username: str, customer, amount="100000", name="新商机"):
    return opportunity_create(actor=world.users[username], customer=customer, name=name, amount=str(amount))


def evidence(world, username: str, customer, *, conclusion="客户确认预算已批", when=None, opportunity=None):
    return activity_create(actor=world.users[username], customer=customer, kind="call", subject="电话沟通",
                           conclusion=conclusion, occurred_at=when, opportunity=opportunity)


def line(world, username="rep.east1", **over) -> dict:
    """Line data for the world's opportunity of `username`, backed by its activity."""
    data = {
        "opportunity_id": world.opps[username].pk, "amount": "100000", "expected_sign_date": future(),
        "confidence": "commit", "evidence_ids": [world.activities[username].pk],
    }
    data.update(over)
    return data


def submitted_report(world, username="rep.east1", **line_over):
    rep = world.users[username]
    report = services.report_create(actor=rep, summary="拜访两家医院", lines=[line(world, username, **line_over)])
    return services.report_submit(actor=rep, report=report)


D = decimal.Decimal
