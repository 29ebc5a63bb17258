"""API fuzzing: schemathesis generates requests for every operation in /api/openapi.json, in-process (WSGI).

Run as a rep and as a manager with real bearer tokens over the `world` data.
Every response must be a non-5xx, and every documented response must match
its schema (and content type). Undocumented 4xx codes (403/404/409/422) are
allowed: they are the API's documented error convention (docs/architecture.md).
Runtime is bounded: a few examples per operation, no deadline.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from django.core.serializers.json import DjangoJSONEncoder
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.conftest import PASSWORD

MAX_EXAMPLES = 5
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def _load_schema():
    from tuijin.api import api
    from tuijin.wsgi import application

    # Built when the module is collected (pytest-django has configured Django by then); the schema
    # needs no database. Eager, not schemathesis.pytest.from_fixture: its lazy mode does not work with
    # pytest 9. Taken from the API object, not GET /api/openapi.json: outside debug/demo mode that
    # needs a login, and there is no user yet at collection time.
    loaded = schemathesis.openapi.from_dict(json.loads(json.dumps(api.get_openapi_schema(), cls=DjangoJSONEncoder)))
    loaded.app = application
    loaded.location = "/api/openapi.json"
    return loaded


schema = _load_schema()


def _call(case, headers):
    """One generated request inside a savepoint rolled back afterwards.

    Every example starts from the same `world`, and on PostgreSQL a statement the
    database refused (answered 4xx by the API) cannot poison the test's transaction.
    """
    # As Django's own test Client does: otherwise the end of every WSGI request closes the test's
    # database connection (and its transaction) on PostgreSQL.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    sid = transaction.savepoint()
    try:
        response = case.call(headers=headers)
    finally:
        transaction.savepoint_rollback(sid)
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    case.validate_response(response, checks=CHECKS, headers=headers)


def _bearer(client, user) -> dict:
    resp = client.post("/api/auth/token", {"username": user.username, "password": PASSWORD},
                       content_type="application/json")
    assert resp.status_code == 200, resp.content
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.fixture
def rep_bearer(world, client):
    return _bearer(client, world.users["rep.east1"])


@pytest.fixture
def manager_bearer(world, client):
    return _bearer(client, world.users["manager.east"])


FUZZ = settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


@schema.parametrize()
@FUZZ
def test_every_operation_as_a_rep_gives_no_5xx_and_matches_its_schema(case, rep_bearer):
    _call(case, rep_bearer)


@schema.parametrize()
@FUZZ
def test_every_operation_as_a_manager_gives_no_5xx_and_matches_its_schema(case, manager_bearer):
    _call(case, manager_bearer)
