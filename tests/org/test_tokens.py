"""API tokens and passwords: list and revoke own tokens, revocation on password change and deactivation,
password validators, and token authentication that does not write on a read."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.conftest import PASSWORD
from tuijin.core.errors import ValidationFailed
from tuijin.core.models import AuditEvent
from tuijin.org import services
from tuijin.org.models import ApiToken
from tuijin.org.services import user_create, user_deactivate, user_password_change

JSON = "application/json"
NEW_PASSWORD = "a-new-long-pass-42"


def token_for(user, name="", password=PASSWORD):
    resp = Client().post("/api/auth/token", {"username": user.username, "password": password, "name": name},
                         content_type=JSON)
    assert resp.status_code == 200, resp.content
    return resp.json()


def bearer(raw: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {raw}")


def writes(queries) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().split(" ", 1)[0].upper() in {"UPDATE", "INSERT", "DELETE"}]


# --- list and revoke ---------------------------------------------------------------------------------


def test_token_list_shows_own_live_tokens_without_secrets(org):
    rep, other = org.users["rep.east1"], org.users["rep.east2"]
    laptop, script = token_for(rep, "laptop"), token_for(rep, "BI script")
    token_for(other, "someone else's")
    resp = bearer(laptop["token"]).get("/api/auth/tokens")
    assert resp.status_code == 200
    body = resp.json()
    assert [t["name"] for t in body] == ["BI script", "laptop"]  # newest first, only the caller's
    assert {t["id"] for t in body} == {laptop["id"], script["id"]}
    assert set(body[0]) == {"id", "name", "created_at", "last_used_at", "expires_at"}
    text = resp.content.decode()
    assert laptop["token"] not in text and script["token"] not in text
    assert ApiToken.objects.get(pk=laptop["id"]).key_hash not in text


def test_revoke_own_token_then_it_is_401_and_audited(org):
    rep = org.users["rep.east1"]
    keep, drop = token_for(rep, "keep"), token_for(rep, "drop")
    assert AuditEvent.objects.filter(object_type="org.apitoken", object_id=str(drop["id"]),
                                     action="api_token_issued").count() == 1
    client = bearer(keep["token"])
    assert client.delete(f"/api/auth/tokens/{drop['id']}").status_code == 204
    assert bearer(drop["token"]).get("/api/me").status_code == 401
    assert client.get("/api/me").status_code == 200
    assert [t["id"] for t in client.get("/api/auth/tokens").json()] == [keep["id"]]
    event = AuditEvent.objects.get(object_type="org.apitoken", object_id=str(drop["id"]), action="api_token_revoked")
    assert event.actor_id == rep.pk
    # Revoking twice is the same answer as a token that never existed.
    assert client.delete(f"/api/auth/tokens/{drop['id']}").status_code == 404


def test_revoking_another_users_token_is_404_and_changes_nothing(org):
    mine = token_for(org.users["rep.east1"])
    theirs = token_for(org.users["rep.east2"])
    for who in (mine, token_for(org.users["admin"])):  # not even an admin revokes another's token here
        resp = bearer(who["token"]).delete(f"/api/auth/tokens/{theirs['id']}")
        assert resp.status_code == 404
        assert resp.json() == {"detail": "Not Found"}
    assert bearer(theirs["token"]).get("/api/me").status_code == 200
    assert bearer(mine["token"]).delete("/api/auth/tokens/99999999").status_code == 404


def test_the_token_in_use_can_revoke_itself(org):
    t = token_for(org.users["rep.east1"])
    client = bearer(t["token"])
    assert client.delete(f"/api/auth/tokens/{t['id']}").status_code == 204
    assert client.get("/api/me").status_code == 401


# --- password change and deactivation revoke tokens -------------------------------------------------


def test_api_password_change_revokes_every_token(org):
    rep = org.users["rep.east1"]
    a, b = token_for(rep, "a"), token_for(rep, "b")
    resp = bearer(a["token"]).post("/api/auth/password", {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
                                   content_type=JSON)
    assert resp.status_code == 204, resp.content
    assert bearer(a["token"]).get("/api/me").status_code == 401
    assert bearer(b["token"]).get("/api/me").status_code == 401
    rep.refresh_from_db()
    assert rep.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(object_type="org.user", object_id=str(rep.pk), action="password_change").count() == 1
    revoked = AuditEvent.objects.get(object_type="org.user", object_id=str(rep.pk), action="api_tokens_revoked")
    assert sorted(revoked.changes["api_tokens"][0]) == sorted([a["id"], b["id"]])
    assert NEW_PASSWORD not in str(list(AuditEvent.objects.values_list("changes", flat=True)))
    # The new password gets a working token.
    assert bearer(token_for(rep, password=NEW_PASSWORD)["token"]).get("/api/me").status_code == 200


def test_api_password_change_checks_old_password_and_validators(org):
    rep = org.users["rep.east1"]
    t = token_for(rep)
    client = bearer(t["token"])
    cases = [
        ({"old_password": "not-it", "new_password": NEW_PASSWORD}, "old_password"),
        ({"old_password": PASSWORD, "new_password": "short"}, "password"),
        ({"old_password": PASSWORD, "new_password": "password123"}, "password"),  # a common password
        ({"old_password": PASSWORD, "new_password": "48151623428"}, "password"),  # all digits
        ({"old_password": PASSWORD, "new_password": "rep.east1x"}, "password"),  # like the username
    ]
    for body, field in cases:
        resp = client.post("/api/auth/password", body, content_type=JSON)
        assert resp.status_code == 422, (body, resp.content)
        assert [d["loc"][-1] for d in resp.json()["detail"]] == [field], body
    rep.refresh_from_db()
    assert rep.check_password(PASSWORD)
    assert client.get("/api/me").status_code == 200  # nothing changed, the token still works


def test_deactivation_revokes_tokens(org):
    rep = org.users["rep.east1"]
    t = token_for(rep)
    user_deactivate(actor=org.users["admin"], user=rep)
    assert ApiToken.objects.get(pk=t["id"]).revoked_at is not None
    assert bearer(t["token"]).get("/api/me").status_code == 401
    # Reactivated, the old token stays dead: it was revoked, not only refused.
    rep.is_active = True
    rep.save(update_fields=["is_active"])
    assert bearer(t["token"]).get("/api/me").status_code == 401
    assert AuditEvent.objects.filter(object_type="org.user", object_id=str(rep.pk), action="update",
                                     changes__is_active=[True, False]).count() == 1


def test_service_password_change_by_an_admin_needs_no_old_password(org):
    rep = org.users["rep.east2"]
    t = token_for(rep)
    user_password_change(actor=org.users["admin"], user=rep, new_password=NEW_PASSWORD)
    assert bearer(t["token"]).get("/api/me").status_code == 401


# --- the password page ----------------------------------------------------------------------------------


def test_password_page_changes_password_keeps_this_session_and_revokes_tokens(org, login):
    rep = org.users["rep.east1"]
    t = token_for(rep)
    client = login(rep)
    assert 'href="/account/password/"' in client.get("/").content.decode()  # linked from the user menu
    page = client.get("/account/password/")
    assert page.status_code == 200 and 'name="new_password2"' in page.content.decode()
    resp = client.post("/account/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD,
                                              "new_password2": NEW_PASSWORD})
    assert resp.status_code == 302
    assert client.get("/").status_code == 200  # still signed in here
    assert bearer(t["token"]).get("/api/me").status_code == 401
    rep.refresh_from_db()
    assert rep.check_password(NEW_PASSWORD)


def test_password_page_shows_validator_messages(org, login):
    rep = org.users["rep.east1"]
    client = login(rep)
    resp = client.post("/account/password/", {"old_password": PASSWORD, "new_password": "123",
                                              "new_password2": "123"})
    assert resp.status_code == 422
    body = resp.content.decode()
    assert "is-invalid" in body and "8" in body  # the minimum length message
    resp = client.post("/account/password/", {"old_password": PASSWORD, "new_password": NEW_PASSWORD,
                                              "new_password2": NEW_PASSWORD + "x"})
    assert resp.status_code == 422 and "两次输入的新密码不一致" in resp.content.decode()
    rep.refresh_from_db()
    assert rep.check_password(PASSWORD)


def test_password_page_needs_login():
    resp = Client().get("/account/password/")
    assert resp.status_code == 302 and resp["Location"].startswith("/login/")


# --- user_create runs the validators -----------------------------------------------------------------


@pytest.mark.django_db
def test_user_create_runs_password_validators():
    with pytest.raises(ValidationFailed) as exc:
        user_create(actor=None, username="weak.user", password="x", role="rep")
    assert list(exc.value.errors) == ["password"]
    with pytest.raises(ValidationFailed):
        user_create(actor=None, username="common.user", password="iloveyou", role="rep")
    assert user_create(actor=None, username="ok.user", password="fine-pass-2026", role="rep").pk


# --- token authentication does not write on a read ---------------------------------------------------


def test_token_auth_does_not_write_when_last_used_is_recent(org, django_capture_on_commit_callbacks):
    t = token_for(org.users["rep.east1"])
    recent = timezone.now() - dt.timedelta(minutes=30)
    ApiToken.objects.filter(pk=t["id"]).update(last_used_at=recent)
    client = bearer(t["token"])
    with CaptureQueriesContext(connection) as ctx, django_capture_on_commit_callbacks(execute=True) as hooks:
        assert client.get("/api/me").status_code == 200
    assert writes(ctx.captured_queries) == [] and hooks == []
    assert ApiToken.objects.get(pk=t["id"]).last_used_at == recent


# Tests run inside a transaction that never commits; the touch runs on commit, so these capture and run it.


def test_token_auth_records_use_once_an_hour(org, django_capture_on_commit_callbacks):
    t = token_for(org.users["rep.east1"])
    client = bearer(t["token"])
    with django_capture_on_commit_callbacks(execute=True):
        assert client.get("/api/me").status_code == 200  # first use is recorded
    first = ApiToken.objects.get(pk=t["id"]).last_used_at
    assert first is not None
    old = timezone.now() - dt.timedelta(hours=2)
    ApiToken.objects.filter(pk=t["id"]).update(last_used_at=old)
    with CaptureQueriesContext(connection) as ctx, django_capture_on_commit_callbacks(execute=True):
        assert client.get("/api/me").status_code == 200
    assert len(writes(ctx.captured_queries)) == 1
    assert ApiToken.objects.get(pk=t["id"]).last_used_at > old


def test_a_failing_last_used_write_does_not_fail_the_read(org, monkeypatch, caplog,
                                                         django_capture_on_commit_callbacks):
    t = token_for(org.users["rep.east1"])
    ApiToken.objects.filter(pk=t["id"]).update(last_used_at=None)
    real_update = ApiToken.objects.none().__class__.update

    def locked(self, **kwargs):
        if "last_used_at" in kwargs:
            raise OperationalError("database is locked")
        return real_update(self, **kwargs)

    monkeypatch.setattr(ApiToken.objects.none().__class__, "update", locked)
    with caplog.at_level(logging.WARNING, logger=services.logger.name), \
            django_capture_on_commit_callbacks(execute=True):
        resp = bearer(t["token"]).get("/api/me")
    assert resp.status_code == 200 and resp.json()["username"] == "rep.east1"
    assert "last_used_at not recorded" in caplog.text
