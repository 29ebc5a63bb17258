"""The change trail of one record, made readable: field labels, choice labels and names instead of ids.

Used by the record pages of web and forecasting, so it lives in core; core sits below the apps whose
models it names, so those are looked up by app label when a trail is shown, never imported."""

from __future__ import annotations

from collections import defaultdict

from django.apps import apps
from django.utils.translation import gettext_lazy as _

from tuijin.core.audit import history_for

ACTION_LABELS = {
    "create": _("创建"),
    "update": _("修改"),
    "stage_change": _("阶段变更"),
    "transfer": _("转移"),
    "member_add": _("添加团队成员"),
    "member_update": _("修改团队成员"),
    "member_remove": _("移除团队成员"),
}
# Audit changes store foreign keys as ids; these fields are looked up to show names.
FK_MODEL_LABELS = {
    "owner": "org.User", "user": "org.User", "to_user": "org.User", "stage": "pipeline.Stage",
    "pipeline": "pipeline.Pipeline", "customer": "customers.Customer", "contact": "customers.Contact",
    "opportunity": "pipeline.Opportunity", "products": "pipeline.Product",
}


def _fk_model(field: str):
    label = FK_MODEL_LABELS.get(field)
    return apps.get_model(label) if label else None
EXTRA_LABELS = {"user": _("成员"), "access": _("权限"), "until": _("有效期至"), "reason": _("转移原因"),
                "products": _("产品"), "template": _("模板"), "pipeline": _("销售流程")}


def _ids(value):
    if isinstance(value, list):
        return [v for v in value if isinstance(v, int)]
    return [value] if isinstance(value, int) else []


def history_rows(obj) -> list[dict]:
    """Events of `obj`, newest first; one query for the events plus one per referenced model."""
    events = list(history_for(obj))
    wanted: dict[type, set[int]] = defaultdict(set)
    for event in events:
        for field, pair in (event.changes or {}).items():
            model = _fk_model(field)
            if model and isinstance(pair, list) and len(pair) == 2:
                for value in pair:
                    wanted[model].update(_ids(value))
    names = {model: {o.pk: str(o) for o in model.objects.filter(pk__in=ids)} for model, ids in wanted.items()}
    rows = []
    for event in reversed(events):
        changes = []
        for field, pair in (event.changes or {}).items():
            before, after = (pair + [None, None])[:2] if isinstance(pair, list) else (None, pair)
            changes.append({
                "field": _field_label(obj, field),
                "before": _value_label(obj, field, before, names),
                "after": _value_label(obj, field, after, names),
            })
        rows.append({
            "at": event.created_at,
            "actor": event.actor.label if event.actor else event.actor_label,
            "action": ACTION_LABELS.get(event.action, event.action),
            "action_code": event.action,
            "changes": changes,
        })
    return rows


def _field_label(obj, field: str):
    if field in EXTRA_LABELS:
        return EXTRA_LABELS[field]
    try:
        return obj._meta.get_field(field).verbose_name
    except Exception:  # a field no longer on the model still shows under its stored name
        return field


def _value_label(obj, field: str, value, names) -> str:
    if value in (None, "", []):
        return "—"
    model = _fk_model(field)
    if model:
        ids = _ids(value)
        return "、".join(names.get(model, {}).get(i, f"#{i}") for i in ids) or "—"
    try:
        choices = dict(obj._meta.get_field(field).flatchoices)
    except Exception:
        choices = {}
    if isinstance(value, list):
        return "、".join(str(v) for v in value)
    return str(choices.get(value, value))
