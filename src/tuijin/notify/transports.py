"""Sending one outbox message: e-mail through Django's mail backend, chat robots through their webhooks.

The robot formats follow the platforms' documentation for custom group robots:

- WeCom (企业微信) group robot: POST {"msgtype": "markdown", "markdown": {"content": ...}} to
  https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY; success is {"errcode": 0}.
- DingTalk (钉钉) custom robot with 加签: sign = urlencode(base64(HmacSHA256(key=secret,
  msg=f"{timestamp_ms}\\n{secret}"))), appended as &timestamp=...&sign=... to
  https://oapi.dingtalk.com/robot/send?access_token=TOKEN; body {"msgtype": "markdown", "markdown":
  {"title", "text"}}; success is {"errcode": 0}.
- Feishu (飞书) custom bot with 签名校验: sign = base64(HmacSHA256(key=f"{timestamp_s}\\n{secret}",
  msg=b"")), sent as body fields "timestamp" and "sign" next to {"msg_type": "post", "content": ...};
  POST to https://open.feishu.cn/open-apis/bot/v2/hook/TOKEN; success is {"code": 0}.

Every failure raises `SendFailure` saying whether to retry later, to wait for the platform's rate
limit, or to give up at once because the configuration is wrong (bad key, signature, keyword, IP).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import re
import smtplib
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMessage
from django.utils import translation
from django.utils.translation import gettext as _

from . import conf
from .models import OutboxMessage, Robot

logger = logging.getLogger(__name__)

RETRY, CONFIG, RATE_LIMITED = "retry", "config", "rate_limited"


class SendFailure(Exception):
    """A send that did not go through; `kind` decides what the outbox does next."""

    def __init__(self, message: str, *, kind: str = RETRY, retry_after: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class PlatformRules:
    """How a platform answers: which field carries the code, and which codes mean what."""

    code_field: str
    rate_limited: frozenset[int]
    bad_config: frozenset[int]
    # How long the platform blocks a robot that went over its limit.
    rate_limit_wait: int
    max_per_minute: int


RULES = {
    # 45009: api freq out of limit; 93000: invalid webhook url (wrong key); 40008/40058/44004: bad message.
    Robot.Platform.WECOM: PlatformRules("errcode", frozenset({45009}), frozenset({93000, 40008, 40058, 44004}),
                                        60, 20),
    # 130101 / 410100: send too fast (DingTalk then blocks the robot for 10 minutes);
    # 310000: signature, keyword or IP check failed; 300001 / 400101 / 400106: no such token or robot;
    # 400102: robot disabled; 400013: group dissolved; 400105: unsupported message type.
    Robot.Platform.DINGTALK: PlatformRules(
        "errcode", frozenset({130101, 410100}),
        frozenset({310000, 300001, 400013, 400101, 400102, 400105, 400106}), 600, 20,
    ),
    # 11232 / 99991400: frequency limited; 19021: sign match fail or timestamp older than 1 hour;
    # 19022: IP not allowed; 19024: key words not found; 9499: bad request.
    Robot.Platform.FEISHU: PlatformRules("code", frozenset({11232, 99991400}), frozenset({19021, 19022, 19024, 9499}),
                                         60, 100),
}

# Platform limits on message size (bytes); longer bodies are cut with an ellipsis.
MAX_CONTENT_BYTES = {Robot.Platform.WECOM: 4000, Robot.Platform.DINGTALK: 18000, Robot.Platform.FEISHU: 18000}


def absolute_link(link: str) -> str:
    if not link:
        return ""
    if link.startswith(("http://", "https://")):
        return link
    return conf.base_url() + (link if link.startswith("/") else "/" + link)


def own_link(link: str) -> str:
    """The absolute link when it points into this deployment (TUIJIN_BASE_URL), else "" (dropped).

    Robot messages are posted in the company's name: a link elsewhere would be a phishing link.
    """
    link = (link or "").strip()
    if link.startswith("//"):
        return ""  # scheme-relative: another host
    url = absolute_link(link)
    if not url or any(ch in url for ch in "()<>[] \t\r\n\"'`\\"):
        return ""
    base = conf.base_url()
    if url == base or url.startswith(base + "/") or url.startswith(base + "?"):
        return url
    return ""


# -- user text in chat markdown -----------------------------------------------------------------
#
# Titles and bodies are user text (blocker titles, rejection reasons, customer names, ...). The three
# platforms render markdown subsets whose escaping rules are not documented (WeCom and DingTalk honour
# neither backslash escapes nor HTML entities reliably), so instead of escaping we replace every
# character that could start markup with its full-width twin: the text reads the same to a Chinese
# reader and can form no link, image, mention, heading, quote, code span, emphasis or HTML tag.
_MARKDOWN_TWINS = str.maketrans({
    "[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞", "*": "＊", "_": "＿", "`": "｀",
    "~": "～", "#": "＃", "!": "！", "|": "｜", "&": "＆", "@": "＠", "\\": "＼", "=": "＝", "$": "＄",
    "{": "｛", "}": "｝", "^": "＾",
})
# Clients turn bare addresses into links: "https://evil", "www.evil.com", "evil.com/x".
# No \b here: Chinese characters are word characters, so "访问evil.com" has no boundary before "e".
_SCHEME = re.compile(r"(?i)(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*):(?=/)")
_DOMAIN = re.compile(
    r"(?i)(?<![a-z0-9-])[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*\.[a-z]{2,}(?![a-z0-9-])"
    r"|(?<![0-9.])\d{1,3}(?:\.\d{1,3}){3}(?=[:/])"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def _defang_addresses(text: str) -> str:
    text = _SCHEME.sub(lambda m: m.group(1) + "：", text)
    return _DOMAIN.sub(lambda m: m.group(0).replace(".", "．"), text)


def robot_text(text: str, *, single_line: bool = False) -> str:
    """User text made inert for a chat robot: no link, image, mention or markup can come out of it."""
    text = _CONTROL.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))
    if single_line:
        text = " ".join(text.split())
    text = _defang_addresses(text).translate(_MARKDOWN_TWINS)
    # Line starts: list markers, setext underlines and indented code blocks.
    text = re.sub(r"(?m)^[ \t]+", "", text)
    text = re.sub(r"(?m)^([-+])", lambda m: {"-": "－", "+": "＋"}[m.group(1)], text)
    return re.sub(r"(?m)^(\d+)([.])", r"\1．", text)


def email_subject(subject: str) -> str:
    """A header-safe subject: line breaks and control characters would make the mail backend refuse it."""
    return " ".join(_CONTROL.sub(" ", (subject or "").replace("\r", " ").replace("\n", " ")).split())[:200]


def truncate_bytes(text: str, limit: int) -> str:
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    return raw[: max(limit - 3, 0)].decode("utf-8", errors="ignore") + "…"


# -- signatures -------------------------------------------------------------------------------

def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """base64(HmacSHA256(key=secret, msg="timestamp\\nsecret")); the caller URL-encodes it."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """base64(HmacSHA256(key="timestamp\\nsecret", msg=b"")) — Feishu uses the string as the key."""
    key = f"{timestamp_s}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


# -- payloads ---------------------------------------------------------------------------------

def robot_request(robot: Robot, *, title: str, body: str, link: str, now: float | None = None) -> tuple[str, dict]:
    """(url, json body) for one message to `robot`, signed with its secret when it has one."""
    now = time.time() if now is None else now
    # The one place robot messages are rendered: every caller's text is made inert here.
    url = own_link(link)
    # Feishu "text" elements are plain text, but the same treatment costs nothing there and keeps one rule.
    title = robot_text(title, single_line=True) or "-"
    body = robot_text(body)
    limit = MAX_CONTENT_BYTES[robot.platform]
    more = _("查看详情")
    if robot.platform == Robot.Platform.WECOM:
        text = f"**{title}**\n{body}".strip()
        text = truncate_bytes(text, limit - 600) + (f"\n[{more}]({url})" if url else "")
        return robot.webhook_url, {"msgtype": "markdown", "markdown": {"content": text}}
    if robot.platform == Robot.Platform.DINGTALK:
        text = f"### {title}\n\n{body}".strip()
        text = truncate_bytes(text, limit - 600) + (f"\n\n[{more}]({url})" if url else "")
        target = robot.webhook_url
        if robot.secret:
            ts = int(now * 1000)
            sign = urllib.parse.quote_plus(dingtalk_sign(robot.secret, ts))
            target += ("&" if "?" in target else "?") + f"timestamp={ts}&sign={sign}"
        return target, {"msgtype": "markdown", "markdown": {"title": title[:100], "text": text}}
    if robot.platform == Robot.Platform.FEISHU:
        lines = [[{"tag": "text", "text": truncate_bytes(body, limit - 1000)}]] if body else []
        if url:
            lines.append([{"tag": "a", "text": more, "href": url}])
        payload: dict = {
            "msg_type": "post",
            "content": {"post": {"zh_cn": {"title": title, "content": lines}}},
        }
        if robot.secret:
            ts = int(now)
            payload = {"timestamp": str(ts), "sign": feishu_sign(robot.secret, ts), **payload}
        return robot.webhook_url, payload
    raise SendFailure(f"unknown platform {robot.platform!r}", kind=CONFIG)


# -- sending ----------------------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A webhook answers itself; following a redirect could lead the worker past the host allow-list."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post_json(url: str, payload: dict) -> tuple[int, bytes]:
    data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with _opener.open(req, timeout=conf.http_timeout()) as resp:  # noqa: S310 (allow-listed host)
            return resp.status, resp.read(65536)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(65536) if exc.fp else b""
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SendFailure(f"network error: {reason}", kind=RETRY)


def send_robot(robot: Robot, message: OutboxMessage) -> None:
    rules = RULES.get(robot.platform)
    if rules is None:
        raise SendFailure(f"unknown platform {robot.platform!r}", kind=CONFIG)
    if not conf.webhook_allowed(robot.webhook_url):
        # A robot saved before the allow-list existed (or the list was narrowed since).
        raise SendFailure("webhook host not allowed (TUIJIN_ROBOT_ALLOWED_HOSTS)", kind=CONFIG)
    # Group robots speak the deployment's language; there is no single reader.
    with translation.override(settings.LANGUAGE_CODE):
        url, payload = robot_request(robot, title=message.subject, body=message.body, link=message.link)
    status, raw = _post_json(url, payload)
    text = raw.decode("utf-8", errors="replace")[:500]
    if status == 429:
        raise SendFailure(f"HTTP 429 {text}", kind=RATE_LIMITED, retry_after=rules.rate_limit_wait)
    if status in (400, 401, 403, 404, 405):
        raise SendFailure(f"HTTP {status} {text}", kind=CONFIG)
    if status >= 300:
        raise SendFailure(f"HTTP {status} {text}", kind=RETRY)
    try:
        answer = json.loads(raw or b"{}")
    except ValueError:
        raise SendFailure(f"unreadable answer: {text}", kind=RETRY)
    code = answer.get(rules.code_field, answer.get("StatusCode", 0)) if isinstance(answer, dict) else None
    try:
        code = int(code)
    except (TypeError, ValueError):
        raise SendFailure(f"unreadable answer: {text}", kind=RETRY)
    if code == 0:
        return
    msg = f"{rules.code_field} {code}: {answer.get('errmsg') or answer.get('msg') or ''}".strip()
    if code in rules.rate_limited:
        raise SendFailure(msg, kind=RATE_LIMITED, retry_after=rules.rate_limit_wait)
    if code in rules.bad_config:
        raise SendFailure(msg, kind=CONFIG)
    raise SendFailure(msg, kind=RETRY)


def send_email(message: OutboxMessage) -> None:
    language = getattr(message.recipient, "language", "") or settings.LANGUAGE_CODE
    with translation.override(language):
        url = absolute_link(message.link)
        body = message.body
        if url:
            body = f"{body}\n\n{_('查看详情')}: {url}".strip()
        body += "\n\n-- \n" + _("推进 · 此邮件由系统自动发送")
    email = EmailMessage(subject=email_subject(message.subject), body=body, from_email=settings.DEFAULT_FROM_EMAIL,
                         to=[message.to_email])
    try:
        email.send(fail_silently=False)
    except smtplib.SMTPRecipientsRefused as exc:
        raise SendFailure(f"recipient refused: {exc}", kind=CONFIG)
    except BadHeaderError as exc:  # a header the backend refuses will be refused on every retry too
        raise SendFailure(f"bad header: {exc}", kind=CONFIG)
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailure(f"mail error: {exc}", kind=RETRY)


def send(message: OutboxMessage) -> None:
    """Deliver one message or raise SendFailure."""
    if message.channel == OutboxMessage.Channel.EMAIL:
        if not message.to_email:
            raise SendFailure("no e-mail address", kind=CONFIG)
        send_email(message)
    elif message.channel == OutboxMessage.Channel.ROBOT:
        if message.robot is None:
            raise SendFailure("robot deleted", kind=CONFIG)
        send_robot(message.robot, message)
    else:
        raise SendFailure(f"unknown channel {message.channel!r}", kind=CONFIG)
