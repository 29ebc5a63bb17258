"""Writes for pipelines, opportunities and customer transfers; one transaction and audit event each."""

from __future__ import annotations

import datetime as dt
import decimal
import json
from pathlib import Path

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core import audit
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.limits import length_errors
from tuijin.customers.grading_services import grade_recompute_for
from tuijin.customers.models import Customer, CustomerMember, OwnerChange
from tuijin.customers.selectors import customer_can_transfer, customer_can_write
from tuijin.customers.services import owner_check
from tuijin.org.models import User

from .models import Opportunity, Pipeline, Product, ProductLine, Stage
from .selectors import opportunity_can_write

TEMPLATE_DIR = Path(__file__).resolve().parent / "industry_templates"
OPP_FIELDS = [
    "name", "customer", "owner", "pipeline", "stage", "amount", "expected_close_date", "probability",
    "loss_reason", "loss_note",
]


def industry_templates() -> dict[str, dict]:
    """Shipped industry templates by code."""
    out = {}
    for path in sorted(TEMPLATE_DIR.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        out[data["code"]] = data
    return out


@transaction.atomic
def industry_template_apply(*, actor: User | None, code: str, make_default: bool = True) -> Pipeline:
    """Create (or refresh) the pipeline, stages and products of one industry template; idempotent."""
    templates = industry_templates()
    if code not in templates:
        raise ValidationFailed({"template": _("未知的行业模板：%(code)s（可选：%(choices)s）") % {
            "code": code, "choices": ", ".join(templates)}})
    tpl = templates[code]
    pipeline, created = Pipeline.objects.update_or_create(
        code=code, defaults={"name": tpl["name"], "name_en": tpl["name_en"], "industry_template": code}
    )
    for order, s in enumerate(tpl["stages"], start=1):
        Stage.objects.update_or_create(
            pipeline=pipeline, code=s["code"],
            defaults={"name": s["name"], "name_en": s["name_en"], "order": order,
                      "probability": s["probability"], "kind": s["kind"]},
        )
    for line in tpl["product_lines"]:
        pl, _c = ProductLine.objects.update_or_create(
            code=line["code"], defaults={"name": line["name"], "name_en": line["name_en"]}
        )
        for p in line["products"]:
            Product.objects.update_or_create(
                code=p["code"],
                defaults={"line": pl, "name": p["name"], "name_en": p["name_en"], "list_price": p["list_price"]},
            )
    if make_default:
        Pipeline.objects.exclude(pk=pipeline.pk).update(is_default=False)
        Pipeline.objects.filter(pk=pipeline.pk).update(is_default=True)
        pipeline.is_default = True
    audit.record(actor=actor, obj=pipeline, action="template_apply" if created else "template_refresh",
                 changes={"template": [None, code]})
    return pipeline


def _parse_amount(value, errors: dict) -> decimal.Decimal | None:
    try:
        amount = decimal.Decimal(str(value).replace(",", "").strip())
    except (decimal.InvalidOperation, ValueError):
        errors["amount"] = _("金额必须是数字")
        return None
    if not amount.is_finite():
        errors["amount"] = _("金额必须是数字")
    elif amount < 0:
        errors["amount"] = _("金额不能为负数")
    elif amount >= decimal.Decimal("1e12"):
        errors["amount"] = _("金额过大")
    else:
        return amount.quantize(decimal.Decimal("0.01"))
    return None


def _parse_date(value, field: str, errors: dict) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        errors[field] = _("日期格式应为 YYYY-MM-DD")
        return None


def _check_lengths(model, values: dict) -> None:
    errors: dict = {}
    length_errors(model, values, errors)
    if errors:
        raise ValidationFailed(errors)


def _validate_opportunity(data: dict, *, partial: bool, pipeline: Pipeline | None) -> dict:
    errors: dict[str, str] = {}
    clean: dict = {}
    if "name" in data or not partial:
        name = str(data.get("name") or "").strip()
        if not name:
            errors["name"] = _("商机名称不能为空")
        clean["name"] = name
    if "amount" in data and data["amount"] is not None:
        clean["amount"] = _parse_amount(data["amount"], errors)
    if "expected_close_date" in data:
        clean["expected_close_date"] = _parse_date(data["expected_close_date"], "expected_close_date", errors)
    if "probability" in data and data["probability"] is not None:
        try:
            p = int(data["probability"])
            if not 0 <= p <= 100:
                raise ValueError
            clean["probability"] = p
        except (TypeError, ValueError):
            errors["probability"] = _("赢率必须是0到100的整数")
    if data.get("products") is not None:
        ids = data["products"]
        if not isinstance(ids, list | tuple):
            errors["products"] = _("必须是产品编号列表")
        else:
            products = list(Product.objects.filter(pk__in=[i for i in ids if isinstance(i, int)]))
            if len(products) != len(set(ids)):
                errors["products"] = _("包含不存在的产品")
            clean["products"] = products
    length_errors(Opportunity, clean, errors)
    if errors:
        raise ValidationFailed(errors)
    return clean


@transaction.atomic
def opportunity_create(
    *, actor: User, customer: Customer, owner: User | None = None, pipeline: Pipeline | None = None,
    stage: Stage | None = None, **data,
) -> Opportunity:
    if actor.role in User.CROSS_ROLES:
        raise Forbidden(_("你的角色不能创建商机"))
    if not customer_can_write(user=actor, customer=customer):
        raise Forbidden(_("你对该客户只有只读权限"))
    owner = owner or actor
    owner_check(actor=actor, owner=owner)
    pipeline = pipeline or (stage.pipeline if stage else Pipeline.objects.order_by("-is_default", "id").first())
    if pipeline is None:
        raise ValidationFailed({"pipeline": _("尚未配置销售流程，请先应用行业模板")})
    clean = _validate_opportunity(data, partial=False, pipeline=pipeline)
    if stage is None:
        stage = pipeline.stages.filter(kind=Stage.Kind.OPEN).order_by("order").first()
    elif stage.pipeline_id != pipeline.pk:
        raise ValidationFailed({"stage": _("阶段不属于该销售流程")})
    if stage.kind != Stage.Kind.OPEN:
        raise ValidationFailed({"stage": _("新商机必须处于进行中的阶段")})
    if customer.status == Customer.Status.CHURNED:
        raise ValidationFailed({"customer": _("客户已流失，请先恢复客户状态")})
    products = clean.pop("products", [])
    now = timezone.now()
    opp = Opportunity.objects.create(
        customer=customer, owner=owner, pipeline=pipeline, stage=stage,
        probability=clean.pop("probability", stage.probability),
        last_progress_at=now, stage_entered_at=now, **clean,
    )
    if products:
        opp.products.set(products)
    audit.record(
        actor=actor, obj=opp, action="create",
        changes=audit.diff({}, {**audit.snapshot(opp, OPP_FIELDS), "products": sorted(p.pk for p in products)}),
    )
    grade_recompute_for(actor=actor, customer_ids=[customer.pk])  # open pipeline is a grading metric
    return opp


@transaction.atomic
def opportunity_update(*, actor: User, opportunity: Opportunity, version: int | None = None, **data) -> Opportunity:
    if not opportunity_can_write(user=actor, opportunity=opportunity):
        raise Forbidden(_("你对该商机只有只读权限"))
    # No join under FOR UPDATE: PostgreSQL re-checks a locked row against the joined stage row it
    # read before waiting, so a concurrent stage change would make the row vanish (DoesNotExist → 500).
    current = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    clean = _validate_opportunity(data, partial=True, pipeline=current.pipeline)
    if "loss_reason" in data or "loss_note" in data:
        if current.stage.kind != Stage.Kind.LOST:
            raise ValidationFailed({"loss_reason": _("只有输单的商机可以填写输单原因")})
        reason = data.get("loss_reason", current.loss_reason)
        if reason not in Opportunity.LossReason.values:
            raise ValidationFailed({"loss_reason": _("无效的输单原因")})
        clean["loss_reason"] = reason
        clean["loss_note"] = str(data.get("loss_note", current.loss_note) or "").strip()
        _check_lengths(Opportunity, {"loss_note": clean["loss_note"]})
    products = clean.pop("products", None)
    before = {**audit.snapshot(current, OPP_FIELDS), "products": sorted(current.products.values_list("pk", flat=True))}
    for k, v in clean.items():
        setattr(current, k, v)
    after = {**audit.snapshot(current, OPP_FIELDS),
             "products": sorted(p.pk for p in products) if products is not None else before["products"]}
    changes = audit.diff(before, after)
    if not changes:
        return current
    current.version = F("version") + 1
    current.last_progress_at = timezone.now()
    current.save()
    if products is not None:
        current.products.set(products)
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="update", changes=changes)
    if "amount" in changes or "products" in changes:
        grade_recompute_for(actor=actor, customer_ids=[current.customer_id])
    return current


@transaction.atomic
def opportunity_move_stage(
    *, actor: User, opportunity: Opportunity, stage: Stage, version: int | None = None,
    loss_reason: str = "", loss_note: str = "",
) -> Opportunity:
    """Move to another stage of the same pipeline; lost needs a reason (it feeds the monthly report)."""
    if not opportunity_can_write(user=actor, opportunity=opportunity):
        raise Forbidden(_("你对该商机只有只读权限"))
    # Lock first, then compare versions: two movers with the same version → exactly one wins.
    # No join under FOR UPDATE: PostgreSQL re-checks a locked row against the joined stage row it
    # read before waiting, so a concurrent stage change would make the row vanish (DoesNotExist → 500).
    current = Opportunity.objects.select_for_update().get(pk=opportunity.pk)
    if version is not None and current.version != version:
        raise StaleVersion(current.version)
    if stage.pipeline_id != current.pipeline_id:
        raise ValidationFailed({"stage": _("阶段不属于该商机的销售流程")})
    if stage.kind == Stage.Kind.LOST:
        if loss_reason not in Opportunity.LossReason.values:
            raise ValidationFailed({"loss_reason": _("输单必须选择输单原因")})
    elif loss_reason:
        raise ValidationFailed({"loss_reason": _("只有输单时才能填写输单原因")})
    loss_note = (loss_note or "").strip()
    _check_lengths(Opportunity, {"loss_note": loss_note})
    if stage.pk == current.stage_id:
        return current
    before = audit.snapshot(current, OPP_FIELDS)
    was_closed = current.closed_at is not None
    now = timezone.now()
    current.stage = stage
    current.probability = stage.probability
    current.stage_entered_at = now
    current.last_progress_at = now
    current.closed_at = now if stage.kind != Stage.Kind.OPEN else None
    current.loss_reason = loss_reason if stage.kind == Stage.Kind.LOST else ""
    current.loss_note = loss_note if stage.kind == Stage.Kind.LOST else ""
    changes = audit.diff(before, audit.snapshot(current, OPP_FIELDS))
    current.version = F("version") + 1
    current.save()
    current.refresh_from_db()
    audit.record(actor=actor, obj=current, action="stage_change", changes=changes)
    if stage.kind == Stage.Kind.WON:
        # The first won deal turns a lead into an active customer; that is a customer change like any other.
        customer = Customer.objects.select_for_update().get(pk=current.customer_id)
        if customer.status == Customer.Status.LEAD:
            Customer.objects.filter(pk=customer.pk).update(
                status=Customer.Status.ACTIVE, version=F("version") + 1, updated_at=now)
            audit.record(actor=actor, obj=customer, action="update",
                         changes={"status": [Customer.Status.LEAD.value, Customer.Status.ACTIVE.value]})
    if was_closed or stage.kind != Stage.Kind.OPEN:
        # Winning, losing or reopening changes LTV, deal counts and open pipeline: re-grade (SPEC G3).
        grade_recompute_for(actor=actor, customer_ids=[current.customer_id])
    return current


@transaction.atomic
def customer_transfer(
    *, actor: User, customers: list[Customer], to_user: User, keep_old_owner: bool = False,
    old_owner_access: str = "read", reason: str = "",
) -> int:
    """Transfer customers (转移) with their contacts and open opportunities; bulk-safe, all-or-nothing.

    Lives here rather than in customers/ because it also moves opportunities.
    """
    # Any active colleague in a sales role may receive customers (a rep hands over to a peer), so this
    # is not limited by the actor's visibility; the API and page report a bad target as a field error.
    if not to_user.is_active or to_user.role not in User.SALES_ROLES:
        raise ValidationFailed({"to_user": _("只能转移给在职的销售人员")})
    if old_owner_access not in CustomerMember.Access.values:
        raise ValidationFailed({"old_owner_access": _("权限只能是 read 或 write")})
    reason = (reason or "").strip()
    _check_lengths(OwnerChange, {"reason": reason})
    denied = [c.name for c in customers if not customer_can_transfer(user=actor, customer=c)]
    if denied:
        raise Forbidden(_("无权转移：%(names)s") % {"names": "、".join(denied[:5])})
    locked = list(Customer.objects.select_for_update().filter(pk__in=[c.pk for c in customers]))
    entries = []
    moved = 0
    for customer in locked:
        old_owner_id = customer.owner_id
        if old_owner_id == to_user.pk:
            continue
        Customer.objects.filter(pk=customer.pk).update(owner=to_user, version=F("version") + 1)
        OwnerChange.objects.create(
            customer=customer, from_user_id=old_owner_id, to_user=to_user, actor=actor, reason=reason
        )
        CustomerMember.objects.filter(customer=customer, user=to_user).delete()
        if keep_old_owner:
            CustomerMember.objects.update_or_create(
                customer=customer, user_id=old_owner_id, defaults={"access": old_owner_access, "until": None}
            )
        opps = list(
            Opportunity.objects.filter(customer=customer, owner_id=old_owner_id, stage__kind=Stage.Kind.OPEN)
        )
        Opportunity.objects.filter(pk__in=[o.pk for o in opps]).update(owner=to_user, version=F("version") + 1)
        entries.append((customer, "transfer", {"owner": [old_owner_id, to_user.pk], "reason": [None, reason]},
                        None, None, None))
        for o in opps:
            entries.append((o, "transfer", {"owner": [old_owner_id, to_user.pk]}, None, None, None))
        moved += 1
    if entries:
        audit.record_many(actor=actor, entries=entries)
    return moved
