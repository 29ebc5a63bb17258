"""Notifications API: paginated list with unread filter, unread count with its records link, mark read by ids
or all; another user's notification is 404 and is never changed."""

from __future__ import annotations

from tuijin.notify.models import Notification
from tuijin.notify.services import notify

JSON = "application/json"


def _n(user, key):
    return notify(recipients=[user], kind="k", title=f"通知{key}", link="/x/", dedupe_key=key, email=False,
                  robots=False)[0]


def test_list_is_paginated_unread_first_and_filters_unread(org, api_client):
    rep = org.users["rep.east1"]
    ns = [_n(rep, str(i)) for i in range(5)]
    Notification.objects.filter(pk=ns[4].pk).update(read_at=ns[4].created_at)
    _n(org.users["rep.east2"], "other")
    client = api_client(rep)
    data = client.get("/api/notifications?page_size=2").json()
    assert data["count"] == 5 and len(data["items"]) == 2
    assert [i["title"] for i in data["items"]] == ["通知3", "通知2"]
    page3 = client.get("/api/notifications?page_size=2&page=3").json()
    assert [i["title"] for i in page3["items"]] == ["通知4"] and page3["items"][0]["read_at"] is not None
    unread = client.get("/api/notifications?unread=true").json()
    assert unread["count"] == 4 and all(i["read_at"] is None for i in unread["items"])


def test_unread_count_links_to_its_records(org, api_client):
    rep = org.users["rep.east1"]
    _n(rep, "1"), _n(rep, "2")
    client = api_client(rep)
    data = client.get("/api/notifications/unread-count").json()
    assert data == {"count": 2, "records": "/api/notifications?unread=true"}
    assert client.get(data["records"]).json()["count"] == 2


def test_mark_read_by_ids_and_all(org, api_client):
    rep = org.users["rep.east1"]
    a, b, c = _n(rep, "a"), _n(rep, "b"), _n(rep, "c")
    client = api_client(rep)
    resp = client.post("/api/notifications/read", {"ids": [a.pk]}, content_type=JSON)
    assert resp.status_code == 200 and resp.json() == {"updated": 1, "unread": 2}
    resp = client.post("/api/notifications/read", {"all": True}, content_type=JSON)
    assert resp.json() == {"updated": 2, "unread": 0}
    resp = client.post("/api/notifications/read", {}, content_type=JSON)
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body", "ids"]
    assert b.pk and c.pk


def test_another_users_notification_is_404_in_every_endpoint(org, api_client):
    theirs = _n(org.users["rep.south1"], "theirs")
    mine = _n(org.users["rep.east1"], "mine")
    client = api_client(org.users["rep.east1"])
    assert client.get(f"/api/notifications/{theirs.pk}").status_code == 404
    assert client.get(f"/api/notifications/{mine.pk}").json()["title"] == "通知mine"
    resp = client.post("/api/notifications/read", {"ids": [mine.pk, theirs.pk]}, content_type=JSON)
    assert resp.status_code == 404
    assert Notification.objects.filter(read_at__isnull=False).count() == 0  # nothing written
    assert theirs.pk not in [i["id"] for i in client.get("/api/notifications").json()["items"]]


def test_anonymous_is_refused(org, client):
    assert client.get("/api/notifications").status_code == 401
    assert client.get("/notifications/").status_code == 302
