"""Demo data for daily reports: several weeks of submitted reports whose forecasts start out inflated
(optimistic "commit" lines that never sign, padded amounts) and get honest over time, so the accuracy
page shows a falling deviation like the article's 49% → 8.7%; plus acknowledged outliers, today's
reports for most reps (rep.east1 is left to file its own), one correction applied and one awaiting
finance.

History is written straight into the tables: the services only accept reports for recent days and
open opportunities, while the demo's deals have already closed. Today's reports and both corrections
go through the services (validation, change trail, notifications).
"""

from __future__ import annotations

import datetime as dt
import decimal
import random
from bisect import bisect_left
from collections import defaultdict

from django.utils import timezone

from tuijin.core.errors import ServiceError
from tuijin.followups.models import Activity
from tuijin.org.models import User
from tuijin.pipeline.models import Opportunity, Stage

from . import services
from .models import DailyReport, ForecastEvidence, ForecastLine
from .selectors import is_working_day

WEEKS = 12
OUTLIER_REASONS = [
    "客户新增院区，本次采购规模明显大于以往",
    "本单含三年维保服务，金额高于历史单笔",
    "客户只先采购一期设备，金额低于以往",
    "集团统一招采，合并了多家分院的需求",
]
SUMMARIES = [
    "上午拜访设备科，下午电话跟进两家医院的招标进度。",
    "演示效果良好，客户要求补充报价明细。",
    "跟进合同条款，法务意见已反馈客户。",
    "电话回访老客户，了解新院区采购计划。",
    "与售前一起做方案交流，客户技术负责人认可。",
]
CENT = decimal.Decimal("0.01")


def _at(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))


def load(*, rng: random.Random, months: int) -> dict[str, int]:
    today = timezone.localdate()
    weeks = max(2, min(WEEKS, months * 4))
    first = today - dt.timedelta(weeks=weeks)
    days = [first + dt.timedelta(days=i) for i in range((today - first).days) if is_working_day(
        first + dt.timedelta(days=i))]
    reps = list(User.objects.filter(role=User.Role.REP, is_active=True).order_by("username"))
    opps_by_rep: dict[int, list[Opportunity]] = defaultdict(list)
    for o in Opportunity.objects.filter(owner__in=reps).select_related("stage", "customer").order_by("id"):
        opps_by_rep[o.owner_id].append(o)
    acts: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for pk, customer_id, when in Activity.objects.exclude(conclusion="").order_by("occurred_at", "id").values_list(
            "pk", "customer_id", "occurred_at"):
        acts[customer_id].append((when, pk))
    baselines: dict[int, tuple] = {}

    def baseline(opp):
        if opp.pk not in baselines:
            baselines[opp.pk] = services.outlier_baseline(opp)
        return baselines[opp.pk]

    def evidence_for(customer_id: int, before: dt.datetime) -> int | None:
        rows = acts.get(customer_id, [])
        i = bisect_left(rows, (before, 0))
        return rows[i - 1][1] if i else None

    reports, line_specs = [], []
    for rep in reps:
        quiet = rep.username == "rep.east2"
        for day in days:
            if rng.random() < (0.25 if quiet else 0.06):
                continue  # not filed that day: shows up in "who has not filed"
            t = (day - first).days / max((today - first).days, 1)  # 0 = oldest, 1 = newest
            end = _at(day, 17)
            open_then = [o for o in opps_by_rep[rep.pk]
                         if o.created_at < end and (o.closed_at is None or o.closed_at > _at(day, 23, 59))]
            chosen = []
            for o in open_then:
                closing = o.stage.kind == Stage.Kind.WON and o.closed_at and \
                    timezone.localtime(o.closed_at).date() <= day + dt.timedelta(days=10)
                if closing:
                    signed = timezone.localtime(o.closed_at).date()
                    slip = 7 if rng.random() < 0.35 * (1 - t) else 0  # early: promised a week late or early
                    expected = max(day, signed + dt.timedelta(days=slip))
                    pad = decimal.Decimal(str(round(1 + 0.5 * (1 - t) ** 1.5 + rng.uniform(0, 0.05), 3)))
                    chosen.append((o, (o.amount * pad).quantize(CENT), expected, "commit"))
            optimistic = [o for o in open_then if all(o is not c[0] for c in chosen)]
            k = rng.choices([0, 1, 2, 3], weights=[0.1 + 3 * t, 0.05 + 0.35 * (1 - t), 0.35 * (1 - t),
                                                   0.15 * (1 - t)])[0]
            # Prefer deals whose size is typical for the customer: outlier warnings stay the exception.
            typical = [o for o in optimistic if not services.outlier_check(o.amount, baseline(o)[1])[1]]
            pool = typical if len(typical) >= k else optimistic
            for o in rng.sample(pool, min(k, len(pool))):
                # "The customer said maybe next week" reported as a likely signing.
                conf = "commit" if rng.random() < 0.6 * (1 - t) + 0.1 else "likely"
                expected = day + dt.timedelta(days=rng.randint(2, 9))
                chosen.append((o, (o.amount * decimal.Decimal("1.1")).quantize(CENT), expected, conf))
            rest = [o for o in optimistic if all(o is not c[0] for c in chosen)]
            if rest and rng.random() < 0.4:
                o = rng.choice(rest)
                chosen.append((o, o.amount, day + dt.timedelta(days=rng.randint(10, 40)), "upside"))
            submitted = _at(day, rng.choice([17, 18, 18, 19]), rng.randrange(0, 60, 5))
            specs = []
            for o, amount, expected, conf in chosen:
                ev = evidence_for(o.customer_id, end)
                if ev is None or amount <= 0:
                    continue
                specs.append((o, amount, expected, conf, ev))
            reports.append(DailyReport(rep=rep, date=day, summary=rng.choice(SUMMARIES), status="submitted",
                                       submitted_at=submitted))
            line_specs.append(specs)
    DailyReport.objects.bulk_create(reports, batch_size=500)
    lines, evidence_of = [], []
    for report, specs in zip(reports, line_specs, strict=True):
        for pos, (o, amount, expected, conf, ev) in enumerate(specs):
            basis, mean, count = baseline(o)
            deviation, outlier = services.outlier_check(amount, mean)
            lines.append(ForecastLine(
                report=report, position=pos, opportunity=o, amount=amount, expected_sign_date=expected,
                confidence=conf, baseline_basis=basis, baseline_mean=mean, baseline_count=count,
                deviation=deviation, is_outlier=outlier,
                outlier_reason=rng.choice(OUTLIER_REASONS) if outlier else "",
                outlier_acknowledged_at=report.submitted_at if outlier else None,
            ))
            evidence_of.append(ev)
    ForecastLine.objects.bulk_create(lines, batch_size=1000)
    ForecastEvidence.objects.bulk_create(
        [ForecastEvidence(line=ln, activity_id=ev) for ln, ev in zip(lines, evidence_of, strict=True)],
        batch_size=1000)
    counts = {"daily_reports": len(reports), "forecast_lines": len(lines)}
    counts["daily_reports_today"] = _today(rng, reps, today)
    counts["forecast_corrections"] = _corrections(rng)
    return counts


def _today(rng: random.Random, reps: list[User], today: dt.date) -> int:
    """Today's reports through the services; rep.east1 (the README's login) and one other rep have not filed."""
    if not is_working_day(today):
        return 0
    filed = 0
    skip = {"rep.east1", "rep.east2"}
    for rep in reps:
        if rep.username in skip:
            continue
        lines = []
        for o in Opportunity.objects.filter(owner=rep, stage__kind=Stage.Kind.OPEN).select_related(
                "customer").order_by("expected_close_date", "id")[:6]:
            ev = Activity.objects.filter(customer_id=o.customer_id, occurred_at__lt=timezone.now()).exclude(
                conclusion="").order_by("-occurred_at", "-id").values_list("pk", flat=True).first()
            if ev is None:
                continue
            basis, mean, _n = services.outlier_baseline(o)
            amount = o.amount if o.amount > 0 else decimal.Decimal("50000")
            _dev, outlier = services.outlier_check(amount, mean)
            lines.append({"opportunity_id": o.pk, "amount": amount, "confidence": rng.choice(["commit", "likely"]),
                          "expected_sign_date": today + dt.timedelta(days=rng.randint(3, 20)), "evidence_ids": [ev],
                          "outlier_reason": rng.choice(OUTLIER_REASONS) if outlier else ""})
            if len(lines) == 2:
                break
        try:
            report = services.report_create(actor=rep, date=today, summary=rng.choice(SUMMARIES), lines=lines)
            services.report_submit(actor=rep, report=report)
            filed += 1
        except ServiceError:
            continue  # a rep whose data does not fit simply has not filed today
    return filed


def _corrections(rng: random.Random) -> int:
    """One correction applied (manager then finance), one approved by the manager and awaiting finance."""
    rep = User.objects.filter(username="rep.east1").first()
    finance = User.objects.filter(role=User.Role.FINANCE, is_active=True).order_by("id").first()
    if rep is None or finance is None or rep.manager is None:
        return 0
    reports = list(DailyReport.objects.filter(rep=rep, status="submitted", lines__isnull=False)
                   .distinct().order_by("-date")[:6])
    made = 0
    for i, report in enumerate(reports[1:3]):
        line = report.lines.order_by("position").first()
        new_amount = (line.amount * decimal.Decimal("0.8")).quantize(CENT)
        reason = ["客户确认首期只采购部分设备，金额录入时未扣除二期", "录入时多算了维保费用"][i]
        req = services.correction_request_create(actor=rep, report=report, reason=reason,
                                                 items=[{"line_id": line.pk, "amount": new_amount}])
        services.correction_approve(actor=rep.manager, correction=req)
        if i == 0:
            services.correction_approve(actor=finance, correction=req)
        made += 1
    return made
