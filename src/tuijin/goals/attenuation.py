"""Attenuation check of a cascade (SPEC G2): where a level passes on less than it received.

Two flags, each with an absolute and a relative gap:

- `sum_short`: an additive metric's children sum to less than the parent
  (gap = parent − sum, relative = gap / parent);
- `growth_drop`: a child's growth vs its baseline is below its parent's
  (gap in percentage points = parent growth − child growth, relative = that /
  parent growth, and the value the child would need to match the parent's
  growth: baseline × (1 + parent growth) − value);
- for ratio metrics (rates, averages) children are not summed: `below_parent`
  flags a child whose target is below its parent's.

Pure functions over Target rows already loaded; no queries.
"""

from __future__ import annotations

from decimal import Decimal

from django.utils.translation import gettext as _

from .metrics import q2


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:+.1f}%"


def growth(value: Decimal, baseline: Decimal) -> float | None:
    if not baseline:
        return None
    return float(Decimal(value) / Decimal(baseline) - 1)


def check_children(parent, children, *, additive: bool) -> list[dict]:
    """Flags for one parent and its children (objects with value, baseline, pk, scope_label)."""
    flags: list[dict] = []
    if not children:
        return flags
    parent_value = Decimal(parent.value)
    if additive:
        total = sum((Decimal(c.value) for c in children), Decimal("0"))
        if total < parent_value:
            gap = parent_value - total
            flags.append({
                "kind": "sum_short",
                "target_id": parent.pk,
                "scope": parent.scope_label,
                "absolute_gap": q2(gap),
                "relative_gap": float(gap / parent_value) if parent_value else None,
                "message": _("%(scope)s：下级目标合计 %(sum)s 少于本级目标 %(value)s，差 %(gap)s（%(rel).1f%%）") % {
                    "scope": parent.scope_label, "sum": f"{total:,.2f}", "value": f"{parent_value:,.2f}",
                    "gap": f"{gap:,.2f}", "rel": float(gap / parent_value * 100) if parent_value else 0},
            })
    parent_growth = growth(parent.value, parent.baseline)
    for child in children:
        if not additive and Decimal(child.value) < parent_value:
            gap = parent_value - Decimal(child.value)
            flags.append({
                "kind": "below_parent",
                "target_id": child.pk,
                "parent_id": parent.pk,
                "scope": child.scope_label,
                "absolute_gap": q2(gap),
                "relative_gap": float(gap / parent_value) if parent_value else None,
                "message": _("%(scope)s：目标 %(value)s 低于上级 %(parent)s") % {
                    "scope": child.scope_label, "value": f"{Decimal(child.value):,.2f}",
                    "parent": f"{parent_value:,.2f}"},
            })
        child_growth = growth(child.value, child.baseline)
        if parent_growth is None or child_growth is None:
            continue
        # Compare in whole basis points so 0.3 − 1e-17 float noise does not flag equal growth.
        if round(child_growth, 6) < round(parent_growth, 6):
            points = parent_growth - child_growth
            needed = q2(Decimal(child.baseline) * (Decimal(1) + Decimal(str(parent_growth))))
            flags.append({
                "kind": "growth_drop",
                "target_id": child.pk,
                "parent_id": parent.pk,
                "scope": child.scope_label,
                "growth": child_growth,
                "parent_growth": parent_growth,
                "absolute_gap": round(points, 6),
                "relative_gap": round(points / parent_growth, 6) if parent_growth else None,
                "value_gap": q2(needed - Decimal(child.value)),
                "message": _("%(scope)s：增长率 %(growth)s 低于上级 %(parent)s，差 %(points).1f 个百分点；"
                             "按上级增长率应为 %(needed)s") % {
                    "scope": child.scope_label, "growth": _pct(child_growth), "parent": _pct(parent_growth),
                    "points": points * 100, "needed": f"{needed:,.2f}"},
            })
    return flags
