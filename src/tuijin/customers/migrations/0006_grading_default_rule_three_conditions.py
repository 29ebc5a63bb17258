"""The default 高净值 (high_value) rule gets the article's third condition (SPEC G3, docs/health.md):
LTV ≥ 80,000 AND more than 3 won deals in the last 12 months AND more than 65% of the won amount in
one product line.

Only a rule still exactly as 0005 seeded it is changed: an installation whose admin edited the rule
(conditions, names, priority or the active flag) keeps its own rule. Grades follow at the next
re-grading (nightly, or any rule change); a migration does not write the change trail.
"""

from django.db import migrations

SEEDED = {
    "name": "高净值", "name_en": "High value", "priority": 10, "is_active": True,
    "conditions": [
        {"metric": "ltv", "op": ">=", "value": 80000, "group": 0},
        {"metric": "deals_12m", "op": ">", "value": 3, "group": 0},
    ],
}
THREE_CONDITIONS = [
    {"metric": "ltv", "op": ">=", "value": 80000, "group": 0},
    {"metric": "deals_12m", "op": ">", "value": 3, "group": 0},
    {"metric": "top_line_share", "op": ">", "value": 0.65, "group": 0},
]


def _untouched(rule, conditions) -> bool:
    return all(getattr(rule, k) == v for k, v in SEEDED.items() if k != "conditions") and \
        rule.conditions == conditions


def forwards(apps, schema_editor):
    GradeRule = apps.get_model("customers", "GradeRule")
    rule = GradeRule.objects.filter(code="high_value").first()
    if rule is not None and _untouched(rule, SEEDED["conditions"]):
        rule.conditions = THREE_CONDITIONS
        rule.save(update_fields=["conditions", "updated_at"])


def backwards(apps, schema_editor):
    GradeRule = apps.get_model("customers", "GradeRule")
    rule = GradeRule.objects.filter(code="high_value").first()
    if rule is not None and _untouched(rule, THREE_CONDITIONS):
        rule.conditions = SEEDED["conditions"]
        rule.save(update_fields=["conditions", "updated_at"])


class Migration(migrations.Migration):
    dependencies = [("customers", "0005_default_grade_rules")]
    operations = [migrations.RunPython(forwards, backwards)]
