"""Pages: every page renders per role, invisible records answer 404, stage moves go through the service,
login throttling, POST-only logout and the language switch."""

from __future__ import annotations

import pytest
from django.test import Client

from tuijin.core.audit import history_for
from tuijin.customers.models import Customer
from tuijin.followups.models import Activity
from tuijin.pipeline.models import Opportunity

from ..conftest import PASSWORD

ROLES = ["rep.east1", "manager.east", "director", "presales", "admin"]


@pytest.mark.parametrize("username", ROLES)
def test_every_page_renders_for_each_role(world, login, username):
    client = login(world.users[username])
    pages = ["/", "/customers/", "/customers/?scope=mine", "/customers/?scope=shared", "/customers/?scope=team",
             "/opportunities/", "/opportunities/?status=open", "/opportunities/kanban/",
             f"/opportunities/kanban/?pipeline={world.pipeline.pk}", "/activities/", "/activities/new/"]
    if username != "presales":
        pages.append("/customers/new/")
    for url in pages:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)


def test_record_pages_render_for_owner_and_manager(world, login):
    for username in ["rep.east1", "manager.east", "director"]:
        client = login(world.users[username])
        customer, opp = world.customers["rep.east1"], world.opps["rep.east1"]
        for url in [f"/customers/{customer.pk}/", f"/customers/{customer.pk}/edit/", f"/opportunities/{opp.pk}/",
                    f"/activities/new/?customer={customer.pk}"]:
            resp = client.get(url)
            assert resp.status_code == 200, (username, url, resp.status_code)
            assert customer.name.encode() in resp.content


def test_home_shows_role_specific_dashboards(world, login):
    rep = login(world.users["rep.east1"]).get("/")
    assert b'id="kpi-open"' in rep.content and b'id="stale-customers"' in rep.content
    mgr = login(world.users["manager.east"]).get("/")
    assert b'id="chart-stage"' in mgr.content and b"echarts.min.js" in mgr.content
    assert f"owner_id={world.users['rep.east2'].pk}&amp;status=open".encode() in mgr.content
    assert b'id="chart-region"' not in mgr.content
    director = login(world.users["director"]).get("/")
    assert b'id="chart-region"' in director.content
    presales = login(world.users["presales"]).get("/")
    assert b'id="shared-customers"' in presales.content and b"echarts" not in presales.content


def test_rep_gets_404_for_another_reps_records(world, login):
    client = login(world.users["rep.east1"])
    other_c, other_o = world.customers["rep.south1"], world.opps["rep.south1"]
    assert client.get(f"/customers/{other_c.pk}/").status_code == 404
    assert client.get(f"/customers/{other_c.pk}/edit/").status_code == 404
    assert client.get(f"/opportunities/{other_o.pk}/").status_code == 404
    assert client.get(f"/activities/new/?customer={other_c.pk}").status_code == 404
    resp = client.post(f"/opportunities/{other_o.pk}/stage",
                       {"stage_id": world.stages["survey"].pk, "version": other_o.version})
    assert resp.status_code == 404
    other_o.refresh_from_db()
    assert other_o.stage == world.stages["qualify"]


def test_manager_sees_team_customers_but_not_other_regions(world, login):
    resp = login(world.users["manager.east"]).get("/customers/")
    assert world.customers["rep.east2"].name in resp.content.decode()
    assert world.customers["rep.south1"].name not in resp.content.decode()


def test_customer_list_filters_and_htmx_partial(world, login):
    client = login(world.users["manager.east"])
    resp = client.get("/customers/", {"q": "测试客户1"}, HTTP_HX_REQUEST="true")
    body = resp.content.decode()
    assert resp.status_code == 200 and "<html" not in body
    assert world.customers["rep.east2"].name in body and world.customers["rep.east1"].name not in body
    resp = client.get("/customers/", {"scope": "mine"})
    assert world.customers["manager.east"].name in resp.content.decode()
    assert world.customers["rep.east2"].name not in resp.content.decode()


def test_stage_endpoint_moves_stage_through_service(world, login):
    opp = world.opps["rep.east1"]
    client = login(world.users["rep.east1"])
    resp = client.post(f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["survey"].pk,
                                                          "version": opp.version}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 200, resp.content
    opp.refresh_from_db()
    assert opp.stage == world.stages["survey"] and resp.json()["version"] == opp.version
    events = list(history_for(opp))
    assert events[-1].action == "stage_change"
    assert events[-1].changes["stage"] == [world.stages["qualify"].pk, world.stages["survey"].pk]
    page = client.get(f"/opportunities/{opp.pk}/")
    assert b'data-action="stage_change"' in page.content


def test_stage_form_post_redirects_to_detail(world, login):
    opp = world.opps["rep.east1"]
    resp = login(world.users["rep.east1"]).post(
        f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["demo"].pk, "version": opp.version})
    assert resp.status_code == 302 and resp["Location"] == f"/opportunities/{opp.pk}/"


def test_stale_version_answers_409_and_changes_nothing(world, login):
    opp = world.opps["rep.east1"]
    client = login(world.users["rep.east1"])
    resp = client.post(f"/opportunities/{opp.pk}/stage",
                       {"stage_id": world.stages["survey"].pk, "version": opp.version + 5})
    assert resp.status_code == 409
    assert "该记录已被他人修改" in resp.content.decode()
    resp = client.post(f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["survey"].pk,
                       "version": opp.version + 5}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 409 and resp.json()["ok"] is False
    opp.refresh_from_db()
    assert opp.stage == world.stages["qualify"] and opp.version == 1
    assert [e.action for e in history_for(opp)] == ["create"]


def test_lost_stage_needs_a_loss_reason(world, login):
    opp = world.opps["rep.east1"]
    client = login(world.users["rep.east1"])
    resp = client.post(f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["lost"].pk,
                       "version": opp.version}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 422
    opp.refresh_from_db()
    assert opp.stage == world.stages["qualify"]
    resp = client.post(f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["lost"].pk,
                       "version": opp.version, "loss_reason": "budget"}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 200
    opp.refresh_from_db()
    assert opp.loss_reason == "budget"


def test_read_only_member_cannot_move_stage(world, login):
    from tuijin.customers.services import customer_member_set

    customer, opp = world.customers["rep.east1"], world.opps["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=customer, user=world.users["presales"])
    client = login(world.users["presales"])
    assert client.get(f"/opportunities/{opp.pk}/").status_code == 200
    resp = client.post(f"/opportunities/{opp.pk}/stage", {"stage_id": world.stages["survey"].pk,
                       "version": opp.version}, HTTP_ACCEPT="application/json")
    assert resp.status_code == 403


def test_login_page_logs_in_and_redirects(world):
    client = Client()
    assert client.get("/customers/").status_code == 302
    assert client.get("/customers/")["Location"].startswith("/login/")
    assert client.get("/login/").status_code == 200
    resp = client.post("/login/", {"username": "rep.east1", "password": PASSWORD, "next": "/customers/"})
    assert resp.status_code == 302 and resp["Location"] == "/customers/"
    assert client.get("/customers/").status_code == 200


def test_login_external_next_is_ignored(world):
    resp = Client().post("/login/", {"username": "rep.east1", "password": PASSWORD, "next": "https://evil.example/"})
    assert resp["Location"] == "/"


def test_login_is_throttled_after_five_failures(world):
    client = Client()
    for _ in range(5):
        resp = client.post("/login/", {"username": "rep.east1", "password": "wrong"})
        assert resp.status_code == 200
        assert "用户名或密码错误" in resp.content.decode()
    resp = client.post("/login/", {"username": "rep.east1", "password": PASSWORD})
    assert resp.status_code == 429
    assert "登录失败次数过多" in resp.content.decode()
    assert "_auth_user_id" not in client.session


def test_logout_requires_post(world, login):
    client = login(world.users["rep.east1"])
    assert client.get("/logout/").status_code == 405
    assert client.get("/").status_code == 200
    resp = client.post("/logout/")
    assert resp.status_code == 302
    assert client.get("/").status_code == 302


def test_language_switch_renders_english_and_is_remembered(world, login):
    user = world.users["rep.east1"]
    client = login(user)
    assert "客户" in client.get("/customers/").content.decode()
    resp = client.post("/language", {"language": "en", "next": "/customers/"})
    assert resp.status_code == 302 and resp["Location"] == "/customers/"
    user.refresh_from_db()
    assert user.language == "en"
    body = client.get("/customers/").content.decode()
    assert '<html lang="en">' in body
    assert "Customers" in body and "New customer" in body
    # The choice follows the user to a new session on another device.
    assert "Customers" in login(user).get("/customers/").content.decode()
    client.post("/language", {"language": "zh-hans", "next": "/"})
    assert "新建客户" in client.get("/customers/").content.decode()


def test_anonymous_language_switch_uses_cookie(db):
    client = Client()
    client.post("/language", {"language": "en", "next": "/login/"})
    assert "Log in" in client.get("/login/").content.decode()


def test_create_customer_with_contact_and_duplicate_check(world, login):
    client = login(world.users["rep.east1"])
    resp = client.post("/customers/new/", {"name": "新华医院", "status": "active", "contact_name": "王主任",
                                           "contact_mobile": "13912345678"})
    assert resp.status_code == 302
    customer = Customer.objects.get(name="新华医院")
    assert customer.owner == world.users["rep.east1"] and customer.contacts.get().name == "王主任"
    # rep.east2 tries the same name: told who owns it, nothing created until "create anyway".
    other = login(world.users["rep.east2"])
    resp = other.post("/customers/new/", {"name": "新华医院", "status": "active"})
    body = resp.content.decode()
    assert resp.status_code == 422 and 'id="duplicate-warning"' in body and "李明" in body
    assert Customer.objects.filter(name="新华医院").count() == 1
    resp = other.post("/customers/new/", {"name": "新华医院", "status": "active", "allow_duplicate": "on"})
    assert resp.status_code == 302
    assert Customer.objects.filter(name="新华医院").count() == 2


def test_create_customer_shows_field_errors(world, login):
    client = login(world.users["rep.east1"])
    resp = client.post("/customers/new/", {"name": "", "status": "active"})
    assert resp.status_code == 422 and "客户名称不能为空" in resp.content.decode()
    # The first contact's errors land next to the contact fields, and nothing is created.
    resp = client.post("/customers/new/", {"name": "瑞金医院", "status": "active", "contact_name": "x",
                                           "contact_mobile": "123"})
    assert resp.status_code == 422
    assert "手机号应为以1开头的11位数字" in resp.content.decode()
    assert not Customer.objects.filter(name="瑞金医院").exists()


def test_customer_edit_with_stale_version_answers_409(world, login):
    customer = world.customers["rep.east1"]
    client = login(world.users["rep.east1"])
    resp = client.post(f"/customers/{customer.pk}/edit/", {"name": customer.name, "status": "active",
                       "region": "华北", "version": customer.version})
    assert resp.status_code == 302
    customer.refresh_from_db()
    assert customer.region == "华北" and customer.version == 2
    resp = client.post(f"/customers/{customer.pk}/edit/", {"name": customer.name, "status": "active",
                       "region": "华南", "version": 1})
    assert resp.status_code == 409 and "该记录已被他人修改" in resp.content.decode()
    customer.refresh_from_db()
    assert customer.region == "华北"
    detail = client.get(f"/customers/{customer.pk}/").content.decode()
    assert "华东" in detail and "→" in detail  # the change trail shows before → after


def test_customer_detail_forms_write_through_services(world, login):
    customer = world.customers["rep.east1"]
    client = login(world.users["rep.east1"])
    assert client.post(f"/customers/{customer.pk}/contacts/new",
                       {"name": "赵科长", "mobile": "13700000001"}).status_code == 302
    assert customer.contacts.filter(name="赵科长").exists()
    resp = client.post(f"/customers/{customer.pk}/contacts/new", {"name": "", "mobile": "1"})
    assert resp.status_code == 422 and "联系人姓名不能为空" in resp.content.decode()
    resp = client.post(f"/customers/{customer.pk}/opportunities/new", {"name": "MRI采购", "amount": "500000"})
    assert resp.status_code == 302
    assert Opportunity.objects.filter(name="MRI采购", customer=customer).exists()
    presales = world.users["presales"]
    assert client.post(f"/customers/{customer.pk}/members/add",
                       {"user": presales.pk, "access": "read"}).status_code == 302
    assert customer.members.filter(user=presales).exists()
    assert b"presales" in login(presales).get("/customers/?scope=shared").content or \
        customer.name in login(presales).get("/customers/?scope=shared").content.decode()
    assert client.post(f"/customers/{customer.pk}/members/{presales.pk}/remove").status_code == 302
    assert not customer.members.filter(user=presales).exists()


def test_quick_activity_form(world, login):
    customer = world.customers["rep.east1"]
    contact = customer.contacts.first()
    client = login(world.users["rep.east1"])
    page = client.get(f"/activities/new/?customer={customer.pk}").content.decode()
    assert world.opps["rep.east1"].name in page and world.opps["rep.east2"].name not in page
    resp = client.post(f"/activities/new/?customer={customer.pk}", {
        "customer": customer.pk, "kind": "call", "subject": "电话回访", "conclusion": "下周演示",
        "contact": contact.pk, "opportunity": world.opps["rep.east1"].pk,
    })
    assert resp.status_code == 302
    assert Activity.objects.filter(subject="电话回访", contact=contact, owner=world.users["rep.east1"]).exists()
    resp = client.post(f"/activities/new/?customer={customer.pk}", {"customer": customer.pk, "kind": "call"})
    assert resp.status_code == 422 and "请至少填写主题、关键结论或备注之一" in resp.content.decode()
    # A contact of another customer is not a valid choice.
    other_contact = world.customers["rep.east2"].contacts.first()
    resp = client.post(f"/activities/new/?customer={customer.pk}", {
        "customer": customer.pk, "kind": "call", "subject": "x", "contact": other_contact.pk})
    assert resp.status_code == 422


def test_transfer_by_manager(world, login):
    customer = world.customers["rep.east1"]
    client = login(world.users["manager.east"])
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="tab-transfer"' in page
    resp = client.post(f"/customers/{customer.pk}/transfer",
                       {"to_user": world.users["rep.east2"].pk, "old_owner_access": "read", "reason": "调岗",
                        "keep_old_owner": "on"})
    assert resp.status_code == 302
    customer.refresh_from_db()
    assert customer.owner == world.users["rep.east2"]
    page = client.get(f"/customers/{customer.pk}/").content.decode()
    assert "调岗" in page
    rep_page = login(world.users["rep.east1"]).get(f"/customers/{customer.pk}/").content.decode()
    assert 'id="tab-transfer"' not in rep_page


def test_opportunity_list_filters_used_by_home_links(world, login):
    client = login(world.users["manager.east"])
    rep2 = world.users["rep.east2"]
    body = client.get("/opportunities/", {"owner_id": rep2.pk, "status": "open"}).content.decode()
    assert world.opps["rep.east2"].name in body and world.opps["rep.east1"].name not in body
    body = client.get("/opportunities/", {"region": "华东", "status": "open"}).content.decode()
    assert world.opps["rep.east2"].name in body
    body = client.get("/activities/", {"owner_id": rep2.pk}).content.decode()
    assert world.customers["rep.east2"].name in body and world.customers["rep.east1"].name not in body
