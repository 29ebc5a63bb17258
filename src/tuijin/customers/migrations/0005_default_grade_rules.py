"""Seed the default customer grades (SPEC G3); documented in docs/health.md.

高净值 high_value: LTV ≥ 80,000 and more than 3 won deals in the last 12 months.
行业深耕 line_focused: more than 65% of the won amount in one product line.
潜力 growth: open pipeline ≥ 100,000, or open pipeline and a contact within 14 days.
普通 standard: everybody else (no conditions).
"""

from django.db import migrations

DEFAULT_RULES = [
    ("high_value", "高净值", "High value", 10, [
        {"metric": "ltv", "op": ">=", "value": 80000, "group": 0},
        {"metric": "deals_12m", "op": ">", "value": 3, "group": 0},
    ]),
    ("line_focused", "行业深耕", "Line focused", 20, [
        {"metric": "top_line_share", "op": ">", "value": 0.65, "group": 0},
    ]),
    ("growth", "潜力", "Growth", 30, [
        {"metric": "open_pipeline", "op": ">=", "value": 100000, "group": 0},
        {"metric": "open_pipeline", "op": ">", "value": 0, "group": 1},
        {"metric": "days_since_contact", "op": "<=", "value": 14, "group": 1},
    ]),
    ("standard", "普通", "Standard", 1000, []),
]


def seed(apps, schema_editor):
    GradeRule = apps.get_model("customers", "GradeRule")
    for code, name, name_en, priority, conditions in DEFAULT_RULES:
        GradeRule.objects.get_or_create(
            code=code, defaults={"name": name, "name_en": name_en, "priority": priority, "conditions": conditions}
        )


def unseed(apps, schema_editor):
    apps.get_model("customers", "GradeRule").objects.filter(code__in=[r[0] for r in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("customers", "0004_graderule")]
    operations = [migrations.RunPython(seed, unseed)]
