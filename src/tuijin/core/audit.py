"""Recording and verifying the change trail (SPEC C3).

Services call `record(...)` inside their transaction with the before/after
values of the fields they changed. The hash covers every stored column, so
`verify()` detects an edited field, a deleted event or a re-ordered chain.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import models, transaction
from django.db.models import F
from django.utils import timezone

from .context import get_request_id
from .models import AuditChainHead, AuditEvent

GENESIS = "0" * 64


def to_jsonable(value):
    """Plain JSON for a model field value, stable across databases."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, decimal.Decimal):
        # Fixed two decimals: SQLite and PostgreSQL return amounts with different scales.
        return str(value.quantize(decimal.Decimal("0.01")))
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def snapshot(obj: models.Model, fields: Iterable[str]) -> dict:
    """The current values of `fields` (FKs by id) as JSON-ready data."""
    out = {}
    for name in fields:
        field = obj._meta.get_field(name)
        attr = field.attname if isinstance(field, models.ForeignKey) else name
        out[name] = to_jsonable(getattr(obj, attr))
    return out


def diff(before: dict, after: dict) -> dict:
    """{field: [before, after]} for the fields whose value changed."""
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return {k: [before.get(k), after.get(k)] for k in keys if before.get(k) != after.get(k)}


def _event_payload(event: AuditEvent) -> bytes:
    data = {
        "seq": event.seq,
        "created_at": to_jsonable(event.created_at),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "request_id": event.request_id,
        "object_type": event.object_type,
        "object_id": str(event.object_id),
        "object_repr": event.object_repr,
        "action": event.action,
        "changes": event.changes,
        "prev_hash": event.prev_hash,
    }
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def compute_hash(event: AuditEvent) -> str:
    return hashlib.sha256(_event_payload(event)).hexdigest()


def object_type_of(obj_or_model) -> str:
    return obj_or_model._meta.label_lower


def _lock_head() -> AuditChainHead:
    # The UPDATE is what serialises appenders; reading first would race.
    AuditChainHead.objects.get_or_create(id=1)
    AuditChainHead.objects.filter(id=1).update(last_seq=F("last_seq"))
    return AuditChainHead.objects.select_for_update().get(id=1)


def record(*, actor, obj: models.Model | None = None, action: str, changes: dict,
           object_type: str | None = None, object_id=None, object_repr: str | None = None) -> AuditEvent:
    """Append one event; must run inside the caller's transaction."""
    return record_many(
        actor=actor,
        entries=[(obj, action, changes, object_type, object_id, object_repr)],
    )[0]


def record_many(*, actor, entries) -> list[AuditEvent]:
    """Append several events in one chain extension (bulk operations)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit.record must be called inside a transaction")
    head = _lock_head()
    now = timezone.now()
    seq, prev = head.last_seq, head.last_hash or GENESIS
    events = []
    for obj, action, changes, object_type, object_id, object_repr in entries:
        seq += 1
        event = AuditEvent(
            seq=seq,
            created_at=now,
            actor=actor if actor is not None and getattr(actor, "pk", None) else None,
            actor_label=(getattr(actor, "username", "") or "system") if actor is not None else "system",
            request_id=get_request_id(),
            object_type=object_type or object_type_of(obj),
            object_id=str(object_id if object_id is not None else obj.pk),
            object_repr=(object_repr if object_repr is not None else str(obj))[:255],
            action=action,
            changes=to_jsonable(changes),
            prev_hash=prev,
        )
        event.hash = compute_hash(event)
        prev = event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    AuditChainHead.objects.filter(id=1).update(last_seq=seq, last_hash=prev)
    return events


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""


def verify(batch_size: int = 5000) -> VerifyResult:
    """Walk the chain in order; report the first event that does not fit."""
    prev = GENESIS
    expected_seq = 1
    checked = 0
    last_pk = 0
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=last_pk).order_by("seq")[:batch_size])
        if not batch:
            break
        for event in batch:
            if event.seq != expected_seq:
                return VerifyResult(False, checked, expected_seq, f"event #{expected_seq} is missing")
            if event.prev_hash != prev:
                return VerifyResult(False, checked, event.seq, f"event #{event.seq} does not link to its predecessor")
            if compute_hash(event) != event.hash:
                return VerifyResult(False, checked, event.seq, f"event #{event.seq} was altered after it was written")
            prev = event.hash
            expected_seq += 1
            checked += 1
        last_pk = batch[-1].seq
    head = AuditChainHead.objects.filter(id=1).first()
    if head and head.last_seq != checked:
        missing = checked + 1
        return VerifyResult(False, checked, missing, f"event #{missing} is missing (chain head says {head.last_seq})")
    return VerifyResult(True, checked)


def history_for(obj_or_type, object_id=None):
    """The events of one record, oldest first."""
    if object_id is None:
        return AuditEvent.objects.filter(
            object_type=object_type_of(obj_or_type), object_id=str(obj_or_type.pk)
        ).select_related("actor").order_by("seq")
    return AuditEvent.objects.filter(object_type=obj_or_type, object_id=str(object_id)).select_related(
        "actor"
    ).order_by("seq")
