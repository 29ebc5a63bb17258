"""Writes of the health app: weekly alignments, blockers, light settings, light evaluation and reminders.

Every function is one transaction, validates before writing (ValidationFailed
names each bad field; nothing is written), and records a change-trail event.
Jobs (`lights_evaluate`, `alignment_remind_missing`) take `now=` so tests can
freeze the clock; they are idempotent — notifications carry dedupe keys and a
red episode is notified once.
"""

from __future__ import annotations

import datetime as dt
import decimal

from django.db import IntegrityError, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.notify.services import notify
from tuijin.org.models import User
from tuijin.org.selectors import is_company_wide, manager_chain
from tuijin.pipeline.models import Opportunity, Stage

from . import rules, selectors
from .models import AlignmentOpportunity, Blocker, HealthEpisode, HealthSettings, WeeklyAlignment

MAX_TOP = 3
MAX_DEPARTMENTS = 2
ALIGNMENT_AUDIT_FIELDS = ["week_start", "departments", "has_blocker", "blocker"]


def _direct_manager(user: User) -> User | None:
    chain = manager_chain(user)
    return chain[0] if chain else None


def can_manage(user: User) -> bool:
    """Managers and company-wide roles may see teams and run the evaluation on demand."""
    return is_company_wide(user) or user.role == User.Role.MANAGER


# --------------------------------------------------------------------------- blockers

def _validate_blocker(*, actor: User, title, description, opportunity_id) -> dict:
    errors = {}
    title = str(title or "").strip()
    if not title:
        errors["title"] = _("请填写卡点")
    elif len(title) > 200:
        errors["title"] = _("最多200字")
    opportunity = None
    if opportunity_id not in (None, ""):
        try:
            opportunity = Opportunity.objects.get(pk=int(opportunity_id), owner=actor)
        except (Opportunity.DoesNotExist, TypeError, ValueError):
            errors["opportunity_id"] = _("只能关联自己负责的商机")
    if errors:
        raise ValidationFailed(errors)
    return {"title": title, "description": str(description or "").strip(), "opportunity": opportunity}


def _blocker_create(*, actor: User, title, description="", opportunity_id=None) -> Blocker:
    clean = _validate_blocker(actor=actor, title=title, description=description, opportunity_id=opportunity_id)
    manager = _direct_manager(actor)
    blocker = Blocker.objects.create(owner=actor, escalated_to=manager, **clean)
    audit.record(actor=actor, obj=blocker, action="create", changes=audit.diff({}, audit.snapshot(
        blocker, ["title", "description", "opportunity", "owner", "escalated_to", "status"])))
    if manager is not None:
        notify(
            recipients=[manager], kind="blocker_escalated",
            title=_("%(rep)s 提交了待升级的卡点：%(title)s") % {"rep": actor.label, "title": blocker.title},
            body=blocker.description, link=reverse("health:rep", args=[actor.pk]),
            dedupe_key=f"blocker:{blocker.pk}",
        )
    return blocker


@transaction.atomic
def blocker_create(*, actor: User, title, description: str = "", opportunity_id=None) -> Blocker:
    """Log a blocker (卡点) for escalation; it goes to the rep's direct manager."""
    if actor.role not in User.SALES_ROLES:
        raise Forbidden(_("只有销售人员可以提交卡点"))
    return _blocker_create(actor=actor, title=title, description=description, opportunity_id=opportunity_id)


@transaction.atomic
def blocker_resolve(*, actor: User, blocker: Blocker) -> Blocker:
    current = Blocker.objects.select_for_update().get(pk=blocker.pk)
    if actor.pk not in (current.owner_id, current.escalated_to_id) and not can_manage(actor):
        raise Forbidden(_("只有提出人或其上级可以关闭卡点"))
    if current.status == Blocker.Status.RESOLVED:
        return current
    current.status, current.resolved_at = Blocker.Status.RESOLVED, timezone.now()
    current.save(update_fields=["status", "resolved_at"])
    audit.record(actor=actor, obj=current, action="resolve", changes={"status": ["open", "resolved"]})
    return current


# --------------------------------------------------------------------------- weekly alignment

def _int_list(value, field: str, errors: dict) -> list[int]:
    if value in (None, ""):
        return []
    if not isinstance(value, (list, tuple)):
        value = [value]
    out = []
    for v in value:
        try:
            out.append(int(v))
        except (TypeError, ValueError):
            errors[field] = _("必须是商机编号列表")
            return []
    return out


def _validate_alignment(*, actor: User, week_start, opportunity_ids, departments, has_blocker, blocker_id,
                        new_blocker: dict | None, now: dt.datetime) -> dict:
    errors: dict[str, str] = {}
    # The week: this week until its deadline, next week at the latest; past deadlines are locked.
    if week_start in (None, ""):
        week = rules.open_week(now)
    else:
        week = rules.parse_week(week_start)
        if week is None:
            errors["week_start"] = _("无效的周：请用 2026-11-23 或 2026-W48 格式")
    if week is not None:
        if now >= rules.deadline_for(week):
            errors["week_start"] = _("%(week)s 的提交截止时间（%(deadline)s）已过，已锁定") % {
                "week": f"{week:%G-W%V}",
                "deadline": timezone.localtime(rules.deadline_for(week)).strftime("%Y-%m-%d %H:%M")}
        elif week > rules.week_start_of(rules.local_today(now)) + dt.timedelta(days=7):
            errors["week_start"] = _("只能提交本周（截止前）或下一周的对齐")

    ids = _int_list(opportunity_ids, "opportunity_ids", errors)
    opportunities: list[Opportunity] = []
    if "opportunity_ids" not in errors:
        if not ids:
            errors["opportunity_ids"] = _("请选择 1–3 个本周要推进的商机")
        elif len(ids) > MAX_TOP:
            errors["opportunity_ids"] = _("最多选择 3 个商机（选择了 %(n)s 个）") % {"n": len(ids)}
        elif len(set(ids)) != len(ids):
            errors["opportunity_ids"] = _("同一个商机不能重复选择")
        else:
            found = {o.pk: o for o in Opportunity.objects.filter(pk__in=ids).select_related("stage")}
            for i, pk in enumerate(ids):
                opp = found.get(pk)
                if opp is None or opp.owner_id != actor.pk:
                    errors[f"opportunity_ids[{i}]"] = _("只能选择自己负责的商机")
                elif opp.stage.kind != Stage.Kind.OPEN:
                    errors[f"opportunity_ids[{i}]"] = _("商机“%(name)s”已关闭，只能选择进行中的商机") % {
                        "name": opp.name}
                else:
                    opportunities.append(opp)

    if departments in (None, ""):
        departments = []
    if isinstance(departments, str):
        departments = [d.strip() for d in departments.split(",") if d.strip()]
    if not isinstance(departments, (list, tuple)):
        errors["departments"] = _("必须是部门列表")
        departments = []
    departments = [str(d) for d in departments]
    bad = [d for d in departments if d not in WeeklyAlignment.Department.values]
    if bad:
        errors["departments"] = _("无效的部门：%(value)s（可选：%(choices)s）") % {
            "value": ", ".join(bad), "choices": ", ".join(WeeklyAlignment.Department.values)}
    elif len(departments) > MAX_DEPARTMENTS:
        errors["departments"] = _("最多选择 2 个需要协同的部门（选择了 %(n)s 个）") % {"n": len(departments)}
    elif len(set(departments)) != len(departments):
        errors["departments"] = _("同一个部门不能重复选择")

    has_blocker = bool(has_blocker) and str(has_blocker).lower() not in {"0", "false", "no", "否"}
    blocker = None
    if has_blocker:
        if blocker_id not in (None, ""):
            try:
                blocker = Blocker.objects.get(pk=int(blocker_id), owner=actor)
            except (Blocker.DoesNotExist, TypeError, ValueError):
                errors["blocker_id"] = _("只能关联自己提交的卡点记录")
        elif new_blocker and str(new_blocker.get("title") or "").strip():
            try:
                _validate_blocker(actor=actor, title=new_blocker.get("title"),
                                  description=new_blocker.get("description"),
                                  opportunity_id=new_blocker.get("opportunity_id"))
            except ValidationFailed as exc:
                errors.update({f"blocker.{k}": v[0] for k, v in exc.errors.items()})
        else:
            errors["blocker_id"] = _("选择“卡点已录入”时，请关联卡点记录或填写新的卡点")
    if errors:
        raise ValidationFailed(errors)
    return {"week_start": week, "opportunities": opportunities, "departments": list(departments),
            "has_blocker": has_blocker, "blocker": blocker}


def _alignment_snapshot(a: WeeklyAlignment, opp_ids: list[int]) -> dict:
    return {**audit.snapshot(a, ALIGNMENT_AUDIT_FIELDS), "opportunities": opp_ids}


@transaction.atomic
def alignment_submit(
    *, actor: User, opportunity_ids, departments=(), has_blocker=False, blocker_id=None,
    new_blocker: dict | None = None, week_start=None, version: int | None = None, now: dt.datetime | None = None,
) -> WeeklyAlignment:
    """Submit (or, before the deadline, update) the actor's three sentences for a week (SPEC G5)."""
    now = now or timezone.now()
    if actor.role not in User.SALES_ROLES:
        raise Forbidden(_("只有销售人员提交周目标对齐"))
    clean = _validate_alignment(
        actor=actor, week_start=week_start, opportunity_ids=opportunity_ids, departments=departments,
        has_blocker=has_blocker, blocker_id=blocker_id, new_blocker=new_blocker, now=now,
    )
    if clean["has_blocker"] and clean["blocker"] is None:
        clean["blocker"] = _blocker_create(
            actor=actor, title=new_blocker.get("title"), description=new_blocker.get("description", ""),
            opportunity_id=new_blocker.get("opportunity_id"))
    opp_ids = [o.pk for o in clean["opportunities"]]
    current = (WeeklyAlignment.objects.select_for_update()
               .filter(rep=actor, week_start=clean["week_start"]).first())
    if current is None:
        alignment = WeeklyAlignment(
            rep=actor, week_start=clean["week_start"], departments=clean["departments"],
            has_blocker=clean["has_blocker"], blocker=clean["blocker"], submitted_at=now, updated_at=now,
        )
        try:
            with transaction.atomic():
                alignment.save()
        except IntegrityError:
            # A concurrent first submission won; ask the client to reload rather than overwrite it.
            raise StaleVersion(1)
        AlignmentOpportunity.objects.bulk_create(
            [AlignmentOpportunity(alignment=alignment, opportunity=o, rank=i + 1)
             for i, o in enumerate(clean["opportunities"])])
        audit.record(actor=actor, obj=alignment, action="create",
                     changes=audit.diff({}, _alignment_snapshot(alignment, opp_ids)))
        return alignment
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    before = _alignment_snapshot(current, list(current.items.order_by("rank").values_list("opportunity_id", flat=True)))
    current.departments, current.has_blocker, current.blocker = (
        clean["departments"], clean["has_blocker"], clean["blocker"])
    changes = audit.diff(before, _alignment_snapshot(current, opp_ids))
    if not changes:
        return current
    if "opportunities" in changes:
        current.items.all().delete()
        AlignmentOpportunity.objects.bulk_create(
            [AlignmentOpportunity(alignment=current, opportunity=o, rank=i + 1)
             for i, o in enumerate(clean["opportunities"])])
    current.updated_at = now
    current.version = F("version") + 1
    current.save()
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="update", changes=changes)
    return current


@transaction.atomic
def alignment_remind_missing(*, now: dt.datetime | None = None, week_start: dt.date | None = None) -> int:
    """After the deadline, remind each rep without an alignment (CC the direct manager); once per rep and week."""
    now = now or timezone.now()
    week = week_start or rules.week_start_of(rules.local_today(now))
    if now < rules.deadline_for(week):
        return 0
    sent = 0
    link = reverse("health:home")
    for rep in selectors.missing_reps(week_start=week):
        manager = _direct_manager(rep)
        created = notify(
            recipients=[rep], cc=[manager] if manager else [], kind="alignment_missing",
            title=_("%(rep)s 尚未提交 %(week)s 的周目标对齐") % {"rep": rep.label, "week": f"{week:%G-W%V}"},
            body=_("本周TOP3商机、需要协同的部门、卡点是否已录入——请尽快补充说明。"),
            link=link, dedupe_key=f"alignment_missing:{rep.pk}:{week.isoformat()}",
        )
        sent += bool(created)
    return sent


# --------------------------------------------------------------------------- lights

@transaction.atomic
def health_settings_update(*, actor: User, stale_days=None, yellow_below=None, red_below="") -> HealthSettings:
    """Change the light rules (admins). red_below "" or None switches the pace red rule off."""
    if not (actor.is_superuser or actor.role == User.Role.ADMIN):
        raise Forbidden(_("只有管理员可以修改健康灯规则"))
    errors = {}
    current, _created = HealthSettings.objects.select_for_update().get_or_create(pk=1)
    fields = ["stale_days", "yellow_below", "red_below"]
    before = audit.snapshot(current, fields)
    if stale_days is not None:
        try:
            current.stale_days = int(stale_days)
            if not 1 <= current.stale_days <= 90:
                raise ValueError
        except (TypeError, ValueError):
            errors["stale_days"] = _("天数必须是 1–90 的整数")

    def ratio(value, field):
        try:
            number = decimal.Decimal(str(value))
            if not (0 <= number <= 5):
                raise decimal.InvalidOperation
            return number.quantize(decimal.Decimal("0.01"))
        except (decimal.InvalidOperation, ValueError):
            errors[field] = _("必须是 0–5 之间的数字（如 0.8 表示进度的80%）")
            return None

    if yellow_below is not None:
        current.yellow_below = ratio(yellow_below, "yellow_below")
    if red_below in (None, ""):
        current.red_below = None
    else:
        current.red_below = ratio(red_below, "red_below")
        if current.red_below is not None and current.yellow_below is not None \
                and current.red_below > decimal.Decimal(str(current.yellow_below)):
            errors["red_below"] = _("红灯阈值不能高于黄灯阈值")
    if errors:
        raise ValidationFailed(errors)
    current.save()
    changes = audit.diff(before, audit.snapshot(current, fields))
    if changes:
        audit.record(actor=actor, obj=current, action="update", changes=changes)
    return current


def _reason_text(reasons: list[dict]) -> str:
    parts = []
    for r in reasons:
        if r["code"] == "no_open":
            parts.append(_("没有进行中的商机"))
        elif r["code"] == "stale":
            if r["days"] is None:
                parts.append(_("从未推进过商机"))
            else:
                parts.append(_("已连续 %(days)s 天未更新任何商机（阈值 %(threshold)s 天）") % r)
        elif r["code"] == "pace":
            parts.append(_("目标进度比 %(ratio).0f%%，低于 %(threshold).0f%%") % {
                "ratio": r["ratio"] * 100, "threshold": r["threshold"] * 100})
    return "；".join(parts)


@transaction.atomic
def lights_evaluate(*, now: dt.datetime | None = None, actor: User | None = None) -> dict[str, int]:
    """Evaluate every rep's light; open/close red episodes; remind once per new red episode (SPEC G6).

    A rep turning red opens an episode and gets ONE reminder with the direct
    manager in CC. While red, later runs change nothing. When the light is no
    longer red (the rep progressed an opportunity) the episode closes; a later
    stale period opens a new episode and reminds again.
    """
    now = now or timezone.now()
    reps = list(User.objects.filter(is_active=True, role=User.Role.REP).select_related("manager"))
    rows = selectors.compute_lights(reps=reps, now=now)
    open_eps = {e.rep_id: e for e in HealthEpisode.objects.select_for_update().filter(
        light=HealthEpisode.Light.RED, ended_at__isnull=True)}
    counts = {"red": 0, "yellow": 0, "green": 0, "opened": 0, "closed": 0, "notified": 0}
    entries = []
    for row in rows:
        rep = row["rep"]
        counts[row["light"]] += 1
        episode = open_eps.get(rep.pk)
        if row["light"] == selectors.RED:
            if episode is None:
                try:
                    with transaction.atomic():
                        episode = HealthEpisode.objects.create(
                            rep=rep, light=HealthEpisode.Light.RED, started_at=now,
                            reasons={"reasons": row["reasons"]})
                except IntegrityError:
                    # Another worker opened (and notifies) this episode at the same moment.
                    continue
                counts["opened"] += 1
                entries.append((episode, "open", {"light": [None, "red"], "reasons": [None, row["reasons"]]},
                                None, None, f"{rep.username} red"))
            if episode.notified_at is None:
                manager = _direct_manager(rep)
                notify(
                    recipients=[rep], cc=[manager] if manager else [], kind="red_light",
                    title=_("目标健康红灯：%(rep)s") % {"rep": rep.label},
                    body=_reason_text(row["reasons"]) + "。" + _("请尽快推进商机并更新进展。"),
                    link=reverse("health:rep", args=[rep.pk]),
                    dedupe_key=f"red_light:{episode.pk}",
                )
                HealthEpisode.objects.filter(pk=episode.pk).update(notified_at=now)
                counts["notified"] += 1
        elif episode is not None:
            HealthEpisode.objects.filter(pk=episode.pk).update(ended_at=now)
            counts["closed"] += 1
            entries.append((episode, "close", {"ended_at": [None, audit.to_jsonable(now)],
                                               "light": ["red", row["light"]]}, None, None, f"{rep.username} red"))
    if entries:
        audit.record_many(actor=actor, entries=entries)
    return counts
