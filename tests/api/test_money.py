"""Every amount in an API response is a string with exactly two decimals (docs/api.md).

Two nets, so a new money field cannot slip through:
- the schema: every response model's Decimal field must be core.apiutils.Money (ratios are allow-listed by
  name), and every response property named like money must carry the Money format (catches floats too);
- real responses: a set of endpoints over one small world, every value under a money key checked.
Requests still parse plain numbers ("100000", 100000).
"""

from __future__ import annotations

import datetime as dt
import re

from tuijin.api import api
from tuijin.core.apiutils import money
from tuijin.forecasting import services as forecasting

TWO_DECIMALS = re.compile(r"^-?\d+\.\d{2}$")
# Response properties whose name says "money". deviation/ratio/achievement/growth are rates, not money.
MONEY_NAME = re.compile(r"^(forecast|actual|won_all|baseline_mean|target|gap|value_gap|unexplained|expected|value|"
                        r"baseline|children_sum|raw|ltv)$|(^|_)(amount|price|total)$")
RATIO_FIELDS = {"deviation": "a rate (forecast vs actual), not money", "pace_ratio": "a rate",
                "ratio": "a rate", "achievement": "a rate", "growth": "a rate"}
# (operation path fragment, property): not money although the name says so, with the reason.
NOT_MONEY = {("/grading/rules", "value"): "a grade-rule threshold: money, a count or a share by metric",
             ("/imports", "total"): "a count of rows in the uploaded file"}


def _operations():
    for prefix, router in api._routers:
        for path, view in router.path_operations.items():
            for op in view.operations:
                yield f"{'/'.join(op.methods)} {prefix.rstrip('/')}{path}", op


def _walk_properties(schema: dict, defs: dict, seen=None):
    """(name, property schema) for every property reachable from a JSON schema."""
    seen = set() if seen is None else seen
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                yield from _walk_properties(defs.get(name, {}), defs, seen)
            return
        for name, prop in (schema.get("properties") or {}).items():
            yield name, prop
            yield from _walk_properties(prop, defs, seen)
        for key in ("items", "additionalProperties"):
            yield from _walk_properties(schema.get(key), defs, seen)
        for key in ("anyOf", "allOf", "oneOf"):
            for sub in schema.get(key) or []:
                yield from _walk_properties(sub, defs, seen)


def _is_raw_decimal(prop: dict) -> bool:
    options = prop.get("anyOf", [prop])
    types = {o.get("type") for o in options}
    return {"number", "string"} <= types


def _is_money(prop: dict) -> bool:
    return any(o.get("format") == "money" for o in prop.get("anyOf", [prop]))


def test_every_decimal_in_a_response_schema_is_money():
    raw, unnamed = [], []
    for name, op in _operations():
        for status, model in op.response_models.items():
            if not hasattr(model, "model_json_schema"):  # no response schema (None / NOT_SET): dicts, files
                continue
            schema = model.model_json_schema(mode="validation")  # a plain Decimal shows as number|string here
            for prop_name, prop in _walk_properties(schema, schema.get("$defs", {})):
                if _is_raw_decimal(prop) and prop_name not in RATIO_FIELDS:
                    raw.append((name, status, prop_name))
                if any(frag in name and prop_name == p for frag, p in NOT_MONEY):
                    continue
                if MONEY_NAME.search(prop_name) and prop_name not in RATIO_FIELDS and not _is_money(prop):
                    unnamed.append((name, status, prop_name, prop))
    assert raw == [], "Decimal response fields must use core.apiutils.Money"
    assert unnamed == [], "money-named response fields must use core.apiutils.Money"


def test_the_openapi_document_describes_money_as_two_decimal_strings():
    schema = api.get_openapi_schema()
    defs = schema["components"]["schemas"]
    props = list(_walk_properties({"anyOf": [{"$ref": f"#/{name}"} for name in defs]}, defs))
    money_props = [p for _n, p in props if _is_money(p)]
    assert money_props, "no Money field found in the OpenAPI document"
    for p in money_props:
        option = next(o for o in p.get("anyOf", [p]) if o.get("format") == "money")
        assert option["type"] == "string" and TWO_DECIMALS.match(option["example"])


def test_money_formatting():
    assert [money(v) for v in ("4080000", "1278906.80000000", 0, "0.005", "-12.345", None)] == [
        "4080000.00", "1278906.80", "0.00", "0.01", "-12.35", None]


def _money_values(data, path=""):
    """(path, value) of every value under a money-named key, anywhere in a JSON document."""
    if isinstance(data, dict):
        for k, v in data.items():
            if MONEY_NAME.search(k) and k not in RATIO_FIELDS and not isinstance(v, (dict, list)):
                yield f"{path}.{k}", v
            yield from _money_values(v, f"{path}.{k}")
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _money_values(v, f"{path}[{i}]")


def test_real_responses_carry_two_decimals(world, api_client):
    rep = world.users["rep.east1"]
    # The reported case: a line of 1,278,906.8 and a line total summed by the database.
    report = forecasting.report_create(actor=rep, summary="今天", lines=[{
        "opportunity_id": world.opps["rep.east1"].pk, "amount": "1278906.8",
        "expected_sign_date": (dt.date.today() + dt.timedelta(days=10)).isoformat(), "confidence": "commit",
        "evidence_ids": [world.activities["rep.east1"].pk]}])
    client = api_client(rep)
    # Requests still parse plain numbers.
    opp = world.opps["rep.east1"]
    resp = client.patch(f"/api/opportunities/{opp.pk}", {"amount": 4080000}, content_type="application/json")
    assert resp.status_code == 200 and resp.json()["amount"] == "4080000.00"
    urls = ["/api/forecasts/reports", f"/api/forecasts/reports/{report.pk}", "/api/opportunities",
            f"/api/opportunities/{opp.pk}", "/api/forecasts/accuracy", "/api/goals/boards/me"]
    products = client.get("/api/products")
    if products.status_code == 200:
        urls.append("/api/products")
    seen = []
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.content)
        for path, value in _money_values(resp.json()):
            seen.append((url, path))
            assert value is None or (isinstance(value, str) and TWO_DECIMALS.match(value)), (url, path, value)
    listed = client.get("/api/forecasts/reports").json()["items"][0]
    assert listed["line_total"] == "1278906.80"
    assert {u for u, _p in seen} >= {"/api/forecasts/reports", f"/api/forecasts/reports/{report.pk}",
                                     "/api/opportunities"}
