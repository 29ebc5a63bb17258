"""Keyed change trail and checkpoints (docs/audit.md): an attacker who can write the database but lacks
TUIJIN_AUDIT_KEY can neither rewrite an event and re-chain the rest, nor truncate the trail past a
checkpoint; an edited checkpoint file and a wrong key are reported as such."""

import datetime as dt
import hashlib
import importlib
import io

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from tuijin.core import audit
from tuijin.core.models import AuditChainHead, AuditEvent
from tuijin.notify import tasks
from tuijin.notify.models import Notification

NOW = dt.datetime(2027, 3, 1, 15, 50, tzinfo=dt.UTC)
OTHER_KEY = "another-deployment-key-0123456789abcdef"


@pytest.fixture
def cp_file(tmp_path):
    path = tmp_path / "var" / "audit-checkpoints.log"
    with override_settings(TUIJIN_AUDIT_CHECKPOINT_FILE=path):
        yield path


def run(command):
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(command, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def plain_sha256(event):
    """What an attacker without the key computes: the old, unkeyed chain hash."""
    return hashlib.sha256(audit._event_payload(event)).hexdigest()


def rechain(events, hasher, prev):
    """Rewrite prev_hash/hash of `events` (in order) with `hasher`, and move the head to the last one."""
    for event in events:
        event.prev_hash = prev
        event.hash = hasher(event)
        AuditEvent.objects.filter(pk=event.pk).update(prev_hash=event.prev_hash, hash=event.hash,
                                                      changes=event.changes)
        prev = event.hash
    AuditChainHead.objects.filter(id=1).update(last_seq=events[-1].seq, last_hash=prev)
    return prev


def append_one(actor=None, note="x"):
    with transaction.atomic():
        return audit.record(actor=actor, action="note", changes={"n": [None, note]},
                            object_type="test.thing", object_id=1, object_repr="thing")


def truncate(n):
    """Delete the newest n events and move the head back, as a database-only attacker would."""
    last = AuditChainHead.objects.get(id=1).last_seq
    AuditEvent.objects.filter(seq__gt=last - n).delete()
    new_last = AuditEvent.objects.order_by("-seq").first()
    AuditChainHead.objects.filter(id=1).update(last_seq=new_last.seq, last_hash=new_last.hash)
    return last, new_last.seq


# (a) rewrite + rehash without the key

def test_rewriting_an_event_and_rehashing_the_rest_with_sha256_is_named(world, cp_file):
    events = list(AuditEvent.objects.order_by("seq"))
    assert len(events) > 20
    target = events[len(events) // 2]
    target.changes = {"name": [None, "伪造"]}
    rechain(events[target.seq - 1:], plain_sha256, events[target.seq - 2].hash)

    code, _out, err = run("audit_verify")
    assert code == 1
    assert f"at event #{target.seq}:" in err and "altered" in err
    assert audit.verify().broken_seq == target.seq


def test_claiming_the_rewritten_events_are_legacy_needs_the_key(world, cp_file):
    events = list(AuditEvent.objects.order_by("seq"))
    events[0].changes = {"forged": [1, 2]}
    rechain(events, plain_sha256, audit.GENESIS)
    # The attacker also marks the whole chain as written before the key existed.
    AuditChainHead.objects.filter(id=1).update(legacy_until=events[-1].seq, legacy_seal="0" * 64)
    result = audit.verify()
    assert not result.ok and "not sealed by this key" in result.reason


# (b) truncation after a checkpoint

def test_deleting_the_newest_events_and_moving_the_head_is_caught_by_the_checkpoint(world, cp_file):
    audit.checkpoint_write(now=NOW)
    before, after = truncate(5)
    assert audit.verify(checkpoint_file=cp_file.parent / "none.log").ok  # without the file it is invisible

    code, _out, err = run("audit_verify")
    assert code == 1
    assert "chain truncated" in err and f"recorded event #{before}" in err and f"ends at #{after}" in err
    assert audit.verify().broken_seq == after + 1


def test_truncating_then_appending_up_to_the_same_sequence_is_caught(world, cp_file):
    audit.checkpoint_write(now=NOW)
    before, after = truncate(3)
    for i in range(before - after):
        append_one(note=f"replacement {i}")
    result = audit.verify()
    assert not result.ok and result.broken_seq == before and "differs from the checkpoint" in result.reason


def test_a_checkpoint_is_refused_and_admins_alarmed_when_the_head_went_back(world, cp_file):
    tasks.audit_checkpoint_daily.call_local(force=True)
    truncate(2)
    with pytest.raises(audit.CheckpointError, match="truncated"):
        tasks.audit_checkpoint_daily.call_local(force=True)
    admin = world.users["admin"]
    alarm = Notification.objects.get(recipient=admin, kind="audit_alarm")
    assert "truncated" in alarm.body
    assert len(cp_file.read_text().splitlines()) == 1  # nothing appended after the refusal


# (c) the checkpoint file itself

def test_an_edited_checkpoint_line_is_reported_as_tampering(world, cp_file):
    audit.checkpoint_write(now=NOW)
    append_one()
    audit.checkpoint_write(now=NOW + dt.timedelta(days=1))
    lines = cp_file.read_text().splitlines()
    fields = lines[1].split(" ")
    fields[1] = str(int(fields[1]) - 1)  # pretend the newer checkpoint saw one event fewer
    cp_file.write_text("\n".join([lines[0], " ".join(fields)]) + "\n")

    code, _out, err = run("audit_verify")
    assert code == 1
    assert "checkpoint file tampered" in err and "line 2" in err
    with pytest.raises(audit.CheckpointError, match="tampered"):
        audit.checkpoint_write(now=NOW + dt.timedelta(days=2))


def test_removing_a_middle_checkpoint_line_breaks_the_line_chain(world, cp_file):
    for day in range(3):
        append_one(note=str(day))
        audit.checkpoint_write(now=NOW + dt.timedelta(days=day))
    lines = cp_file.read_text().splitlines()
    cp_file.write_text("\n".join([lines[0], lines[2]]) + "\n")
    result = audit.verify()
    assert not result.ok and "line 2" in result.reason and "tampered" in result.reason


# (d) clean chain

def test_clean_chain_with_checkpoints_verifies(world, cp_file):
    first = audit.checkpoint_write(now=NOW)
    append_one()
    second = tasks.audit_checkpoint_daily.call_local(force=True)
    assert second == first.seq + 1
    lines = cp_file.read_text().splitlines()
    assert [line.split(" ")[1] for line in lines] == [str(first.seq), str(second)]

    code, out, _err = run("audit_verify")
    assert code == 0, _err
    assert f"{second} events verified" in out and "2 checkpoint(s) match" in out
    result = audit.verify()
    assert result.ok and result.legacy_until == 0 and len(result.checkpoints) == 2


def test_the_daily_checkpoint_reaches_active_admins(world, cp_file):
    seq = tasks.audit_checkpoint_daily.call_local(force=True)
    head = AuditChainHead.objects.get(id=1)
    note = Notification.objects.get(recipient=world.users["admin"], kind="audit_checkpoint")
    assert f"#{seq}" in note.title and head.last_hash in note.body
    assert not Notification.objects.filter(kind="audit_checkpoint").exclude(recipient=world.users["admin"]).exists()


def test_checkpoint_command_writes_a_line(world, cp_file):
    code, out, _err = run("audit_checkpoint")
    assert code == 0 and "event #" in out
    assert cp_file.read_text().count("\n") == 1


# (e) wrong key

def test_wrong_key_is_named_not_reported_as_tampering(world, cp_file):
    audit.checkpoint_write(now=NOW)
    with override_settings(TUIJIN_AUDIT_KEY=OTHER_KEY):
        code, _out, err = run("audit_verify")
        assert code == 1
        assert "wrong key" in err and audit.key_id() in err
        with pytest.raises(ImproperlyConfigured, match="TUIJIN_AUDIT_KEY"):
            append_one()  # never append events under a second key
        # Without the head's fingerprint, the checkpoint file still names the key.
        AuditChainHead.objects.filter(id=1).update(key_id="")
        result = audit.verify()
        assert not result.ok and "wrong key" in result.reason
        cp_file.unlink()
        result = audit.verify()
        assert (result.ok, result.broken_seq) == (False, 1) and "TUIJIN_AUDIT_KEY" in result.reason


# migrating an unkeyed chain

def test_existing_unkeyed_chain_becomes_a_sealed_legacy_prefix(world, cp_file):
    events = list(AuditEvent.objects.order_by("seq"))
    last = events[-1].seq
    # Turn the trail into what an old deployment stored: plain SHA-256, no key fields on the head.
    rechain(events, plain_sha256, audit.GENESIS)
    AuditChainHead.objects.filter(id=1).update(key_id="", legacy_until=0, legacy_seal="")
    assert not audit.verify().ok

    migration = importlib.import_module("tuijin.core.migrations.0003_audit_chain_keyed")
    migration.seal_existing_chain(django_apps, None)
    result = audit.verify()
    assert result.ok and result.legacy_until == last

    keyed = append_one()
    assert keyed.hash == audit.compute_hash(keyed) != plain_sha256(keyed)
    code, out, _err = run("audit_verify")
    assert code == 0 and f"legacy, unkeyed up to #{last}" in out

    # Rewriting legacy events breaks the link into the first keyed event, which the attacker cannot re-MAC.
    legacy = list(AuditEvent.objects.filter(seq__lte=last).order_by("seq"))
    legacy[2].changes = {"forged": [1, 2]}
    rechain(legacy[2:], plain_sha256, legacy[1].hash)
    AuditChainHead.objects.filter(id=1).update(last_seq=keyed.seq, last_hash=keyed.hash)
    result = audit.verify()
    assert (result.ok, result.broken_seq) == (False, last + 1)

    # Moving the legacy boundary past the keyed event needs the key.
    AuditChainHead.objects.filter(id=1).update(legacy_until=last + 1)
    assert "not sealed" in audit.verify().reason
