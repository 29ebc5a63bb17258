"""Demo data for grading and goal health (called by `tuijin demo` inside its transaction).

- Every customer is graded by the seeded rules.
- Most reps submitted their weekly alignment for the last three weeks (each
  submitted before that week's deadline); rep.east2 — the demo's quiet rep —
  has not submitted for this week, so managers see someone missing.
- Lights are evaluated once: rep.east2 (no opportunity progress for a week or
  more) is red, with one reminder to rep.east2 and a copy to manager.east.
"""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from tuijin.customers.grading_services import grade_recompute
from tuijin.org.models import User

from . import rules, selectors, services
from .models import WeeklyAlignment

QUIET_REP = "rep.east2"
BLOCKERS = [
    ("客户要求提供同类医院案例，需要市场部支持", "presales"),
    ("招标参数偏向竞品，需要售前调整技术方案", "presales"),
    ("付款条件超出授权，需要财务审批", "finance"),
    ("合同条款客户法务有异议", "legal"),
    ("设备到货周期过长，客户担心延期", "delivery"),
]


def load(*, rng: random.Random, months: int) -> dict[str, int]:
    now = timezone.now()
    graded = grade_recompute(now=now)
    this_week = rules.week_start_of(rules.local_today(now))
    weeks = [this_week - dt.timedelta(days=7 * k) for k in (2, 1, 0)]
    reps = list(User.objects.filter(is_active=True, role=User.Role.REP).order_by("username"))
    departments = WeeklyAlignment.Department.values
    alignments = blockers = 0
    for week in weeks:
        deadline = rules.deadline_for(week)
        for rep in reps:
            if week == this_week and rep.username == QUIET_REP:
                continue  # the missing one managers should notice
            if week != this_week and rep.username != QUIET_REP and rng.random() < 0.1:
                continue
            options = [o.pk for o in selectors.own_open_opportunities(rep=rep)[:8]]
            if not options:
                continue
            # Submitted during the Monday morning meeting, before the deadline.
            at = deadline - dt.timedelta(hours=rng.randint(1, 3), minutes=rng.randint(0, 59))
            top = rng.sample(options, min(len(options), rng.randint(1, 3)))
            need = rng.sample(departments, rng.randint(0, 2))
            new_blocker = None
            if rng.random() < 0.25:
                title, dept = rng.choice(BLOCKERS)
                new_blocker = {"title": title, "opportunity_id": top[0]}
                need = list(dict.fromkeys([dept, *need]))[:2]
                blockers += 1
            services.alignment_submit(
                actor=rep, week_start=week, opportunity_ids=top, departments=need,
                has_blocker=new_blocker is not None, new_blocker=new_blocker, now=at,
            )
            alignments += 1
    lights = services.lights_evaluate(now=now)
    return {
        "graded customers": graded["evaluated"], "weekly alignments": alignments, "blockers": blockers,
        "red lights": lights["red"], "yellow lights": lights["yellow"],
    }
