"""Fixtures for notification tests: the local robot webhook server and robots pointing at it."""

from __future__ import annotations

import itertools

import pytest

from tuijin.notify.conf import DEFAULT_ROBOT_HOSTS
from tuijin.notify.services import robot_create

from .robot_server import RobotServer

_tokens = itertools.count(1)


# The local stand-in speaks plain http on 127.0.0.1: tests using it allow exactly that host, on top of the
# platforms' official ones (the production default allows only those, over https).
LOCAL_ROBOT_HOSTS = [*DEFAULT_ROBOT_HOSTS, "http://127.0.0.1"]


@pytest.fixture
def robot_server(settings):
    settings.TUIJIN_ROBOT_ALLOWED_HOSTS = LOCAL_ROBOT_HOSTS
    server = RobotServer().start()
    yield server
    server.stop()


@pytest.fixture
def make_robot(org, robot_server):
    """make_robot(platform, secret=..., **fields) → a Robot (created by the admin) whose webhook is the local server."""

    def _make(platform, *, secret=None, **fields):
        token = f"tok{next(_tokens)}-{platform}"
        if secret is None:
            secret = "" if platform == "wecom" else f"SEC{platform}secret-0123456789abcdef"
        url = robot_server.add(platform, token, secret)
        fields.setdefault("name", f"{platform} 群")
        return robot_create(actor=org.users["admin"], platform=platform, webhook_url=url, secret=secret, **fields)

    return _make
