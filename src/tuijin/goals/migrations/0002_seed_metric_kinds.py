"""Seed the built-in metric kinds (their computing functions live in tuijin.goals.metrics)."""

from django.db import migrations

KINDS = [
    # key, name, name_en, unit, additive, description
    ("signed_revenue", "签约额", "Signed revenue", "cny", True,
     "周期内赢单商机（关闭时间在周期内）的金额合计"),
    ("new_customer_first_order_avg", "新客首单客单价", "New-customer first-order average", "cny", False,
     "周期内客户的第一笔赢单商机的平均金额"),
    ("repeat_deal_rate_6m", "老客6个月内二次成交率", "6-month repeat-deal rate", "percent", False,
     "截至周期末的6个月内首次成交的客户中，6个月内再次成交的比例"),
    ("reference_cases", "行业标杆客户案例", "Reference cases", "count", True,
     "周期内新建且带有“标杆客户/标杆案例”标签的客户数"),
    ("new_leads", "新增线索", "New leads", "count", True,
     "周期内新建、状态为线索或填写了来源的客户数"),
    ("activities", "跟进次数", "Activities", "count", True,
     "周期内发生的跟进记录条数"),
]


def seed(apps, schema_editor):
    MetricKind = apps.get_model("goals", "MetricKind")
    for order, (key, name, name_en, unit, additive, description) in enumerate(KINDS, start=1):
        MetricKind.objects.update_or_create(
            key=key, defaults=dict(name=name, name_en=name_en, unit=unit, additive=additive,
                                   description=description, order=order),
        )


def unseed(apps, schema_editor):
    apps.get_model("goals", "MetricKind").objects.filter(key__in=[k[0] for k in KINDS]).delete()


class Migration(migrations.Migration):
    dependencies = [("goals", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
