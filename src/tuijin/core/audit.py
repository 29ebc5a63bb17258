"""Recording and verifying the change trail (SPEC C3), keyed chain and checkpoints (docs/audit.md).

Services call `record(...)` inside their transaction with the before/after
values of the fields they changed. Each event's `hash` is an HMAC-SHA256 under
TUIJIN_AUDIT_KEY (from the environment, never the database) over every stored
column and the previous event's MAC, so someone who can only write the database
cannot rewrite an event and re-chain the rest. Events written before the key
existed keep their plain SHA-256 ("legacy, unkeyed"); the head row holds the
last legacy sequence number sealed with the key, so that boundary cannot be
moved without it.

Checkpoints (`checkpoint_write`) append the head's sequence and MAC to a file
outside the database, each line MAC-chained to the previous one; `verify()`
compares the chain against them, which catches truncation (the newest events
deleted and the head moved back) up to the last checkpoint.
"""

from __future__ import annotations

import datetime as dt
import decimal
import fcntl
import hashlib
import hmac
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
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


def audit_key() -> bytes:
    """The chain key from settings (TUIJIN_AUDIT_KEY, or the demo/test derivation in settings.py)."""
    key = getattr(settings, "TUIJIN_AUDIT_KEY", "")
    if not key:
        raise ImproperlyConfigured("TUIJIN_AUDIT_KEY is not set")
    return key.encode()


def key_id(key: bytes | None = None) -> str:
    """A short public fingerprint of the key (one-way), to tell a wrong key from tampering."""
    return hmac.new(key or audit_key(), b"tuijin-audit-key-id", hashlib.sha256).hexdigest()[:16]


def legacy_hash(event: AuditEvent) -> str:
    """The unkeyed SHA-256 of events written before the chain was keyed (and what an attacker can compute)."""
    return hashlib.sha256(_event_payload(event)).hexdigest()


def compute_hash(event: AuditEvent, *, key: bytes | None = None) -> str:
    """The event's MAC: HMAC-SHA256 under the chain key."""
    return hmac.new(key or audit_key(), _event_payload(event), hashlib.sha256).hexdigest()


def legacy_seal(legacy_until: int, key: bytes | None = None) -> str:
    """Seals the last legacy sequence number so a database-only attacker cannot extend the unkeyed prefix.

    The same formula is inlined in migration core.0003 (migrations must not depend on live code).
    """
    return hmac.new(key or audit_key(), f"tuijin-audit-legacy-until:{legacy_until}".encode(),
                    hashlib.sha256).hexdigest()


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
    key = audit_key()
    kid = key_id(key)
    if head.key_id and head.key_id != kid:
        # Appending under another key would write events no one can verify; fail loudly instead.
        raise ImproperlyConfigured(
            f"TUIJIN_AUDIT_KEY does not match the key the change trail was written with "
            f"(key id {head.key_id}, this key has {kid})"
        )
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
        event.hash = compute_hash(event, key=key)
        prev = event.hash
        events.append(event)
    AuditEvent.objects.bulk_create(events, batch_size=1000)
    AuditChainHead.objects.filter(id=1).update(last_seq=seq, last_hash=prev, key_id=kid)
    return events


# --- checkpoints -----------------------------------------------------------------------------------------


class CheckpointError(Exception):
    """The checkpoint file was tampered with, or the chain is behind/different from its last checkpoint."""


@dataclass(frozen=True)
class Checkpoint:
    line_no: int
    time: str
    seq: int
    mac: str
    key_id: str
    line_mac: str

    def line(self) -> str:
        return f"{self.time} {self.seq} {self.mac} {self.key_id} {self.line_mac}\n"


def checkpoint_path() -> Path:
    return Path(settings.TUIJIN_AUDIT_CHECKPOINT_FILE)


def _line_mac(key: bytes, prev_line_mac: str, time: str, seq: int, mac: str, kid: str) -> str:
    return hmac.new(key, f"{prev_line_mac} {time} {seq} {mac} {kid}".encode(), hashlib.sha256).hexdigest()


def parse_checkpoints(text: str, key: bytes | None = None) -> list[Checkpoint]:
    """The file's lines, each checked against its MAC chained to the line before; raises CheckpointError."""
    key = key or audit_key()
    kid = key_id(key)
    prev = GENESIS
    out = []
    for n, raw in enumerate(text.splitlines(), start=1):
        parts = raw.split(" ")
        if len(parts) != 5 or not parts[1].isdigit():
            raise CheckpointError(f"checkpoint file tampered with: line {n} is malformed")
        time, seq, mac, line_kid, line_mac = parts[0], int(parts[1]), parts[2], parts[3], parts[4]
        if line_kid != kid:
            raise CheckpointError(
                f"checkpoint file line {n} was written with key id {line_kid}, but TUIJIN_AUDIT_KEY has key id "
                f"{kid}: wrong key (or the file was tampered with)"
            )
        if not hmac.compare_digest(line_mac, _line_mac(key, prev, time, seq, mac, line_kid)):
            raise CheckpointError(f"checkpoint file tampered with: line {n} does not match its MAC")
        out.append(Checkpoint(n, time, seq, mac, line_kid, line_mac))
        prev = line_mac
    return out


def read_checkpoints(path: Path | None = None, key: bytes | None = None) -> list[Checkpoint]:
    path = Path(path or checkpoint_path())
    if not path.exists():
        return []
    return parse_checkpoints(path.read_text(encoding="utf-8"), key)


def checkpoint_write(*, now: dt.datetime | None = None, path: Path | None = None) -> Checkpoint:
    """Append the chain head's sequence and MAC to the checkpoint file (append-only, line-chained).

    Refuses (CheckpointError) when the file does not verify or the head went back or changed since the
    last checkpoint: that is the truncation this file exists to catch, and admins are told instead.
    Writes no audit event: one would move the head it is recording.
    """
    path = Path(path or checkpoint_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = audit_key()
    kid = key_id(key)
    head = AuditChainHead.objects.filter(id=1).first()
    seq, mac = (head.last_seq, head.last_hash or GENESIS) if head else (0, GENESIS)
    time = (now or timezone.now()).astimezone(dt.UTC).replace(microsecond=0).isoformat()
    with open(path, "a+", encoding="utf-8") as fh:
        # The periodic job and `tuijin audit checkpoint` may run at once; each line chains to the last.
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        existing = parse_checkpoints(fh.read(), key)
        last = existing[-1] if existing else None
        if last and seq < last.seq:
            raise CheckpointError(
                f"chain truncated: the head is at #{seq}, but the checkpoint of {last.time} recorded #{last.seq}"
            )
        if last and seq == last.seq and mac != last.mac:
            raise CheckpointError(f"chain rewritten: event #{seq} differs from the checkpoint of {last.time}")
        cp = Checkpoint(len(existing) + 1, time, seq, mac, kid,
                        _line_mac(key, last.line_mac if last else GENESIS, time, seq, mac, kid))
        fh.write(cp.line())
        fh.flush()
        os.fsync(fh.fileno())
    return cp


# --- verification ----------------------------------------------------------------------------------------


@dataclass
class VerifyResult:
    ok: bool
    checked: int
    broken_seq: int | None = None
    reason: str = ""
    legacy_until: int = 0  # events #1..#legacy_until carry the unkeyed SHA-256 (written before the key)
    checkpoints: list[Checkpoint] = field(default_factory=list)


def verify(batch_size: int = 5000, *, checkpoint_file: Path | None = None) -> VerifyResult:
    """Walk the chain in order under the key; report the first event that does not fit.

    Then compare with the checkpoint file: a checkpoint recording a higher sequence than the chain holds
    means the newest events were deleted and the head moved back.
    """
    key = audit_key()
    kid = key_id(key)
    head = AuditChainHead.objects.filter(id=1).first()
    if head and head.key_id and head.key_id != kid:
        return VerifyResult(False, 0, None, f"wrong key: the chain was written with key id {head.key_id}, "
                                            f"TUIJIN_AUDIT_KEY has key id {kid}")
    legacy_until = 0
    if head and (head.legacy_until or head.legacy_seal):
        if not hmac.compare_digest(head.legacy_seal, legacy_seal(head.legacy_until, key)):
            return VerifyResult(False, 0, None, f"the legacy (unkeyed) boundary #{head.legacy_until} in the "
                                                "chain head is not sealed by this key: head row edited")
        legacy_until = head.legacy_until
    try:
        checkpoints = read_checkpoints(checkpoint_file, key)
    except CheckpointError as exc:
        return VerifyResult(False, 0, None, str(exc), legacy_until)
    at_seq: dict[int, list[Checkpoint]] = {}
    for cp in checkpoints:
        at_seq.setdefault(cp.seq, []).append(cp)

    def fail(seq, reason, checked):
        return VerifyResult(False, checked, seq, reason, legacy_until, checkpoints)

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
                return fail(expected_seq, f"event #{expected_seq} is missing", checked)
            if event.prev_hash != prev:
                return fail(event.seq, f"event #{event.seq} does not link to its predecessor", checked)
            legacy = event.seq <= legacy_until
            expected = legacy_hash(event) if legacy else compute_hash(event, key=key)
            if not hmac.compare_digest(expected, event.hash):
                how = "its legacy SHA-256 does not match" if legacy else "its MAC does not match under TUIJIN_AUDIT_KEY"
                return fail(event.seq, f"event #{event.seq} was altered after it was written ({how})", checked)
            for cp in at_seq.get(event.seq, ()):
                if cp.mac != event.hash:
                    return fail(event.seq, f"event #{event.seq} differs from the checkpoint of {cp.time} "
                                           f"(checkpoint file line {cp.line_no}): chain rewritten", checked)
            prev = event.hash
            expected_seq += 1
            checked += 1
        last_pk = batch[-1].seq
    head = AuditChainHead.objects.filter(id=1).first()  # as of the end of the walk
    if head and head.last_seq != checked:
        missing = checked + 1
        return fail(missing, f"event #{missing} is missing (chain head says {head.last_seq})", checked)
    if head and checked and head.last_hash != prev:
        return fail(checked, f"the chain head does not match event #{checked}", checked)
    beyond = [cp for cp in checkpoints if cp.seq > checked]
    if beyond:
        cp = max(beyond, key=lambda c: c.seq)
        return fail(checked + 1, f"chain truncated: the checkpoint of {cp.time} (checkpoint file line "
                                 f"{cp.line_no}) recorded event #{cp.seq}, the chain ends at #{checked}", checked)
    return VerifyResult(True, checked, None, "", legacy_until, checkpoints)


def history_for(obj_or_type, object_id=None):
    """The events of one record, oldest first."""
    if object_id is None:
        return AuditEvent.objects.filter(
            object_type=object_type_of(obj_or_type), object_id=str(obj_or_type.pk)
        ).select_related("actor").order_by("seq")
    return AuditEvent.objects.filter(object_type=obj_or_type, object_id=str(object_id)).select_related(
        "actor"
    ).order_by("seq")
