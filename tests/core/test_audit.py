"""Change trail (SPEC C3): snapshots and diffs, the hash chain, tamper detection, request ids."""

import datetime as dt
import decimal
import io
import uuid

import pytest
from django.core.management import call_command
from django.db import transaction

from tuijin.core import audit
from tuijin.core.models import AuditChainHead, AuditEvent
from tuijin.customers.models import Customer


def run_verify():
    """call_command('audit_verify') → (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("audit_verify", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


def test_to_jsonable_is_stable_across_types():
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert audit.to_jsonable(decimal.Decimal("5")) == "5.00"
    assert audit.to_jsonable(decimal.Decimal("5.000")) == "5.00"
    assert audit.to_jsonable(dt.date(2027, 3, 1)) == "2027-03-01"
    when = dt.datetime(2027, 3, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert audit.to_jsonable(when) == "2027-03-01T00:00:00+00:00"
    assert audit.to_jsonable({"a": [u, decimal.Decimal("1.5")]}) == {"a": [str(u), "1.50"]}


def test_snapshot_reads_foreign_keys_by_id(world):
    c = world.customers["rep.east1"]
    snap = audit.snapshot(c, ["name", "owner", "tags"])
    assert snap == {"name": c.name, "owner": world.users["rep.east1"].pk, "tags": []}


def test_diff_lists_only_changed_fields_with_before_and_after():
    assert audit.diff({"a": 1, "b": 2}, {"a": 1, "b": 3}) == {"b": [2, 3]}
    assert audit.diff({}, {"a": 1}) == {"a": [None, 1]}
    assert audit.diff({"a": 1}, {}) == {"a": [1, None]}
    assert audit.diff({"a": 1}, {"a": 1}) == {}


def test_record_outside_a_transaction_is_refused(world):
    # pytest-django runs each test inside a transaction; pretend the caller forgot to open one.
    conn = transaction.get_connection()
    saved = conn.in_atomic_block
    conn.in_atomic_block = False
    try:
        with pytest.raises(RuntimeError):
            audit.record(actor=None, obj=world.customers["rep.east1"], action="x", changes={})
    finally:
        conn.in_atomic_block = saved


def test_events_form_an_unbroken_chain(world):
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].prev_hash == audit.GENESIS
    for prev, event in zip(events, events[1:], strict=False):
        assert event.prev_hash == prev.hash
        assert audit.compute_hash(event) == event.hash
    head = AuditChainHead.objects.get(id=1)
    assert (head.last_seq, head.last_hash) == (events[-1].seq, events[-1].hash)
    result = audit.verify()
    assert result.ok and result.checked == len(events)


def test_verify_command_reports_ok(world):
    code, out, _err = run_verify()
    assert code == 0
    assert f"{AuditEvent.objects.count()} events verified" in out


def test_verify_works_across_batches(world):
    assert audit.verify(batch_size=3).ok
    AuditEvent.objects.filter(seq=7).update(action="tampered")
    result = audit.verify(batch_size=3)
    assert (result.ok, result.broken_seq) == (False, 7)


def test_editing_an_events_changes_is_detected_and_named(world):
    target = AuditEvent.objects.filter(object_type="customers.customer").order_by("seq")[1]
    AuditEvent.objects.filter(pk=target.pk).update(changes={"name": [None, "伪造的名字"]})
    code, _out, err = run_verify()
    assert code == 1
    assert f"#{target.seq}" in err
    assert f"at event #{target.seq}:" in err  # the first broken one, not a later one


@pytest.mark.parametrize("field, value", [
    ("actor_label", "someone-else"),
    ("request_id", "forged"),
    ("object_id", "999999"),
    ("created_at", dt.datetime(2020, 1, 1, tzinfo=dt.UTC)),
])
def test_editing_any_stored_column_is_detected(world, field, value):
    AuditEvent.objects.filter(seq=3).update(**{field: value})
    result = audit.verify()
    assert (result.ok, result.broken_seq) == (False, 3)


def test_rehashing_an_edited_event_still_breaks_the_link_to_the_next(world):
    event = AuditEvent.objects.get(seq=4)
    event.changes = {"forged": [1, 2]}
    event.hash = audit.compute_hash(event)
    AuditEvent.objects.filter(pk=event.pk).update(changes=event.changes, hash=event.hash)
    result = audit.verify()
    assert (result.ok, result.broken_seq) == (False, 5)


def test_deleting_an_event_is_detected(world):
    AuditEvent.objects.filter(seq=5).delete()
    code, _out, err = run_verify()
    assert code == 1
    assert "#5" in err


def test_deleting_the_last_event_is_detected(world):
    last = AuditEvent.objects.order_by("-seq").first()
    last.delete()
    code, _out, err = run_verify()
    assert code == 1
    assert f"#{last.seq}" in err


def test_deleting_everything_is_detected(world):
    AuditEvent.objects.all().delete()
    code, _out, err = run_verify()
    assert code == 1
    assert "#1" in err


def test_history_for_lists_one_records_events_in_order(world):
    c = world.customers["rep.east1"]
    from tuijin.customers.services import customer_update

    customer_update(actor=world.users["rep.east1"], customer=c, notes="一")
    customer_update(actor=world.users["rep.east1"], customer=c, notes="二")
    events = list(audit.history_for(c))
    assert [e.action for e in events] == ["create", "update", "update"]
    assert events == list(audit.history_for("customers.customer", c.pk))
    assert all(e.object_id == str(c.pk) for e in events)


def test_request_id_from_header_is_recorded(world, api_client):
    client = api_client(world.users["rep.east1"])
    c = world.customers["rep.east1"]
    resp = client.patch(f"/api/customers/{c.pk}", {"notes": "带请求号"}, content_type="application/json",
                        HTTP_X_REQUEST_ID="req-abc.123")
    assert resp.status_code == 200
    event = AuditEvent.objects.filter(object_type="customers.customer", object_id=str(c.pk)).last()
    assert event.request_id == "req-abc.123"
    history = client.get(f"/api/customers/{c.pk}/history").json()
    assert history["items"][-1]["request_id"] == "req-abc.123"


def test_unsafe_request_id_is_replaced_by_a_generated_one(world, api_client):
    client = api_client(world.users["rep.east1"])
    c = world.customers["rep.east1"]
    client.patch(f"/api/customers/{c.pk}", {"notes": "x"}, content_type="application/json",
                 HTTP_X_REQUEST_ID="bad id with spaces; drop table")
    event = AuditEvent.objects.filter(object_type="customers.customer", object_id=str(c.pk)).last()
    assert event.request_id and " " not in event.request_id and len(event.request_id) == 32


def test_service_calls_outside_requests_have_no_request_id(world):
    assert Customer.objects.exists()
    assert set(AuditEvent.objects.values_list("request_id", flat=True)) == {""}
