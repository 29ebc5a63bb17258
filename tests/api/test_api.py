"""The REST API: authentication, each endpoint's happy path, lists and filters, error shapes, history."""

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from tests.conftest import PASSWORD
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Contact, Customer, CustomerMember, OwnerChange
from tuijin.customers.services import customer_create
from tuijin.followups.models import Activity
from tuijin.pipeline.models import Opportunity

JSON = "application/json"


def post(client, url, data, **extra):
    return client.post(url, data, content_type=JSON, **extra)


def patch(client, url, data, **extra):
    return client.patch(url, data, content_type=JSON, **extra)


def fields_named(resp) -> set[str]:
    """The field names a 422 answer blames (last element of each detail[].loc)."""
    assert resp.status_code == 422, resp.content
    return {d["loc"][-1] for d in resp.json()["detail"]}


def history_count(kind: str, pk) -> int:
    return AuditEvent.objects.filter(object_type=kind, object_id=str(pk)).count()


# --- authentication ----------------------------------------------------------------------------------


def test_token_flow_good_password_gives_a_working_token(org):
    client = Client()
    resp = post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD})
    assert resp.status_code == 200
    token = resp.json()["token"]
    me = client.get("/api/me", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert me.status_code == 200
    assert me.json()["username"] == "rep.east1"


def test_wrong_password_is_401_and_gives_no_token(org):
    resp = post(Client(), "/api/auth/token", {"username": "rep.east1", "password": "nope"})
    assert resp.status_code == 401
    assert "token" not in resp.json()


def test_unknown_or_missing_token_is_401(org):
    client = Client()
    assert client.get("/api/me").status_code == 401
    assert client.get("/api/customers", HTTP_AUTHORIZATION="Bearer not-a-token").status_code == 401


def test_five_failures_throttle_the_sixth_attempt_even_with_the_right_password(org):
    client = Client()
    for _ in range(5):
        assert post(client, "/api/auth/token", {"username": "rep.east1", "password": "bad"}).status_code == 401
    resp = post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD})
    assert resp.status_code == 429
    # another address, or another user from this address, is not locked out
    other_ip = post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD},
                    REMOTE_ADDR="10.0.0.9")
    assert other_ip.status_code == 200
    assert post(client, "/api/auth/token", {"username": "rep.east2", "password": PASSWORD}).status_code == 200


def test_throttle_is_case_insensitive_on_username(org):
    client = Client()
    for name in ["rep.east1", "REP.EAST1", "Rep.East1", "rep.east1", "REP.east1"]:
        post(client, "/api/auth/token", {"username": name, "password": "bad"})
    assert post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD}).status_code == 429


def test_a_success_resets_the_failure_count(org):
    client = Client()
    for _ in range(4):
        post(client, "/api/auth/token", {"username": "rep.east1", "password": "bad"})
    assert post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD}).status_code == 200
    for _ in range(4):
        post(client, "/api/auth/token", {"username": "rep.east1", "password": "bad"})
    assert post(client, "/api/auth/token", {"username": "rep.east1", "password": PASSWORD}).status_code == 200


def test_inactive_users_token_stops_working(org, api_client):
    client = api_client(org.users["rep.east1"])
    org.users["rep.east1"].is_active = False
    org.users["rep.east1"].save()
    assert client.get("/api/me").status_code == 401


def test_me_with_token_and_with_session(org, api_client, login):
    mgr = org.users["manager.east"]
    for client in (api_client(mgr), login(mgr)):
        body = client.get("/api/me").json()
        assert body["username"] == "manager.east"
        assert body["role"] == "manager"
        assert body["display_name"] == "陈经理"
        assert body["org_unit"]["name"] == "华东大区"
        assert body["manager_id"] == org.users["director"].pk


def test_session_write_without_csrf_token_is_403(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["rep.east1"])
    c = world.customers["rep.east1"]
    assert client.get(f"/api/customers/{c.pk}").status_code == 200  # reads need no token
    resp = patch(client, f"/api/customers/{c.pk}", {"notes": "csrf?"})
    assert resp.status_code == 403
    assert post(client, "/api/customers", {"name": "无令牌客户"}).status_code == 403
    c.refresh_from_db()
    assert c.notes == ""
    assert not Customer.objects.filter(name="无令牌客户").exists()


def test_session_write_with_csrf_token_succeeds(world):
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.users["rep.east1"])
    client.get("/api/me")  # nothing sets the cookie for an API; make one the way a page would
    from django.middleware.csrf import _get_new_csrf_string, _mask_cipher_secret

    secret = _get_new_csrf_string()
    client.cookies["csrftoken"] = secret
    resp = post(client, "/api/customers", {"name": "有令牌客户"}, HTTP_X_CSRFTOKEN=_mask_cipher_secret(secret))
    assert resp.status_code == 201, resp.content


def test_bearer_writes_need_no_csrf_token(world, api_client):
    client = api_client(world.users["rep.east1"])
    client.handler.enforce_csrf_checks = True
    assert post(client, "/api/customers", {"name": "脚本客户"}).status_code == 201


def test_openapi_docs_and_healthz(org):
    client = Client()
    spec = client.get("/api/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for p in ["/api/customers", "/api/customers/{customer_id}", "/api/opportunities/{opportunity_id}/stage",
              "/api/activities", "/api/contacts", "/api/auth/token", "/api/me"]:
        assert p in paths
    assert client.get("/api/docs").status_code == 200
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["database"] == "ok"


# --- customers ---------------------------------------------------------------------------------------


def test_customer_create_get_patch_history(world, api_client):
    rep = world.users["rep.east1"]
    client = api_client(rep)
    resp = post(client, "/api/customers", {
        "name": "复旦大学附属中山医院", "credit_code": "91350100M000100Y43", "industry": "hospital_public",
        "tags": ["三甲"], "phone": "021-64041990",
        "contacts": [{"name": "赵主任", "mobile": "13811112222", "phone": "021-64041991", "email": "z@example.com",
                      "wechat": "zhao_wx", "qq": "778899"}],
    })
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["owner"] == {"id": rep.pk, "username": "rep.east1", "display_name": "李明"}
    assert body["version"] == 1 and body["tags"] == ["三甲"]
    cid = body["id"]
    contact = client.get(f"/api/contacts?customer_id={cid}").json()["items"][0]
    assert {k: contact[k] for k in ["mobile", "phone", "email", "wechat", "qq"]} == {
        "mobile": "13811112222", "phone": "021-64041991", "email": "z@example.com", "wechat": "zhao_wx",
        "qq": "778899"}

    assert client.get(f"/api/customers/{cid}").json()["name"] == "复旦大学附属中山医院"
    resp = patch(client, f"/api/customers/{cid}", {"version": 1, "city": "上海", "status": "lead"})
    assert resp.status_code == 200
    assert (resp.json()["city"], resp.json()["status"], resp.json()["version"]) == ("上海", "lead", 2)

    hist = client.get(f"/api/customers/{cid}/history").json()
    assert hist["count"] == 2
    assert [e["action"] for e in hist["items"]] == ["create", "update"]
    assert hist["items"][1]["changes"] == {"city": ["", "上海"], "status": ["active", "lead"]}
    assert hist["items"][1]["actor"] == "李明"
    assert hist["items"][1]["seq"] > hist["items"][0]["seq"]


def test_customer_create_names_every_bad_field(world, api_client):
    resp = post(api_client(world.users["rep.east1"]), "/api/customers",
                {"name": "", "credit_code": "91350100M000100Y44"})
    assert fields_named(resp) == {"name", "credit_code"}
    assert all(d["loc"][0] == "body" and d["msg"] for d in resp.json()["detail"])


def test_missing_required_field_is_422_in_the_same_shape(world, api_client):
    resp = post(api_client(world.users["rep.east1"]), "/api/customers", {"industry": "x"})
    assert "name" in fields_named(resp)


def test_contact_errors_are_named_with_their_position(world, api_client):
    resp = post(api_client(world.users["rep.east1"]), "/api/customers",
                {"name": "新医院", "contacts": [{"name": "甲", "mobile": "999"}]})
    assert resp.status_code == 422
    assert ["body", "contacts[0]", "mobile"] in [d["loc"] for d in resp.json()["detail"]]
    assert not Customer.objects.filter(name="新医院").exists()


def test_duplicate_on_create_names_field_and_owner_only(world, api_client):
    south = world.customers["rep.south1"]
    client = api_client(world.users["rep.east1"])
    resp = post(client, "/api/customers", {"name": south.name, "phone": south.phone})
    assert fields_named(resp) >= {"name", "phone"}
    text = json.dumps(resp.json(), ensure_ascii=False)
    assert world.users["rep.south1"].label in text
    contact = south.contacts.get()
    for secret in [contact.name, contact.mobile, south.phone, "rep.south1"]:
        assert secret not in text
    ok = post(client, "/api/customers", {"name": south.name, "allow_duplicate": True})
    assert ok.status_code == 201


def test_duplicates_endpoint(world, api_client):
    south = world.customers["rep.south1"]
    client = api_client(world.users["rep.east1"])
    resp = client.get("/api/customers/duplicates", {"phone": south.contacts.get().mobile})
    assert resp.status_code == 200
    assert resp.json() == [{"id": None, "name": None, "owner": "黄伟", "matched": ["phone"]}]  # not visible to east1
    assert client.get("/api/customers/duplicates", {"name": "没有这个客户"}).json() == []


def test_owner_id_outside_visibility_is_422(world, api_client):
    client = api_client(world.users["rep.east1"])
    resp = post(client, "/api/customers", {"name": "替人建客户", "owner_id": world.users["rep.south1"].pk})
    assert fields_named(resp) == {"owner_id"}
    mgr = api_client(world.users["manager.east"])
    resp = post(mgr, "/api/customers", {"name": "分配给下属", "owner_id": world.users["rep.east2"].pk})
    assert resp.status_code == 201 and resp.json()["owner"]["username"] == "rep.east2"


def test_cross_role_creating_a_customer_is_403(world, api_client):
    resp = post(api_client(world.users["presales"]), "/api/customers", {"name": "售前客户"})
    assert resp.status_code == 403
    assert not Customer.objects.filter(name="售前客户").exists()


def test_stale_customer_patch_is_409_and_changes_nothing(world, api_client):
    c = world.customers["rep.east1"]
    client = api_client(world.users["rep.east1"])
    assert patch(client, f"/api/customers/{c.pk}", {"version": 1, "notes": "first"}).status_code == 200
    n = history_count("customers.customer", c.pk)
    resp = patch(client, f"/api/customers/{c.pk}", {"version": 1, "notes": "second"})
    assert resp.status_code == 409
    assert resp.json()["current_version"] == 2
    c.refresh_from_db()
    assert (c.notes, c.version) == ("first", 2)
    assert history_count("customers.customer", c.pk) == n
    assert client.get(f"/api/customers/{c.pk}/history").json()["count"] == n


def test_patch_validation_is_422_and_changes_nothing(world, api_client):
    c = world.customers["rep.east1"]
    resp = patch(api_client(world.users["rep.east1"]), f"/api/customers/{c.pk}",
                 {"name": "", "size_band": "huge"})
    assert fields_named(resp) == {"name", "size_band"}
    c.refresh_from_db()
    assert c.version == 1


# --- lists, pagination, filters ----------------------------------------------------------------------


def make_customers(owner, n, **kw):
    return [customer_create(actor=owner, name=f"批量客户{i:02d}", **kw) for i in range(n)]


def test_customer_pagination(world, api_client):
    rep = world.users["rep.east1"]
    make_customers(rep, 4)
    client = api_client(rep)
    first = client.get("/api/customers", {"page_size": 2}).json()
    second = client.get("/api/customers", {"page_size": 2, "page": 2}).json()
    third = client.get("/api/customers", {"page_size": 2, "page": 3}).json()
    beyond = client.get("/api/customers", {"page_size": 2, "page": 9}).json()
    assert first["count"] == second["count"] == 5
    assert (len(first["items"]), len(second["items"]), len(third["items"]), beyond["items"]) == (2, 2, 1, [])
    ids = [c["id"] for c in first["items"] + second["items"] + third["items"]]
    assert len(set(ids)) == 5
    clamped = client.get("/api/customers", {"page_size": 100000, "page": -3}).json()
    assert len(clamped["items"]) == 5


def test_customer_filters_q_status_scope(world, api_client):
    rep = world.users["rep.east1"]
    mgr = world.users["manager.east"]
    customer_create(actor=rep, name="杭州邵逸夫医院", status="lead")
    client = api_client(mgr)
    names = lambda **p: {c["name"] for c in client.get("/api/customers", p).json()["items"]}  # noqa: E731
    assert names(q="邵逸夫") == {"杭州邵逸夫医院"}
    assert names(status="lead") == {"杭州邵逸夫医院"}
    assert names(scope="mine") == {world.customers["manager.east"].name}
    assert names(scope="team") == {world.customers["rep.east1"].name, world.customers["rep.east2"].name,
                                   "杭州邵逸夫医院"}
    assert names(scope="shared") == set()
    south = world.customers["rep.south1"]
    CustomerMember.objects.create(customer=south, user=mgr, access="read")
    assert names(scope="shared") == {south.name}
    assert names(owner_id=world.users["rep.east2"].pk) == {world.customers["rep.east2"].name}
    assert names(region="华南") == {south.name}


def test_opportunity_list_filters(world, api_client):
    mgr = world.users["manager.east"]
    client = api_client(mgr)
    opp = world.opps["rep.east1"]
    Opportunity.objects.filter(pk=opp.pk).update(stage=world.stages["demo"])
    Opportunity.objects.filter(pk=world.opps["rep.east2"].pk).update(stage=world.stages["lost"])
    names = lambda **p: {o["name"] for o in client.get("/api/opportunities", p).json()["items"]}  # noqa: E731
    assert names() == {"CT采购0", "CT采购1", "CT采购3"}
    assert names(stage_id=world.stages["demo"].pk) == {"CT采购0"}
    assert names(status="lost") == {"CT采购1"}
    assert names(status="open") == {"CT采购0", "CT采购3"}
    assert names(q="采购3") == {"CT采购3"}
    assert names(q=world.customers["rep.east2"].name) == {"CT采购1"}
    assert names(scope="mine") == {"CT采购3"}
    assert names(scope="team") == {"CT采购0", "CT采购1"}
    assert names(customer_id=world.customers["rep.east1"].pk) == {"CT采购0"}
    assert names(owner_id=world.users["rep.east2"].pk) == {"CT采购1"}
    page = client.get("/api/opportunities", {"page_size": 1}).json()
    assert page["count"] == 3 and len(page["items"]) == 1


def test_opportunity_scope_shared_ignores_expired_memberships(world, api_client):
    south_c = world.customers["rep.south1"]
    client = api_client(world.users["rep.east1"])
    m = CustomerMember.objects.create(customer=south_c, user=world.users["rep.east1"], access="read")
    assert {o["name"] for o in client.get("/api/opportunities", {"scope": "shared"}).json()["items"]} == {
        "CT采购2"}
    # manager.east sees rep.east2's opportunity through the org tree; an expired membership is not "shared"
    east2_c = world.customers["rep.east2"]
    CustomerMember.objects.create(customer=east2_c, user=world.users["manager.east"], access="read",
                                  until=timezone.localdate() - dt.timedelta(days=1))
    mgr = api_client(world.users["manager.east"])
    assert mgr.get("/api/opportunities", {"scope": "shared"}).json()["items"] == []
    assert mgr.get("/api/customers", {"scope": "shared"}).json()["items"] == []
    m.delete()


def test_activity_list_filters(world, api_client):
    client = api_client(world.users["manager.east"])
    activity_create_api = post(client, "/api/activities", {
        "customer_id": world.customers["rep.east1"].pk, "kind": "call", "subject": "经理回访电话"})
    assert activity_create_api.status_code == 201
    subjects = lambda **p: [a["subject"] for a in client.get("/api/activities", p).json()["items"]]  # noqa: E731
    assert sorted(subjects()) == sorted(["首次拜访"] * 3 + ["经理回访电话"])
    assert subjects(kind="call") == ["经理回访电话"]
    assert subjects(q="回访") == ["经理回访电话"]
    assert len(subjects(scope="mine")) == 2
    assert len(subjects(scope="team")) == 2
    assert len(subjects(customer_id=world.customers["rep.east1"].pk)) == 2
    assert len(subjects(owner_id=world.users["rep.east2"].pk)) == 1
    assert subjects(since=(timezone.now() + dt.timedelta(days=1)).isoformat()) == []
    assert subjects(scope="shared") == []
    CustomerMember.objects.create(customer=world.customers["rep.south1"], user=world.users["manager.east"])
    assert subjects(scope="shared") == ["首次拜访"]
    assert client.get("/api/activities", {"scope": "shared"}).json()["items"][0]["customer_id"] == (
        world.customers["rep.south1"].pk)


def test_contact_list_filters_and_pagination(world, api_client):
    client = api_client(world.users["director"])
    all_ = client.get("/api/contacts").json()
    assert all_["count"] == 4
    assert {c["name"] for c in client.get("/api/contacts", {"q": "联系人2"}).json()["items"]} == {"联系人2"}
    mobile = world.customers["rep.east2"].contacts.get().mobile
    assert [c["name"] for c in client.get("/api/contacts", {"q": mobile}).json()["items"]] == ["联系人1"]
    assert len(client.get("/api/contacts", {"page_size": 3}).json()["items"]) == 3


# --- contacts ----------------------------------------------------------------------------------------


def test_contact_create_get_patch_history(world, api_client):
    c = world.customers["rep.east1"]
    client = api_client(world.users["rep.east1"])
    resp = post(client, "/api/contacts", {"customer_id": c.pk, "name": "钱科长", "mobile": "+86 139 0000 1234",
                                          "wechat": "qian", "qq": "10001", "decision_role": "influencer"})
    assert resp.status_code == 201, resp.content
    ct = resp.json()
    assert (ct["customer_id"], ct["mobile"], ct["qq"]) == (c.pk, "+86 139 0000 1234", "10001")
    assert client.get(f"/api/contacts/{ct['id']}").json()["name"] == "钱科长"
    resp = patch(client, f"/api/contacts/{ct['id']}", {"version": ct["version"], "title": "设备科长"})
    assert resp.status_code == 200 and resp.json()["version"] == ct["version"] + 1
    stale = patch(client, f"/api/contacts/{ct['id']}", {"version": ct["version"], "title": "x"})
    assert stale.status_code == 409
    hist = client.get(f"/api/contacts/{ct['id']}/history").json()
    assert [e["action"] for e in hist["items"]] == ["create", "update"]
    assert hist["items"][1]["changes"] == {"title": ["", "设备科长"]}


def test_contact_create_validation(world, api_client):
    resp = post(api_client(world.users["rep.east1"]), "/api/contacts",
                {"customer_id": world.customers["rep.east1"].pk, "name": "", "email": "bad", "qq": "q"})
    assert fields_named(resp) == {"name", "email", "qq"}


# --- opportunities -----------------------------------------------------------------------------------


def test_opportunity_create_get_patch_stage_history(world, api_client):
    c = world.customers["rep.east1"]
    client = api_client(world.users["rep.east1"])
    resp = post(client, "/api/opportunities", {"name": "MRI 采购", "customer_id": c.pk, "amount": "3500000",
                                               "expected_close_date": "2027-09-30"})
    assert resp.status_code == 201, resp.content
    o = resp.json()
    assert (o["stage"]["code"], o["probability"], o["customer"]["id"]) == ("qualify", 10, c.pk)
    assert float(o["amount"]) == 3500000
    oid = o["id"]
    assert client.get(f"/api/opportunities/{oid}").json()["name"] == "MRI 采购"
    resp = patch(client, f"/api/opportunities/{oid}", {"version": 1, "amount": "3600000"})
    assert resp.status_code == 200 and resp.json()["version"] == 2
    resp = post(client, f"/api/opportunities/{oid}/stage", {"stage_id": world.stages["tender"].pk, "version": 2})
    assert resp.status_code == 200
    assert (resp.json()["stage"]["code"], resp.json()["probability"], resp.json()["version"]) == ("tender", 60, 3)
    hist = client.get(f"/api/opportunities/{oid}/history").json()
    assert [e["action"] for e in hist["items"]] == ["create", "update", "stage_change"]
    assert hist["items"][1]["changes"] == {"amount": ["3500000.00", "3600000.00"]}


def test_opportunity_validation_names_fields(world, api_client):
    client = api_client(world.users["rep.east1"])
    c = world.customers["rep.east1"]
    resp = post(client, "/api/opportunities", {"name": "", "customer_id": c.pk, "amount": "-5"})
    assert fields_named(resp) == {"name", "amount"}
    resp = post(client, "/api/opportunities", {"name": "x", "customer_id": c.pk, "stage_id": 987654})
    assert fields_named(resp) == {"stage_id"}
    resp = patch(client, f"/api/opportunities/{world.opps['rep.east1'].pk}", {"amount": "-1", "probability": 150})
    assert fields_named(resp) == {"amount", "probability"}


def test_lost_without_reason_is_422_and_with_reason_200(world, api_client):
    opp = world.opps["rep.east1"]
    client = api_client(world.users["rep.east1"])
    resp = post(client, f"/api/opportunities/{opp.pk}/stage", {"stage_id": world.stages["lost"].pk})
    assert fields_named(resp) == {"loss_reason"}
    resp = post(client, f"/api/opportunities/{opp.pk}/stage",
                {"stage_id": world.stages["lost"].pk, "loss_reason": "quote_delay", "loss_note": "报价晚了两周"})
    assert resp.status_code == 200
    assert (resp.json()["loss_reason"], resp.json()["closed_at"] is not None) == ("quote_delay", True)


def test_stale_stage_move_is_409_and_changes_nothing(world, api_client):
    opp = world.opps["rep.east1"]
    client = api_client(world.users["rep.east1"])
    n = history_count("pipeline.opportunity", opp.pk)
    resp = post(client, f"/api/opportunities/{opp.pk}/stage", {"stage_id": world.stages["demo"].pk, "version": 7})
    assert resp.status_code == 409 and resp.json()["current_version"] == 1
    opp.refresh_from_db()
    assert (opp.stage_id, opp.version) == (world.stages["qualify"].pk, 1)
    assert history_count("pipeline.opportunity", opp.pk) == n


def test_stale_opportunity_patch_is_409_and_changes_nothing(world, api_client):
    opp = world.opps["rep.east1"]
    client = api_client(world.users["rep.east1"])
    n = history_count("pipeline.opportunity", opp.pk)
    resp = patch(client, f"/api/opportunities/{opp.pk}", {"version": 0, "amount": "1"})
    assert resp.status_code == 409
    opp.refresh_from_db()
    assert str(opp.amount) == "100000.00"
    assert history_count("pipeline.opportunity", opp.pk) == n


def test_pipelines_products_users(world, api_client):
    client = api_client(world.users["manager.south"])
    pipes = client.get("/api/pipelines").json()
    assert [s["code"] for s in pipes[0]["stages"]] == ["qualify", "survey", "demo", "tender", "contract", "won",
                                                        "lost"]
    assert client.get("/api/products").status_code == 200 and client.get("/api/products").json()
    assert {u["username"] for u in client.get("/api/users").json()} == {"manager.south", "rep.south1"}


# --- activities --------------------------------------------------------------------------------------


def test_activity_create_get_history(world, api_client):
    c = world.customers["rep.east1"]
    opp = world.opps["rep.east1"]
    contact = c.contacts.get()
    client = api_client(world.users["rep.east1"])
    when = (timezone.now() - dt.timedelta(hours=2)).replace(microsecond=0)
    resp = post(client, "/api/activities", {
        "customer_id": c.pk, "opportunity_id": opp.pk, "contact_id": contact.pk, "kind": "demo",
        "occurred_at": when.isoformat(), "duration_minutes": 90, "subject": "产品演示", "conclusion": "认可方案",
    })
    assert resp.status_code == 201, resp.content
    a = resp.json()
    assert (a["customer_name"], a["owner_name"], a["opportunity_id"], a["contact_id"]) == (
        c.name, "李明", opp.pk, contact.pk)
    assert dt.datetime.fromisoformat(a["occurred_at"]) == when
    assert client.get(f"/api/activities/{a['id']}").json()["subject"] == "产品演示"
    hist = client.get(f"/api/activities/{a['id']}/history").json()
    assert hist["count"] == 1 and hist["items"][0]["action"] == "create"


def test_activity_validation_names_fields(world, api_client):
    c = world.customers["rep.east1"]
    client = api_client(world.users["rep.east1"])
    future = (timezone.now() + dt.timedelta(days=1)).isoformat()
    resp = post(client, "/api/activities", {"customer_id": c.pk, "kind": "fax", "occurred_at": future,
                                            "subject": "x"})
    assert fields_named(resp) == {"kind", "occurred_at"}
    resp = post(client, "/api/activities", {"customer_id": c.pk, "kind": "call", "subject": "x",
                                            "opportunity_id": world.opps["manager.east"].pk})
    # the opportunity belongs to another (invisible to this rep) customer → 404, no leak
    assert resp.status_code == 404
    n = Activity.objects.count()
    mgr = api_client(world.users["manager.east"])
    resp = post(mgr, "/api/activities", {"customer_id": c.pk, "kind": "call", "subject": "x",
                                         "opportunity_id": world.opps["rep.east2"].pk})
    assert fields_named(resp) == {"opportunity"}
    assert Activity.objects.count() == n


# --- team members and transfer -----------------------------------------------------------------------


def test_members_add_list_remove(world, api_client):
    c = world.customers["rep.east1"]
    client = api_client(world.users["rep.east1"])
    presales = world.users["presales"]
    resp = post(client, f"/api/customers/{c.pk}/members",
                {"user_id": presales.pk, "access": "write", "until": "2030-12-31"})
    assert resp.status_code == 201
    assert resp.json() == {"user_id": presales.pk, "username": "presales", "access": "write",
                           "until": "2030-12-31"}
    assert client.get(f"/api/customers/{c.pk}/members").json() == [resp.json()]
    assert api_client(presales).get(f"/api/customers/{c.pk}").status_code == 200
    resp = post(client, f"/api/customers/{c.pk}/members", {"user_id": presales.pk, "access": "owner"})
    assert fields_named(resp) == {"access"}
    assert client.delete(f"/api/customers/{c.pk}/members/{presales.pk}").status_code == 204
    assert client.get(f"/api/customers/{c.pk}/members").json() == []
    assert api_client(presales).get(f"/api/customers/{c.pk}").status_code == 404
    actions = [e["action"] for e in client.get(f"/api/customers/{c.pk}/history").json()["items"]]
    assert actions[-2:] == ["member_add", "member_remove"]


def test_transfer_endpoint(world, api_client):
    c = world.customers["rep.east1"]
    east1, east2 = world.users["rep.east1"], world.users["rep.east2"]
    client = api_client(world.users["manager.east"])
    resp = post(client, "/api/customers/transfer", {"customer_ids": [c.pk], "to_user_id": east2.pk,
                                                    "keep_old_owner": True, "reason": "区域调整"})
    assert resp.status_code == 200 and resp.json() == {"transferred": 1}
    c.refresh_from_db()
    assert c.owner == east2
    assert Opportunity.objects.get(pk=world.opps["rep.east1"].pk).owner == east2
    assert CustomerMember.objects.get(customer=c).user == east1
    assert OwnerChange.objects.get(customer=c).reason == "区域调整"
    hist = client.get(f"/api/customers/{c.pk}/history").json()["items"]
    assert hist[-1]["action"] == "transfer" and hist[-1]["changes"]["owner"] == [east1.pk, east2.pk]
    # the old owner keeps read access as a member
    assert api_client(east1).get(f"/api/customers/{c.pk}").status_code == 200


def test_transfer_of_an_invisible_customer_is_404_and_atomic(world, api_client):
    own, other = world.customers["rep.east1"], world.customers["rep.south1"]
    client = api_client(world.users["rep.east1"])
    resp = post(client, "/api/customers/transfer", {"customer_ids": [own.pk, other.pk],
                                                    "to_user_id": world.users["rep.east2"].pk})
    assert resp.status_code == 404
    own.refresh_from_db()
    assert own.owner == world.users["rep.east1"]


def test_another_reps_contact_is_404(world, api_client):
    other = Contact.objects.get(customer=world.customers["rep.south1"])
    assert api_client(world.users["rep.east1"]).get(f"/api/contacts/{other.pk}").status_code == 404


@pytest.mark.parametrize("url, status", [
    ("/api/customers/abc", 422), ("/api/opportunities/0", 404), ("/api/activities/999999", 404),
    ("/api/contacts/999999/history", 404),
])
def test_bad_or_missing_ids(world, api_client, url, status):
    assert api_client(world.users["admin"]).get(url).status_code == status
