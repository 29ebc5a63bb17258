"""Deterministic benchmark datasets at scales XS / S / M / L, loaded in bulk through the ORM.

Every scale has its own database (var/bench-<scale>.sqlite3, or a PostgreSQL
database named by --database-url), so the dev database is never touched. A
dataset is described by a fingerprint (generator version + scale parameters +
seed), stored with the data in a `bench_meta` table; a later run with the same
fingerprint reuses the data instead of generating it again.

Bulk-load path (why not the per-row services): at scale M the services would
write 1.1 million rows one transaction at a time. Here rows are planned from one
`random.Random(seed)` and written with `bulk_create` in batches inside one
transaction, with explicit primary keys so related rows can be planned without
reading back ids. The change trail stays valid (`tuijin audit verify` passes):
every user, customer, contact and opportunity gets the same "create" event
(same fields, same before/after shape) its service would record, appended in
bulk with `tuijin.core.audit.record_many` (actor: the loader account
`bench.admin`, as for an import). Activities are the exception: one
"bulk_load" event per batch of 5,000 (model, id range, count, SHA-256 over the
rows), because a million per-record events would take most of scale M's
5-minute generation budget. Not produced at all: stage-move events for
opportunities created directly in a later stage, and owner history.

Dates are anchored at the start of the generation day and span 24 months, skewed
towards the recent past so "this week" and "this month" figures are non-empty.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass

from django.db import connection, transaction
from django.utils import timezone

GENERATOR_VERSION = 4
SEED = 20261126
BATCH = 5000


@dataclass(frozen=True)
class Scale:
    name: str
    reps: int
    customers: int
    opportunities: int
    activities: int
    import_rows: int  # customers in the Excel import scenario
    repeat: int  # timed runs per scenario (after warm-up)
    heavy_repeat: int  # timed runs for whole-dataset scenarios (import, audit verify, tick)


SCALES = {
    "XS": Scale("XS", 4, 60, 200, 600, import_rows=40, repeat=3, heavy_repeat=1),
    "S": Scale("S", 20, 2_000, 10_000, 50_000, import_rows=2_000, repeat=15, heavy_repeat=3),
    "M": Scale("M", 200, 20_000, 100_000, 1_000_000, import_rows=100_000, repeat=15, heavy_repeat=1),
    "L": Scale("L", 2_000, 200_000, 1_000_000, 10_000_000, import_rows=100_000, repeat=10, heavy_repeat=1),
}

REGIONS = [
    ("华东", ["上海", "杭州", "苏州", "南京", "宁波"]),
    ("华南", ["广州", "深圳", "东莞", "佛山", "厦门"]),
    ("华北", ["北京", "天津", "石家庄", "太原", "济南"]),
    ("西南", ["成都", "重庆", "昆明", "贵阳", "南宁"]),
]
STEMS = ["瑞康", "仁和", "华美", "康泰", "博爱", "安泰", "益民", "德仁", "永康", "同心", "恒康", "济民",
         "爱康", "天佑", "明德", "嘉禾", "鼎盛", "远航", "华信", "中科", "新元", "东方", "金桥", "宏达"]
SUFFIXES = {
    "hospital_public": "人民医院", "hospital_private": "专科医院有限公司", "clinic": "门诊部",
    "distributor": "医疗器械有限公司", "lab": "医学检验实验室有限公司",
}
STAGE_WEIGHTS = {"qualify": 20, "survey": 15, "demo": 12, "tender": 10, "contract": 8, "won": 22, "lost": 13}
LOSS_REASONS = ["quote_delay", "solution_mismatch", "competitor", "customer_churn", "budget", "no_decision"]
KINDS = ["call", "wechat", "visit", "email", "meeting", "demo"]
KIND_WEIGHTS = [30, 25, 18, 10, 8, 9]
SUBJECTS = ["电话回访，了解需求进展", "微信沟通报价单", "拜访采购负责人", "邮件发送技术方案", "商务谈判会议",
            "产品演示", "现场调研使用场景", "电话确认合同条款"]
CONCLUSIONS = ["确认了交付周期", "客户对价格有顾虑", "预算已获批，等待采购流程", "竞争对手报价更低",
               "决策人认可方案", "约定下周再次拜访", ""]
SPAN_DAYS = 730


def fingerprint(scale: Scale) -> str:
    data = {"generator": GENERATOR_VERSION, "seed": SEED, **asdict(scale)}
    for key in ("import_rows", "repeat", "heavy_repeat"):  # scenario settings, not data
        data.pop(key)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- meta table


def _meta_table() -> None:
    with connection.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS bench_meta (key VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL)")


def meta_get() -> dict:
    _meta_table()
    with connection.cursor() as cur:
        cur.execute("SELECT key, value FROM bench_meta")
        return {k: json.loads(v) for k, v in cur.fetchall()}


def _meta_set(values: dict) -> None:
    _meta_table()
    with connection.cursor() as cur:
        for k, v in values.items():
            cur.execute("DELETE FROM bench_meta WHERE key = %s", [k])
            cur.execute("INSERT INTO bench_meta (key, value) VALUES (%s, %s)", [k, json.dumps(v)])


# --------------------------------------------------------------------------- helpers


@contextlib.contextmanager
def _historic_timestamps(*models):
    """Let bulk_create keep the planned created_at/updated_at instead of stamping "now"."""
    saved = []
    for model in models:
        for f in model._meta.concrete_fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                saved.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, now, now_add in saved:
            f.auto_now, f.auto_now_add = now, now_add


def _audit_creates(actor, objects, fields, extra=None) -> None:
    """The "create" events the services would record for these rows (same fields, same shape)."""
    from tuijin.core import audit

    entries = []
    for obj in objects:
        snap = audit.snapshot(obj, fields)
        if extra:
            snap.update(extra(obj))
        entries.append((obj, "create", audit.diff({}, snap), None, None, None))
    audit.record_many(actor=actor, entries=entries)


def _audit_bulk_load(actor, objects) -> None:
    """One "bulk_load" event per batch: which rows (id range, count) and a SHA-256 over their content.

    Used for activities only: 1,000,000 per-record events at scale M would take most of the 5-minute
    generation budget. The digest still ties the batch's rows to the trail.
    """
    from tuijin.core import audit

    digest = hashlib.sha256()
    for o in objects:
        digest.update(f"{o.pk}|{o.customer_id}|{o.opportunity_id}|{o.owner_id}|{o.kind}|{o.occurred_at.isoformat()}|"
                      f"{o.subject}|{o.conclusion}\n".encode())
    first, last = objects[0].pk, objects[-1].pk
    model = objects[0]._meta.label_lower
    audit.record_many(actor=actor, entries=[(None, "bulk_load", {
        "model": [None, model], "count": [None, len(objects)], "first_id": [None, first], "last_id": [None, last],
        "rows_sha256": [None, digest.hexdigest()],
    }, model, f"{first}-{last}", f"bulk load of {len(objects)} rows ({model})")])


def _next_id(model) -> int:
    last = model.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


# --------------------------------------------------------------------------- generation


def generate(scale: Scale, *, log=print) -> dict:
    """Load the dataset into the (migrated, empty) current database; returns the meta record."""
    from django.contrib.auth.hashers import make_password

    from tuijin.customers.models import Contact, Customer, CustomerMember
    from tuijin.customers.normalize import normalize_name, normalize_phone
    from tuijin.customers.services import CONTACT_FIELDS, CUSTOMER_AUDIT_FIELDS
    from tuijin.followups.models import Activity
    from tuijin.org.models import User
    from tuijin.org.services import orgunit_create
    from tuijin.pipeline.models import Opportunity, Product
    from tuijin.pipeline.services import OPP_FIELDS, industry_template_apply

    rng = random.Random(SEED)
    anchor = timezone.make_aware(dt.datetime.combine(timezone.localdate(), dt.time.min))
    timings: dict[str, float] = {}
    t_all, cpu_all = time.perf_counter(), time.process_time()

    def ago(days: float) -> dt.datetime:
        # Whole minutes: amounts of data that look typed, and equal on SQLite and PostgreSQL.
        return anchor - dt.timedelta(minutes=int(days * 1440))

    with transaction.atomic():
        # ---- org, users, pipeline (small: through the services where they exist)
        t0 = time.perf_counter()
        password = make_password("bench-password")
        company = orgunit_create(actor=None, name="推进基准测试公司", kind="company")
        n_regions = max(1, min(len(REGIONS), scale.reps // 10))
        team_size = 10 if scale.reps >= 20 else 2
        n_teams = math.ceil(scale.reps / team_size)
        regions = [orgunit_create(actor=None, name=f"{REGIONS[r][0]}大区", kind="region", parent=company)
                   for r in range(n_regions)]
        teams = []
        for t in range(n_teams):
            r = t % n_regions
            city_name = REGIONS[r][1][(t // n_regions) % len(REGIONS[r][1])]
            city = orgunit_create(actor=None, name=f"{city_name}{t}", kind="city", parent=regions[r])
            teams.append((r, orgunit_create(actor=None, name=f"{city_name}{t}组", kind="team", parent=city)))

        next_user = _next_id(User)
        users: list[User] = []

        def add_user(username, role, display, unit, manager=None) -> User:
            nonlocal next_user
            u = User(id=next_user, username=username, role=role, display_name=display, org_unit=unit,
                     manager=manager, password=password, email=f"{username}@bench.tuijin.local")
            next_user += 1
            users.append(u)
            return u

        admin = add_user("bench.admin", "admin", "基准管理员", company)
        director = add_user("bench.director", "director", "基准总监", company)
        region_mgrs = [add_user(f"bench.rm{r}", "manager", f"{REGIONS[r][0]}经理", regions[r], director)
                       for r in range(n_regions)]
        team_mgrs = [add_user(f"bench.tm{t}", "manager", f"组长{t}", unit, region_mgrs[r])
                     for t, (r, unit) in enumerate(teams)]
        reps = []
        for i in range(scale.reps):
            t = i // team_size
            reps.append(add_user(f"bench.rep{i:04d}", "rep", f"销售{i:04d}", teams[t][1], team_mgrs[t]))
        presales = add_user("bench.presales", "presales", "基准售前", company, director)
        User.objects.bulk_create(users)
        from tuijin.org.services import USER_FIELDS

        _audit_creates(None, users, USER_FIELDS)
        rep_region = [REGIONS[teams[i // team_size][0]][0] for i in range(scale.reps)]
        pipeline = industry_template_apply(actor=admin, code="medical_devices")
        stages = {s.code: s for s in pipeline.stages.all()}
        product_ids = list(Product.objects.filter(code__in=["ct-64", "dr", "ultrasound", "bone-screw", "joint",
                                                              "analyzer", "reagent", "warranty"])
                           .values_list("pk", flat=True))
        timings["org"] = time.perf_counter() - t0

        # ---- customers + contacts + memberships
        t0 = time.perf_counter()
        rep_weights = [rng.uniform(0.5, 1.5) for _ in reps]
        cust_owner: list[int] = []  # index into reps, per customer
        cust_contacts: list[int] = []  # first contact id per customer
        first_customer = _next_id(Customer)
        next_contact = _next_id(Contact)
        industries = list(SUFFIXES)
        with _historic_timestamps(Customer, Contact):
            for start in range(0, scale.customers, BATCH):
                customers, contacts, members = [], [], []
                for i in range(start, min(start + BATCH, scale.customers)):
                    owner_i = rng.choices(range(len(reps)), weights=rep_weights)[0]
                    cust_owner.append(owner_i)
                    region = rep_region[owner_i]
                    city = rng.choice(dict(REGIONS)[region])
                    industry = rng.choice(industries)
                    name = f"{city}{rng.choice(STEMS)}{SUFFIXES[industry]}{i + 1:06d}"
                    phone = f"0{rng.randint(20, 999)}-{rng.randint(2, 8)}{i:07d}"
                    created = ago(rng.uniform(30, SPAN_DAYS))
                    c = Customer(
                        id=first_customer + i, name=name, name_normalized=normalize_name(name),
                        industry=industry, size_band=rng.choice(["small", "medium", "large"]), region=region,
                        city=city, source=rng.choice(["referral", "exhibition", "website", "cold_call"]),
                        status=rng.choices(["active", "lead", "churned"], weights=[75, 18, 7])[0],
                        phone=phone, phone_normalized=normalize_phone(phone), owner_id=reps[owner_i].pk,
                        created_at=created, updated_at=created + dt.timedelta(days=rng.uniform(0, 20)),
                        address=f"{city}市人民路{rng.randint(1, 999)}号",
                    )
                    customers.append(c)
                    cust_contacts.append(next_contact)
                    for k in range(1 if rng.random() < 0.5 else 2):
                        mobile = f"1{rng.choice([3, 5, 8])}{rng.randrange(10**9):09d}"
                        contacts.append(Contact(
                            id=next_contact, customer_id=c.id, name=f"联系人{i}-{k}", title="设备科主任",
                            decision_role="decision_maker" if k == 0 else "influencer", mobile=mobile,
                            phone_normalized=normalize_phone(mobile), is_primary=k == 0,
                            created_at=created, updated_at=created,
                        ))
                        next_contact += 1
                    if rng.random() < 0.02:
                        members.append(CustomerMember(customer_id=c.id, user=presales, access="read"))
                Customer.objects.bulk_create(customers, batch_size=500)
                Contact.objects.bulk_create(contacts, batch_size=500)
                CustomerMember.objects.bulk_create(members)
                _audit_creates(admin, customers, CUSTOMER_AUDIT_FIELDS)
                _audit_creates(admin, contacts, CONTACT_FIELDS, extra=lambda o: {"customer": o.customer_id})
        timings["customers"] = time.perf_counter() - t0
        log(f"  customers: {scale.customers} in {timings['customers']:.1f}s")

        # ---- opportunities
        t0 = time.perf_counter()
        stage_codes = list(STAGE_WEIGHTS)
        stage_w = list(STAGE_WEIGHTS.values())
        cust_opps: list[list[int]] = [[] for _ in range(scale.customers)]
        first_opp = _next_id(Opportunity)
        through = Opportunity.products.through
        with _historic_timestamps(Opportunity):
            for start in range(0, scale.opportunities, BATCH):
                opps, links = [], []
                for j in range(start, min(start + BATCH, scale.opportunities)):
                    ci = rng.randrange(scale.customers)
                    stage = stages[rng.choices(stage_codes, weights=stage_w)[0]]
                    created_days = rng.uniform(1, SPAN_DAYS)
                    entered_days = created_days * rng.uniform(0, 1)
                    progress_days = entered_days * rng.random() ** 2
                    closed = stage.kind != "open"
                    o = Opportunity(
                        id=first_opp + j, name=f"商机{j + 1:07d}", customer_id=first_customer + ci,
                        owner_id=reps[cust_owner[ci]].pk, pipeline_id=pipeline.pk, stage_id=stage.pk,
                        amount=decimal.Decimal(rng.randrange(5, 500) * 10_000), probability=stage.probability,
                        expected_close_date=(anchor - dt.timedelta(days=created_days - rng.uniform(30, 180))).date(),
                        loss_reason=rng.choice(LOSS_REASONS) if stage.kind == "lost" else "",
                        created_at=ago(created_days), stage_entered_at=ago(entered_days),
                        closed_at=ago(entered_days) if closed else None,
                        last_progress_at=ago(progress_days), updated_at=ago(progress_days),
                    )
                    opps.append(o)
                    cust_opps[ci].append(o.id)
                    links.append(through(opportunity_id=o.id, product_id=rng.choice(product_ids)))
                Opportunity.objects.bulk_create(opps, batch_size=500)
                through.objects.bulk_create(links, batch_size=1000)
                _audit_creates(admin, opps, OPP_FIELDS)
        timings["opportunities"] = time.perf_counter() - t0
        log(f"  opportunities: {scale.opportunities} in {timings['opportunities']:.1f}s")

        # ---- activities
        t0 = time.perf_counter()
        first_act = _next_id(Activity)
        with _historic_timestamps(Activity):
            for start in range(0, scale.activities, BATCH):
                acts = []
                for k in range(start, min(start + BATCH, scale.activities)):
                    ci = rng.randrange(scale.customers)
                    opps = cust_opps[ci]
                    kind = rng.choices(KINDS, weights=KIND_WEIGHTS)[0]
                    when = ago(SPAN_DAYS * rng.random() ** 1.6)
                    acts.append(Activity(
                        id=first_act + k, customer_id=first_customer + ci,
                        opportunity_id=rng.choice(opps) if opps and rng.random() < 0.7 else None,
                        contact_id=cust_contacts[ci] if rng.random() < 0.5 else None,
                        owner_id=reps[cust_owner[ci]].pk, kind=kind, occurred_at=when,
                        duration_minutes=rng.randrange(0, 120, 5), subject=rng.choice(SUBJECTS),
                        conclusion=rng.choice(CONCLUSIONS), created_at=when + dt.timedelta(minutes=30),
                    ))
                Activity.objects.bulk_create(acts, batch_size=500)
                _audit_bulk_load(admin, acts)
                if (start // BATCH) % 40 == 39:
                    log(f"  activities: {start + BATCH} ...")
        timings["activities"] = time.perf_counter() - t0
        log(f"  activities: {scale.activities} in {timings['activities']:.1f}s")

        # ---- denormalised "last contact" on customers, as activity_create maintains it
        t0 = time.perf_counter()
        from django.db.models import Max, OuterRef, Subquery

        Customer.objects.update(last_contact_at=Subquery(
            Activity.objects.filter(customer_id=OuterRef("pk")).order_by().values("customer_id")
            .annotate(m=Max("occurred_at")).values("m")[:1]
        ))
        timings["last_contact"] = time.perf_counter() - t0

    _reset_sequences()
    t0 = time.perf_counter()
    _analyze()
    timings["analyze"] = time.perf_counter() - t0
    total = time.perf_counter() - t_all
    meta = {
        "fingerprint": fingerprint(scale),
        "scale": asdict(scale),
        "seed": SEED,
        "generator_version": GENERATOR_VERSION,
        "anchor": anchor.isoformat(),
        "generated_at": timezone.now().isoformat(),
        "generation_seconds": round(total, 1),
        # Wall time depends on what else runs on a shared machine; CPU time of this process does much less.
        "generation_cpu_seconds": round(time.process_time() - cpu_all, 1),
        "phase_seconds": {k: round(v, 1) for k, v in timings.items()},
        "counts": _counts(),
        "users": {"admin": admin.username, "director": director.username, "manager": region_mgrs[0].username,
                  "team_manager": team_mgrs[0].username, "rep": reps[0].username, "presales": presales.username},
        "complete": True,
    }
    _meta_set(meta)

    return meta


def _counts() -> dict:
    from tuijin.core.models import AuditEvent
    from tuijin.customers.models import Contact, Customer
    from tuijin.followups.models import Activity
    from tuijin.org.models import User
    from tuijin.pipeline.models import Opportunity

    return {"users": User.objects.count(), "customers": Customer.objects.count(),
            "contacts": Contact.objects.count(), "opportunities": Opportunity.objects.count(),
            "activities": Activity.objects.count(), "audit_events": AuditEvent.objects.count()}


def _reset_sequences() -> None:
    """Explicit ids leave PostgreSQL's sequences behind; later inserts (import scenario) need them right."""
    if connection.vendor != "postgresql":
        return
    from django.apps import apps
    from django.core.management.color import no_style

    sql = connection.ops.sequence_reset_sql(no_style(), apps.get_models())
    with connection.cursor() as cur:
        for statement in sql:
            cur.execute(statement)


def _analyze() -> None:
    """Statistics as an installation has them: PostgreSQL's autovacuum would analyse the new tables
    within a minute, and Tuijin refreshes SQLite's every night (core.tasks); do it now so runs are stable."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
    else:
        from tuijin.core.dbstats import refresh_statistics

        refresh_statistics()


# --------------------------------------------------------------------------- extension: goals and forecasts
#
# Added to an existing dataset (base data is never regenerated for it). Its own `bench_meta` key
# (`goals_version`) records the extension's version and the month it was built for: a run in a later
# month, or after EXTENSION_VERSION changes, drops the extension's rows (goals, daily reports) and builds
# them again for the current month; the base rows are untouched.

EXTENSION_VERSION = 1
EXTENSION_KEY = "goals_version"
FORECAST_WEEKS = 8
CASCADED_METRICS = ("signed_revenue", "activities", "new_leads")
MIN_TARGET = {"signed_revenue": decimal.Decimal("50000"), "activities": decimal.Decimal("20"),
              "new_leads": decimal.Decimal("3")}
FIXED_TARGETS = {"new_customer_first_order_avg": None, "repeat_deal_rate_6m": decimal.Decimal("35"),
                 "reference_cases": decimal.Decimal("8")}


def extension_wanted(today: dt.date | None = None) -> dict:
    today = today or timezone.localdate()
    return {"version": EXTENSION_VERSION, "month": today.strftime("%Y-%m"), "seed": SEED}


def extension_current(meta: dict, today: dt.date | None = None) -> bool:
    ext = meta.get(EXTENSION_KEY) or {}
    want = extension_wanted(today)
    return all(ext.get(k) == v for k, v in want.items()) and bool(ext.get("complete"))


def ensure_extension(meta: dict, *, log=print, today: dt.date | None = None) -> dict:
    """Build (or rebuild) the goals/forecasts extension when it is missing or outdated; returns its meta."""
    if extension_current(meta, today):
        return meta[EXTENSION_KEY] | {"reused": True}
    log(f"   extension phase (goals, daily reports) {extension_wanted(today)} ...")
    ext = extend(today=today, log=log)
    log(f"   extension built in {ext['seconds']} s: {ext['counts']}")
    return ext | {"reused": False}


def _audit_bulk_rows(actor, model: str, lines: list[str], first, last) -> None:
    """One "bulk_load" event for a batch of rows of any model (as for activities): id range, count, SHA-256."""
    from tuijin.core import audit

    digest = hashlib.sha256("\n".join(lines).encode()).hexdigest()
    audit.record_many(actor=actor, entries=[(None, "bulk_load", {
        "model": [None, model], "count": [None, len(lines)], "first_id": [None, first], "last_id": [None, last],
        "rows_sha256": [None, digest],
    }, model, f"{first}-{last}", f"bulk load of {len(lines)} rows ({model})")])


def _extension_wipe() -> None:
    from tuijin.forecasting.models import (
        CorrectionItem,
        CorrectionRequest,
        DailyReport,
        ForecastEvidence,
        ForecastLine,
    )
    from tuijin.goals.models import GoalReport, KeyResult, Objective, Period, Target

    for model in (CorrectionItem, CorrectionRequest, ForecastEvidence, ForecastLine, DailyReport, GoalReport):
        model.objects.all()._raw_delete(model.objects.db)
    Target.objects.update(parent=None)  # self-references first, so the rows delete in one statement
    for model in (Target, KeyResult, Objective, Period):
        model.objects.all()._raw_delete(model.objects.db)


def extend(*, today: dt.date | None = None, log=print) -> dict:
    """Goal periods + cascaded targets and 8 weeks of daily reports with forecast lines; returns the meta."""
    from tuijin.goals.services import report_generate

    today = today or timezone.localdate()
    t_all, cpu_all = time.perf_counter(), time.process_time()
    rng = random.Random(f"{SEED}-goals-{today:%Y-%m}")
    timings = {}
    with transaction.atomic():
        _extension_wipe()
        t0 = time.perf_counter()
        n_goals = _extend_goals(rng, today)
        timings["goals"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        n_fc = _extend_forecasts(rng, today)
        timings["forecasts"] = time.perf_counter() - t0
        # Last month's deviation report, as the monthly job would have stored it (pages and API read it).
        t0 = time.perf_counter()
        from tuijin.goals.metrics import month_bounds

        prev_start, prev_end = month_bounds(today.replace(day=1) - dt.timedelta(days=1))
        report_generate(actor=None, start=prev_start, as_of=prev_end)
        timings["report"] = time.perf_counter() - t0
    _reset_sequences()
    _analyze()
    ext = {**extension_wanted(today), "complete": True, "counts": {**n_goals, **n_fc},
           "seconds": round(time.perf_counter() - t_all, 1), "cpu_seconds": round(time.process_time() - cpu_all, 1),
           "phase_seconds": {k: round(v, 1) for k, v in timings.items()}, "built_at": timezone.now().isoformat()}
    _meta_set({EXTENSION_KEY: ext})
    return ext


def _extend_goals(rng: random.Random, today: dt.date) -> dict:
    """Current and previous month: an objective with a key result per metric kind; revenue, activities and
    new leads cascaded company → regions → cities → teams → reps (baseline = previous month, growth 15–35%)."""
    from tuijin.goals import metrics
    from tuijin.goals.models import KeyResult, MetricKind, Objective, Period, Target
    from tuijin.goals.services import TARGET_FIELDS, period_default_name
    from tuijin.org.models import OrgUnit, User

    director = User.objects.get(username="bench.director")
    units = list(OrgUnit.objects.order_by("path"))
    company = units[0]
    children: dict[int, list] = {}
    for u in units:
        children.setdefault(u.parent_id, []).append(u)
    reps_by_unit: dict[int, list] = {}
    owner_path = {}
    for r in User.objects.filter(role=User.Role.REP, username__startswith="bench.rep").select_related(
            "org_unit").order_by("username"):
        reps_by_unit.setdefault(r.org_unit_id, []).append(r)
        owner_path[r.pk] = r.org_unit.path
    kinds = {k.key: k for k in MetricKind.objects.filter(key__in=list(metrics.METRICS))}
    cur_start, cur_end = metrics.month_bounds(today)
    prev_start, prev_end = metrics.month_bounds(cur_start - dt.timedelta(days=1))
    counts = {"goal_periods": 0, "goal_key_results": 0, "goal_targets": 0}
    next_target = _next_id(Target)
    for start, end in ((prev_start, prev_end), (cur_start, cur_end)):
        period = Period.objects.create(kind="month", start=start, end=end, name=period_default_name("month", start))
        objective = Objective.objects.create(period=period, org_unit=company, title="月度签约与客户经营目标",
                                             description="基准数据：按大区、城市、团队逐级分解到每位销售。",
                                             created_by=director)
        _audit_creates(director, [period], ["kind", "start", "end", "name"])
        _audit_creates(director, [objective], ["period", "org_unit", "title", "description"])
        counts["goal_periods"] += 1
        b_start, b_end = metrics.previous_period(start, end)
        for key, kind in kinds.items():
            metric = metrics.get_metric(key)
            kr = KeyResult.objects.create(objective=objective, metric=kind, title=f"{kind.name}（{period.name}）")
            _audit_creates(director, [kr], ["objective", "metric", "title"])
            counts["goal_key_results"] += 1
            parts = metric.per_owner(b_start, b_end, None)

            def baseline(unit, rep, parts=parts, metric=metric):
                if rep is not None:
                    return metric.combine([parts[rep.pk]] if rep.pk in parts else [])
                return metric.combine([p for o, p in parts.items() if (owner_path.get(o) or "").startswith(unit.path)])

            def value(key, base, growth):
                v = (base * (1 + growth)).quantize(decimal.Decimal("1"))
                return max(v, MIN_TARGET.get(key, decimal.Decimal("0")))

            targets = []
            root_base = baseline(company, None)
            if key in CASCADED_METRICS:
                root_value = value(key, root_base, decimal.Decimal("0.30"))
            elif FIXED_TARGETS.get(key) is not None:
                root_value = FIXED_TARGETS[key]
            else:
                root_value = max((root_base * decimal.Decimal("1.12")).quantize(decimal.Decimal("1")),
                                 decimal.Decimal("30000"))
            root = Target(id=next_target, key_result=kr, org_unit=company, value=root_value, baseline=root_base,
                          depth=0)
            next_target += 1
            targets.append(root)
            frontier = [root] if key in CASCADED_METRICS else []
            while frontier:
                nxt = []
                for parent in frontier:
                    scopes = [(u, None) for u in children.get(parent.org_unit_id, [])] + [
                        (r.org_unit, r) for r in reps_by_unit.get(parent.org_unit_id, [])]
                    for unit, rep in scopes:
                        base = baseline(unit, rep)
                        growth = decimal.Decimal(str(round(rng.uniform(0.15, 0.35), 2)))
                        t = Target(id=next_target, key_result=kr, parent=parent, org_unit=unit, user=rep,
                                   value=value(key, base, growth), baseline=base, depth=parent.depth + 1)
                        next_target += 1
                        targets.append(t)
                        if rep is None:
                            nxt.append(t)
                frontier = nxt
            Target.objects.bulk_create(targets, batch_size=500)
            _audit_creates(director, targets, TARGET_FIELDS)
            counts["goal_targets"] += len(targets)
    return counts


def _extend_forecasts(rng: random.Random, today: dt.date) -> dict:
    """Every rep's daily reports over the last FORECAST_WEEKS weeks (≈6% of working days unfiled), each with
    forecast lines for deals about to sign (commit, slightly padded), a few optimistic ones (likely/commit)
    and an upside; every line has an evidence activity (a key conclusion before that day) and the outlier
    check's result, computed as forecasting.services does (customer mean, else segment mean)."""
    from django.db.models import Count, Sum

    from tuijin.followups.models import Activity
    from tuijin.forecasting.models import DailyReport, ForecastEvidence, ForecastLine
    from tuijin.forecasting.selectors import is_working_day
    from tuijin.forecasting.services import outlier_check
    from tuijin.org.models import User
    from tuijin.pipeline.models import Opportunity

    admin = User.objects.get(username="bench.admin")
    reps = list(User.objects.filter(role=User.Role.REP, username__startswith="bench.rep").order_by("username"))
    first = today - dt.timedelta(weeks=FORECAST_WEEKS)
    days = [first + dt.timedelta(days=i) for i in range((today - first).days) if is_working_day(first + dt.timedelta(days=i))]
    window_start = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    opps_by_rep: dict[int, list] = {}
    # Deals that were open at some point of the window (created before its end, not closed before its start).
    rows = (Opportunity.objects.filter(created_at__lt=timezone.make_aware(dt.datetime.combine(today, dt.time.min)))
            .exclude(closed_at__lt=window_start)
            .values_list("pk", "owner_id", "customer_id", "customer__industry", "customer__size_band", "amount",
                         "stage__kind", "created_at", "closed_at").order_by("pk"))
    for row in rows:
        opps_by_rep.setdefault(row[1], []).append(row)
    won_cust = {r["customer_id"]: (r["s"], r["n"]) for r in Opportunity.objects.filter(stage__kind="won").order_by()
                .values("customer_id").annotate(s=Sum("amount"), n=Count("id"))}
    won_seg = {(r["customer__industry"], r["customer__size_band"]): (r["s"], r["n"]) for r in
               Opportunity.objects.filter(stage__kind="won").order_by()
               .values("customer__industry", "customer__size_band").annotate(s=Sum("amount"), n=Count("id"))}
    wanted_customers = {row[2] for rs in opps_by_rep.values() for row in rs}
    first_evidence: dict[int, tuple] = {}
    for cid, when, pk in Activity.objects.exclude(conclusion="").filter(
            customer_id__in=list(wanted_customers)).values_list("customer_id", "occurred_at", "pk").iterator(10_000):
        if cid not in first_evidence or (when, pk) < first_evidence[cid]:
            first_evidence[cid] = (when, pk)

    def baseline(row):
        """forecasting.services.outlier_baseline without a query per line (own deal excluded)."""
        pk, _o, cid, industry, size, amount, kind = row[:7]
        own = (amount, 1) if kind == "won" else (0, 0)
        s, n = won_cust.get(cid, (0, 0))
        s, n = s - own[0], n - own[1]
        basis = "customer"
        if not n:
            if not (industry and size):
                return "none", None, 0
            s, n = won_seg.get((industry, size), (0, 0))
            s, n = s - own[0], n - own[1]
            basis = "segment"
            if not n:
                return "none", None, 0
        mean = (decimal.Decimal(s) / n).quantize(decimal.Decimal("0.01"))
        return (basis, mean, n) if mean > 0 else ("none", None, 0)

    def at(day, hour, minute=0):
        return timezone.make_aware(dt.datetime.combine(day, dt.time(hour, minute)))

    reports, specs_of = [], []
    next_report, next_line = _next_id(DailyReport), _next_id(ForecastLine)
    for rep in reps:
        mine = opps_by_rep.get(rep.pk, [])
        for day in days:
            if rng.random() < 0.06:
                continue
            end = at(day, 17)
            day_end = at(day, 23, 59)
            open_then = [r for r in mine if r[7] < end and (r[8] is None or r[8] > day_end)
                         and first_evidence.get(r[2], (end,))[0] < end]
            specs = []
            for r in open_then:
                if r[6] == "won" and timezone.localtime(r[8]).date() <= day + dt.timedelta(days=10):
                    signed = timezone.localtime(r[8]).date()
                    expected = max(day, signed + dt.timedelta(days=7 if rng.random() < 0.2 else 0))
                    pad = decimal.Decimal(str(round(1 + rng.uniform(0, 0.2), 3)))
                    specs.append((r, (r[5] * pad).quantize(decimal.Decimal("0.01")), expected, "commit"))
            taken = {s[0][0] for s in specs}
            rest = [r for r in open_then if r[0] not in taken]
            for r in rng.sample(rest, min(rng.choice([0, 1, 1, 2]), len(rest))):
                specs.append((r, r[5], day + dt.timedelta(days=rng.randint(2, 9)), rng.choice(["commit", "likely"])))
                taken.add(r[0])
            rest = [r for r in rest if r[0] not in taken]
            if rest and rng.random() < 0.4:
                r = rng.choice(rest)
                specs.append((r, r[5], day + dt.timedelta(days=rng.randint(10, 40)), "upside"))
            submitted = at(day, rng.choice([17, 18, 18, 19]), rng.randrange(0, 60, 5))
            reports.append(DailyReport(id=next_report, rep=rep, date=day, summary="拜访客户，跟进招标和报价进度。",
                                       status="submitted", submitted_at=submitted))
            next_report += 1
            specs_of.append(specs)
    lines, evidence = [], []
    for report, specs in zip(reports, specs_of, strict=True):
        for pos, (r, amount, expected, conf) in enumerate(specs):
            basis, mean, n = baseline(r)
            deviation, outlier = outlier_check(amount, mean)
            lines.append(ForecastLine(
                id=next_line, report_id=report.pk, position=pos, opportunity_id=r[0], amount=amount,
                expected_sign_date=expected, confidence=conf, baseline_basis=basis, baseline_mean=mean,
                baseline_count=n, deviation=deviation, is_outlier=outlier,
                outlier_reason="客户本次采购规模与以往不同" if outlier else "",
                outlier_acknowledged_at=report.submitted_at if outlier else None))
            evidence.append(ForecastEvidence(line_id=next_line, activity_id=first_evidence[r[2]][1]))
            next_line += 1
    with _historic_timestamps(DailyReport, ForecastLine, ForecastEvidence):
        for obj in reports:
            obj.created_at = obj.updated_at = obj.submitted_at
        submitted_of = {o.pk: o.submitted_at for o in reports}
        for ln in lines:
            ln.created_at = submitted_of[ln.report_id]
        for ev, ln in zip(evidence, lines, strict=True):
            ev.created_at = ln.created_at
        for start in range(0, len(reports), BATCH):
            batch = reports[start:start + BATCH]
            DailyReport.objects.bulk_create(batch, batch_size=500)
            _audit_bulk_rows(admin, "forecasting.dailyreport", [
                f"{o.pk}|{o.rep_id}|{o.date}|{o.status}|{o.submitted_at.isoformat()}" for o in batch],
                batch[0].pk, batch[-1].pk)
        for start in range(0, len(lines), BATCH):
            batch = lines[start:start + BATCH]
            ForecastLine.objects.bulk_create(batch, batch_size=500)
            ForecastEvidence.objects.bulk_create(evidence[start:start + BATCH], batch_size=500)
            _audit_bulk_rows(admin, "forecasting.forecastline", [
                f"{o.pk}|{o.report_id}|{o.opportunity_id}|{o.amount}|{o.expected_sign_date}|{o.confidence}|"
                f"{evidence[start + i].activity_id}" for i, o in enumerate(batch)], batch[0].pk, batch[-1].pk)
    return {"daily_reports": len(reports), "forecast_lines": len(lines)}
