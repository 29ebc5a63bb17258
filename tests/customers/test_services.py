"""Customer, contact and team-member writes: validation, duplicates, permissions, versions, change trail."""

import datetime as dt

import pytest

from tuijin.core.audit import history_for, verify
from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.customers.models import Contact, Customer, CustomerMember
from tuijin.customers.services import (
    DuplicateFound,
    contact_create,
    contact_update,
    customer_create,
    customer_member_remove,
    customer_member_set,
    customer_update,
)

VALID_CODE = "91350100M000100Y43"


def test_create_records_an_audit_event_with_the_new_values(org):
    rep = org.users["rep.east1"]
    c = customer_create(actor=rep, name="  上海瑞金医院 ", industry="hospital_public", phone="021-64370045")
    assert c.owner == rep and c.name == "上海瑞金医院" and c.version == 1
    events = list(history_for(c))
    assert [e.action for e in events] == ["create"]
    assert events[0].actor == rep
    assert events[0].changes["name"] == [None, "上海瑞金医院"]
    assert events[0].changes["owner"] == [None, rep.pk]
    assert verify().ok


def test_create_stores_normalised_name_phone_and_credit_code(org):
    c = customer_create(actor=org.users["rep.east1"], name="联影医疗科技股份有限公司", phone="+86 21 6437 0045",
                        credit_code="91350100m000100y43")
    c.refresh_from_db()
    assert c.name_normalized == "联影医疗科技"
    assert c.phone_normalized == "02164370045"
    assert c.credit_code == VALID_CODE


def test_create_with_contacts_records_one_event_per_contact(org):
    c = customer_create(
        actor=org.users["rep.east1"], name="华山医院",
        contacts=[{"name": "王主任", "mobile": "13900001111", "wechat": "wang_dr", "qq": "123456",
                   "email": "wang@example.com"}],
    )
    contact = c.contacts.get()
    assert (contact.mobile, contact.wechat, contact.qq, contact.email) == (
        "13900001111", "wang_dr", "123456", "wang@example.com")
    assert [e.action for e in history_for(contact)] == ["create"]


def test_invalid_fields_are_all_named_and_nothing_is_written(org):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        customer_create(actor=org.users["rep.east1"], name="  ", credit_code="91350100M000100Y44",
                        status="bogus", phone="123")
    assert {"name", "credit_code", "status", "phone"} <= set(exc.value.errors)
    assert Customer.objects.count() == 0
    assert AuditEvent.objects.count() == before


def test_a_bad_contact_rolls_back_the_whole_customer(org):
    with pytest.raises(ValidationFailed) as exc:
        customer_create(actor=org.users["rep.east1"], name="华山医院",
                        contacts=[{"name": "王主任", "mobile": "12345"}])
    assert "contacts[0].mobile" in exc.value.errors
    assert not Customer.objects.filter(name="华山医院").exists()


@pytest.mark.parametrize(
    "data, field",
    [
        ({"name": "", "mobile": "13900001111"}, "name"),
        ({"name": "王", "mobile": "23900001111"}, "mobile"),
        ({"name": "王", "email": "not-an-email"}, "email"),
        ({"name": "王", "qq": "12ab"}, "qq"),
        ({"name": "王", "decision_role": "boss"}, "decision_role"),
    ],
)
def test_contact_validation_names_the_bad_field(world, data, field):
    with pytest.raises(ValidationFailed) as exc:
        contact_create(actor=world.users["rep.east1"], customer=world.customers["rep.east1"], **data)
    assert set(exc.value.errors) == {field}


def test_cross_role_staff_cannot_create_customers(org):
    for username in ["presales", "finance", "legal", "delivery"]:
        with pytest.raises(Forbidden):
            customer_create(actor=org.users[username], name=f"{username}的客户")
    assert Customer.objects.count() == 0


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"name": "上海联影医疗科技（股份）公司"}, "name"),
        ({"name": "完全不同", "credit_code": VALID_CODE}, "credit_code"),
        ({"name": "完全不同", "phone": "+86 21 6437 0045"}, "phone"),
    ],
)
def test_duplicates_name_the_field_and_owner_but_not_their_details(org, kwargs, field):
    east1 = org.users["rep.east1"]
    customer_create(actor=east1, name="上海联影医疗科技股份有限公司", credit_code=VALID_CODE, phone="021-64370045",
                    notes="机密备注", contacts=[{"name": "秘密联系人", "mobile": "13912345678"}])
    with pytest.raises(DuplicateFound) as exc:
        customer_create(actor=org.users["rep.south1"], **kwargs)
    assert field in exc.value.errors
    text = " ".join(m for msgs in exc.value.errors.values() for m in msgs)
    assert east1.label in text
    for secret in ["秘密联系人", "13912345678", "64370045", "机密备注"]:
        assert secret not in text
    assert Customer.objects.count() == 1


def test_duplicate_on_a_contact_mobile_is_found(org):
    customer_create(actor=org.users["rep.east1"], name="甲医院", contacts=[{"name": "李", "mobile": "13912345678"}])
    with pytest.raises(DuplicateFound) as exc:
        customer_create(actor=org.users["rep.south1"], name="乙医院", phone="+86 139 1234 5678")
    assert "phone" in exc.value.errors


def test_allow_duplicate_creates_anyway(org):
    customer_create(actor=org.users["rep.east1"], name="甲医院")
    customer_create(actor=org.users["rep.south1"], name="甲医院", allow_duplicate=True)
    assert Customer.objects.filter(name="甲医院").count() == 2


def test_update_records_before_and_after_of_changed_fields_only(world):
    rep = world.users["rep.east1"]
    c = world.customers["rep.east1"]
    updated = customer_update(actor=rep, customer=c, version=c.version, region="华北", industry="hospital_public")
    assert updated.version == c.version + 1 and updated.region == "华北"
    last = list(history_for(c))[-1]
    assert last.action == "update"
    assert last.changes == {"region": ["华东", "华北"]}


def test_update_without_changes_writes_nothing(world):
    c = world.customers["rep.east1"]
    n = AuditEvent.objects.count()
    result = customer_update(actor=world.users["rep.east1"], customer=c, version=c.version, region=c.region)
    assert result.version == c.version
    assert AuditEvent.objects.count() == n


def test_stale_version_raises_and_changes_nothing(world):
    c = world.customers["rep.east1"]
    n = AuditEvent.objects.count()
    with pytest.raises(StaleVersion) as exc:
        customer_update(actor=world.users["rep.east1"], customer=c, version=c.version + 5, region="华北")
    assert exc.value.current_version == c.version
    c.refresh_from_db()
    assert c.region == "华东"
    assert AuditEvent.objects.count() == n


def test_update_to_an_existing_name_is_a_duplicate(world):
    c = world.customers["rep.east1"]
    with pytest.raises(DuplicateFound):
        customer_update(actor=world.users["rep.east1"], customer=c, name=world.customers["rep.south1"].name)


def test_read_member_cannot_edit_but_write_member_can(world):
    c = world.customers["rep.east1"]
    owner, peer, presales = world.users["rep.east1"], world.users["rep.east2"], world.users["presales"]
    customer_member_set(actor=owner, customer=c, user=peer, access="read")
    customer_member_set(actor=owner, customer=c, user=presales, access="write")
    with pytest.raises(Forbidden):
        customer_update(actor=peer, customer=c, notes="改一下")
    updated = customer_update(actor=presales, customer=c, notes="售前补充")
    assert updated.notes == "售前补充"
    assert list(history_for(c))[-1].actor == presales


def test_unrelated_cross_role_staff_cannot_edit(world):
    with pytest.raises(Forbidden):
        customer_update(actor=world.users["finance"], customer=world.customers["rep.east1"], notes="x")


def test_member_add_change_and_remove_are_audited(world):
    c = world.customers["rep.east1"]
    owner, presales = world.users["rep.east1"], world.users["presales"]
    until = dt.date(2030, 1, 31)
    m = customer_member_set(actor=owner, customer=c, user=presales, access="read", until=until)
    assert (m.access, m.until) == ("read", until)
    customer_member_set(actor=owner, customer=c, user=presales, access="write")
    assert CustomerMember.objects.get(customer=c, user=presales).access == "write"
    customer_member_remove(actor=owner, customer=c, user=presales)
    assert not CustomerMember.objects.filter(customer=c, user=presales).exists()
    actions = [e.action for e in history_for(c)]
    assert actions[-3:] == ["member_add", "member_update", "member_remove"]
    assert list(history_for(c))[-2].changes["access"] == ["read", "write"]


def test_member_validation(world):
    c = world.customers["rep.east1"]
    owner = world.users["rep.east1"]
    with pytest.raises(ValidationFailed) as exc:
        customer_member_set(actor=owner, customer=c, user=owner)
    assert "user" in exc.value.errors
    with pytest.raises(ValidationFailed) as exc:
        customer_member_set(actor=owner, customer=c, user=world.users["presales"], access="admin")
    assert "access" in exc.value.errors
    with pytest.raises(ValidationFailed):
        customer_member_remove(actor=owner, customer=c, user=world.users["presales"])


def test_read_member_cannot_add_members(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["presales"], access="read")
    with pytest.raises(Forbidden):
        customer_member_set(actor=world.users["presales"], customer=c, user=world.users["finance"])


def test_contact_update_versions_and_audit(world):
    contact = Contact.objects.get(customer=world.customers["rep.east1"])
    rep = world.users["rep.east1"]
    updated = contact_update(actor=rep, contact=contact, version=contact.version, wechat="wx_new",
                             phone="021-55550000")
    assert updated.version == contact.version + 1
    assert list(history_for(contact))[-1].changes == {"wechat": ["", "wx_new"], "phone": ["", "021-55550000"]}
    with pytest.raises(StaleVersion):
        contact_update(actor=rep, contact=contact, version=contact.version, wechat="again")
    contact.refresh_from_db()
    assert contact.wechat == "wx_new"


def test_contact_on_a_read_only_customer_is_forbidden(world):
    c = world.customers["rep.east1"]
    customer_member_set(actor=world.users["rep.east1"], customer=c, user=world.users["rep.east2"], access="read")
    with pytest.raises(Forbidden):
        contact_create(actor=world.users["rep.east2"], customer=c, name="新联系人")


# --- owner rule (pages, API and import all go through customer_create) -------------------------------


@pytest.mark.parametrize(
    "actor, owner, allowed",
    [
        ("rep.east1", "rep.east2", False),  # a rep assigns only themselves
        ("manager.east", "rep.east2", True),  # a manager assigns within the team
        ("manager.east", "rep.south1", False),  # ... but not another region's rep
        ("director", "rep.south1", True),  # company-wide roles assign anyone
        ("admin", "manager.east", True),
    ],
)
def test_owner_must_be_one_the_actor_may_assign(org, actor, owner, allowed):
    kwargs = {"actor": org.users[actor], "owner": org.users[owner], "name": "指定负责人医院"}
    if allowed:
        assert customer_create(**kwargs).owner == org.users[owner]
        return
    n_events = AuditEvent.objects.count()
    with pytest.raises(ValidationFailed) as exc:
        customer_create(**kwargs)
    assert set(exc.value.errors) == {"owner"}
    assert not Customer.objects.exists() and AuditEvent.objects.count() == n_events


def test_deactivated_owner_is_refused_even_for_the_admin(org):
    rep = org.users["rep.east2"]
    rep.is_active = False
    rep.save(update_fields=["is_active"])
    with pytest.raises(ValidationFailed) as exc:
        customer_create(actor=org.users["admin"], owner=rep, name="停用负责人医院")
    assert set(exc.value.errors) == {"owner"}
    assert not Customer.objects.exists()


# --- duplicate check over every number of the new record ---------------------------------------------


def test_new_contact_landline_equal_to_an_existing_mobile_is_a_duplicate(org):
    customer_create(actor=org.users["rep.east1"], name="甲医院", contacts=[{"name": "李", "mobile": "13912345678"}])
    with pytest.raises(DuplicateFound) as exc:
        customer_create(actor=org.users["rep.south1"], name="乙医院",
                        contacts=[{"name": "王", "phone": "+86 139-1234-5678"}])
    assert "phone" in exc.value.errors and "13912345678" not in str(exc.value)
    assert list(Customer.objects.values_list("name", flat=True)) == ["甲医院"]


def test_new_contact_mobile_equal_to_an_existing_customer_phone_or_contact_is_a_duplicate(org):
    customer_create(actor=org.users["rep.east1"], name="甲医院", phone="021-64370045",
                    contacts=[{"name": "李", "phone": "0571 8888 1234"}])
    for contact in ({"name": "王", "phone": "(021) 6437 0045"}, {"name": "赵", "mobile": "13800000000",
                                                                  "phone": "0571-88881234"}):
        with pytest.raises(DuplicateFound):
            customer_create(actor=org.users["rep.south1"], name="乙医院", contacts=[contact])
    # Different numbers are not duplicates.
    customer_create(actor=org.users["rep.south1"], name="乙医院",
                    contacts=[{"name": "王", "mobile": "13800000000", "phone": "021-64370046"}])
    assert Customer.objects.count() == 2


def test_duplicates_find_checks_every_number_given(org):
    from tuijin.customers.selectors import duplicates_find

    a = customer_create(actor=org.users["rep.east1"], name="甲医院", contacts=[{"name": "李", "mobile": "13912345678"}])
    b = customer_create(actor=org.users["rep.east2"], name="乙医院", phone="021-64370045")
    found = duplicates_find(name="丙医院", phones=["+86 139 1234 5678", "021 6437 0045", "12"])
    assert sorted(m["id"] for m in found) == sorted([a.pk, b.pk])
    assert all(m["matched"] == ["phone"] for m in found)
    assert duplicates_find(name="丙医院", phones=["13900000000"]) == []
