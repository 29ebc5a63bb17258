"""The demo org tree and logins. Tests build the same skeleton, so what the README
promises (`rep.east1` sees its own customers, `manager.east` its team's) is what
the tests check."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction

from tuijin.org.models import OrgUnit, User
from tuijin.org.services import orgunit_create, user_create

# username, role, display name, unit key, manager username
LOGINS = [
    ("admin", "admin", "系统管理员", "company", None),
    ("director", "director", "王总监", "company", None),
    ("manager.east", "manager", "陈经理", "east", "director"),
    ("rep.east1", "rep", "李明", "shanghai", "manager.east"),
    ("rep.east2", "rep", "张婷", "hangzhou", "manager.east"),
    ("manager.south", "manager", "刘经理", "south", "director"),
    ("rep.south1", "rep", "黄伟", "guangzhou", "manager.south"),
    ("finance", "finance", "周财务", "company", "director"),
    ("legal", "legal", "吴法务", "company", "director"),
    ("presales", "presales", "郑售前", "company", "director"),
    ("delivery", "delivery", "孙交付", "company", "director"),
]


@dataclass
class DemoOrg:
    units: dict[str, OrgUnit] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)


@transaction.atomic
def build_org(password: str | None = None, company_name: str = "推进示范医疗器械有限公司") -> DemoOrg:
    """Company → 华东/华南/华北 regions → cities → teams, and the documented logins."""
    password = password or settings.TUIJIN_DEMO_PASSWORD
    org = DemoOrg()
    company = orgunit_create(actor=None, name=company_name, kind="company")
    org.units["company"] = company
    layout = {
        "east": ("华东大区", {"shanghai": "上海", "hangzhou": "杭州"}),
        "south": ("华南大区", {"guangzhou": "广州", "shenzhen": "深圳"}),
        "north": ("华北大区", {"beijing": "北京"}),
    }
    for key, (name, cities) in layout.items():
        region = orgunit_create(actor=None, name=name, kind="region", parent=company)
        org.units[key] = region
        for ckey, cname in cities.items():
            city = orgunit_create(actor=None, name=cname, kind="city", parent=region)
            org.units[ckey] = city
            org.units[f"{ckey}_team"] = orgunit_create(actor=None, name=f"{cname}一组", kind="team", parent=city)
    # The demo's shared password is published in the README (and resembles the demo e-mail domain):
    # password validation is for real logins, not these.
    for username, role, display, unit, manager in LOGINS:
        org.users[username] = user_create(
            actor=None, username=username, password=password, role=role, display_name=display,
            org_unit=org.units[unit], manager=org.users.get(manager) if manager else None,
            email=f"{username}@demo.tuijin.local", validate_password=False,
        )
    return org
