"""User text in robot messages and e-mail subjects (security issue, items 1 and 2).

Robot messages: whatever a user typed (blocker titles, rejection reasons, customer names, report titles)
must not become a link, an image, a mention or markup in the company's chat groups; the only link a robot
message carries points at TUIJIN_BASE_URL. The property test feeds arbitrary text full of markdown,
links, images, HTML, line breaks and @all mentions through the single render point for every notification
kind and platform, and sends it to the local robot server, which checks the platforms' formats.

E-mail: a line break in a title made Django refuse the subject on every retry.
"""

from __future__ import annotations

import itertools
import re

import pytest
from django.core import mail
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tuijin.health.services import blocker_create
from tuijin.notify import transports
from tuijin.notify.delivery import outbox_deliver_due
from tuijin.notify.models import OutboxMessage, Robot
from tuijin.notify.services import notify

from .robot_server import Delivery

BASE = "https://crm.example.cn"
_tokens = itertools.count(1)
PLATFORMS = ["wecom", "dingtalk", "feishu"]
# Every kind notify() is called with in src/ (the render point is kind-independent; listed to show coverage).
KINDS = ["blocker_escalated", "forecast_correction", "forecast_correction_result", "forecast_report_missing",
         "alignment_missing", "red_light", "goal_report", "robot.test"]

NASTY = [
    "[点此查看审批](http://evil.example)", "![](http://evil/x.png)", "![a][r]\n[r]: http://evil.example/r",
    "<http://evil.example>", "<a href='http://evil.example'>审批</a>", '<img src="http://evil/x.png">',
    "<font color=\"warning\">紧急</font>", "http://evil.example/a?b=c", "https://evil.example", "www.evil.cn",
    "evil.com/path", "访问evil.com", "javascript:alert(1)", "@all", "<@all>", "@所有人", '<at user_id="all"></at>',
    "\n# 标题\n", "\n> 引用", "\n- 列表", "\n1. 列表", "**粗体**", "_斜体_", "`代码`", "```\n块\n```", "~~删~~",
    "\r\n", "\r", "\u2028", "\x00", "\t", "&#91;x&#93;&#40;http://evil&#41;", "&lt;img src=x&gt;", "\\[x\\](y)",
    "[x](" + BASE + "/ok)", "[x](" + BASE + ".evil.com/)", "|a|b|\n|-|-|", "$x$", "{{x}}", "10.0.0.1:8080/admin",
]
user_text = st.lists(st.one_of(st.sampled_from(NASTY), st.text(max_size=12)), max_size=8).map("".join)
links = st.one_of(st.just(""), st.sampled_from(["/health/", "/customers/4/", BASE + "/x/", "http://evil.example/",
                                                "//evil.example/", "javascript:alert(1)", BASE + ".evil.com/",
                                                "/a)(http://evil"]), st.text(max_size=20))


def foreign_targets(text: str) -> list[str]:
    """Every link, image or mention target in `text` that is not under BASE (what a client could follow)."""
    targets = (
        re.findall(r"\]\(\s*<?([^)\s>]*)", text)  # [x](t) and ![x](t)
        + re.findall(r"(?im)^\s*\[[^\]\n]*\]:\s*(\S+)", text)  # [r]: t
        + re.findall(r"(?i)(?:href|src)\s*=\s*[\"']?([^\"'\s>]*)", text)  # HTML
        + re.findall(r"(?i)<([a-z][a-z0-9+.-]*:[^>\s]*)>", text)  # <scheme:...>
    )
    bad = [t for t in targets if not t.startswith(BASE + "/")]
    rest = text
    for t in targets:
        if t.startswith(BASE + "/"):
            rest = rest.replace(t, " ")
    bad += re.findall(r"(?i)[a-z][a-z0-9+.-]*://\S+|www\.\S+", rest)  # bare addresses
    bad += re.findall(r"(?i)[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}(?![a-z0-9-])", rest)  # bare domains
    bad += re.findall(r"(?i)\d{1,3}(?:\.\d{1,3}){3}[:/]", rest)
    bad += re.findall(r"(?i)@all|@所有人|<@|<at\b|<img|<a\b|<font", rest)  # mentions and HTML
    return bad


def _check_payload(platform: str, payload: dict) -> None:
    if platform == "feishu":
        post = payload["content"]["post"]["zh_cn"]
        texts = [post["title"]]
        for line in post["content"]:
            for el in line:
                assert el["tag"] in {"text", "a"}, el  # no "at", no "img"
                assert el["tag"] != "a" or el["href"].startswith(BASE + "/"), el
                texts.append(el["text"])
        text = "\n".join(texts)
    else:
        text = Delivery(platform, "", payload, 0.0).text
    assert foreign_targets(text) == [], (platform, text)


@pytest.fixture(autouse=True)
def _base_url(settings):
    settings.TUIJIN_BASE_URL = BASE


def test_the_reported_link_and_image_are_rendered_as_text():
    for platform in PLATFORMS:
        robot = Robot(platform=platform, webhook_url="https://example.invalid/x", secret="")
        _url, payload = transports.robot_request(
            robot, title="[点此查看审批](http://evil.example)", body="![](http://evil/x.png) @all", link="/health/")
        _check_payload(platform, payload)
        text = Delivery(platform, "", payload, 0.0).text
        assert "点此查看审批" in text and BASE + "/health/" in text


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=user_text, body=user_text, link=links, kind=st.sampled_from(KINDS))
def test_any_user_text_renders_without_foreign_links_and_the_platforms_accept_it(
        robot_server, title, body, link, kind):
    for platform in PLATFORMS:
        token = f"prop-{platform}-{next(_tokens)}"  # fresh per example: the server keeps per-robot limits
        secret = "" if platform == "wecom" else "SECprop-secret-0123456789"
        robot = Robot(platform=platform, webhook_url=robot_server.add(platform, token, secret), secret=secret)
        message = OutboxMessage(channel="robot", robot=robot, kind=kind, subject=title[:200], body=body, link=link)
        transports.send_robot(robot, message)  # raises SendFailure if the server refuses the request
        [delivery] = [d for d in robot_server.delivered if d.token == token]
        _check_payload(platform, delivery.payload)
    assert robot_server.rejected == []


NASTY_TITLE = "[点此查看审批](http://evil.example) ![](http://evil/x.png) <@all>\r\n# 伪造标题"
NASTY_BODY = "\n".join(t for t in NASTY if "\x00" not in t)  # PostgreSQL text cannot hold NUL at all


def test_every_kind_through_the_outbox_is_accepted_and_inert(org, make_robot, robot_server):
    robots = [make_robot(p) for p in PLATFORMS]
    for kind in KINDS:
        notify(recipients=[org.users["rep.east1"]], kind=kind, title=NASTY_TITLE, body=NASTY_BODY,
               link="/health/", dedupe_key=f"inert:{kind}", email=False)
    outbox_deliver_due()
    rows = OutboxMessage.objects.filter(robot__in=robots)
    assert rows.count() == len(KINDS) * 3
    assert set(rows.values_list("status", flat=True)) == {"sent"}, list(rows.values_list("last_error", flat=True))
    assert robot_server.rejected == [] and robot_server.count() == len(KINDS) * 3
    for d in robot_server.delivered:
        _check_payload(d.platform, d.payload)
        assert BASE + "/health/" in d.text


def test_a_blocker_title_cannot_make_the_robot_post_a_phishing_link(org, make_robot, robot_server):
    make_robot("wecom")
    make_robot("dingtalk")
    blocker_create(actor=org.users["rep.east1"], title="[点此查看审批](http://evil.example)",
                   description="![](http://evil/x.png)\n[登录](https://evil.example/login)")
    outbox_deliver_due()
    assert robot_server.count() == 2 and robot_server.rejected == []
    for d in robot_server.delivered:
        assert "evil" in d.text  # the words are shown ...
        assert foreign_targets(d.text) == [], d.text  # ... but nothing can be clicked or loaded


def test_a_link_outside_the_base_url_is_dropped():
    assert transports.own_link("/customers/1/") == BASE + "/customers/1/"
    assert transports.own_link(BASE + "/x") == BASE + "/x"
    for link in ["http://evil.example/", BASE + ".evil.com/", "//evil.example/", "javascript:alert(1)",
                 "https://crm.example.cn@evil.example/", "/a)(http://evil"]:
        assert transports.own_link(link) == "", link


# -- e-mail subjects ----------------------------------------------------------------------------

def test_a_title_with_a_line_break_is_mailed_once_with_a_single_line_subject(org, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    manager = org.users["manager.east"]
    manager.email = "manager@example.cn"
    manager.save()
    notify(recipients=[manager], kind="blocker_escalated", title="客户拖款\r\nBcc: victim@example.cn\x07",
           body="正文", link="/health/", dedupe_key="crlf", robots=False)
    report = outbox_deliver_due()
    row = OutboxMessage.objects.get(channel="email")
    assert report.sent == [row.pk], row.last_error
    assert (row.status, row.attempts) == ("sent", 1)
    [msg] = mail.outbox
    assert msg.subject == "客户拖款 Bcc: victim@example.cn"
    assert msg.to == ["manager@example.cn"] and msg.bcc == []
    assert outbox_deliver_due().claimed == 0  # nothing left to retry


def test_a_blocker_title_with_crlf_reaches_the_managers_mailbox(org, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    rep = org.users["rep.east1"]
    from tuijin.health.services import _direct_manager

    manager = _direct_manager(rep)
    manager.email = "boss@example.cn"
    manager.save()
    blocker_create(actor=rep, title="合同卡在法务\r\n请尽快处理")
    outbox_deliver_due()
    row = OutboxMessage.objects.get(channel="email", to_email="boss@example.cn")
    assert row.status == "sent", row.last_error
    [msg] = [m for m in mail.outbox if m.to == ["boss@example.cn"]]
    assert "\n" not in msg.subject and "\r" not in msg.subject and "合同卡在法务 请尽快处理" in msg.subject
