"""`notify(...)`: the one call domains use to tell people something (SPEC D1 outbound, G6, G7),
plus the admin writes of this app: robots (群机器人), test messages and retrying the outbox.

notify() writes in-app notifications and outbox rows inside the caller's transaction,
so a notification exists exactly when the change that caused it is committed. After
commit it asks a worker to deliver at once; if the queue is down (Redis unavailable)
the rows simply wait for the periodic sweep — the caller never fails because of it.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tuijin.core.audit import diff, record, snapshot
from tuijin.core.errors import Forbidden, NotFound, ValidationFailed
from tuijin.org.models import OrgUnit, User

from . import conf
from .models import Notification, OutboxMessage, Robot
from .transports import RULES


def notify(
    *,
    recipients: Iterable[User],
    kind: str,
    title: str,
    body: str = "",
    link: str = "",
    dedupe_key: str,
    cc: Iterable[User] = (),
    email: bool = True,
    robots: bool = True,
) -> list[Notification]:
    """Notify `recipients` (and `cc`) once per `dedupe_key`; returns the notifications created now.

    Calling again with the same key creates nothing new, so periodic jobs can
    simply run again. Robots receive the message when they are active, their
    `kinds` is empty or contains `kind`, and (for a robot bound to an org unit)
    a recipient belongs to that unit or below.
    """
    created: list[Notification] = []
    outbox_created = False
    primary = [u for u in recipients if u is not None]
    targets = [(u, False) for u in primary] + [(u, True) for u in cc if u is not None]
    seen: set[int] = set()
    with transaction.atomic():
        for user, is_cc in targets:
            if user.pk in seen or not user.is_active:
                continue
            seen.add(user.pk)
            n = _create_once(
                Notification,
                dict(recipient=user, dedupe_key=dedupe_key[:200]),
                dict(kind=kind, title=title[:200], body=body, link=link[:500], is_cc=is_cc),
            )
            if n is None:
                continue
            created.append(n)
            if email and user.email:
                outbox_created |= _create_once(
                    OutboxMessage,
                    dict(dedupe_key=f"email:{user.pk}:{dedupe_key}"[:255]),
                    dict(channel=OutboxMessage.Channel.EMAIL, to_email=user.email, recipient=user, kind=kind,
                         subject=title[:200], body=body, link=link[:500], next_attempt_at=timezone.now()),
                ) is not None
        if robots and created:
            unit_ids = {u.org_unit_id for u in primary if u.org_unit_id}
            paths = list(OrgUnit.objects.filter(pk__in=unit_ids).values_list("path", flat=True)) if unit_ids else []
            for robot in Robot.objects.filter(is_active=True).select_related("org_unit"):
                if robot.kinds and kind not in robot.kinds:
                    continue
                if robot.org_unit_id and not any(p.startswith(robot.org_unit.path) for p in paths):
                    continue
                outbox_created |= _create_once(
                    OutboxMessage,
                    dict(dedupe_key=f"robot:{robot.pk}:{dedupe_key}"[:255]),
                    dict(channel=OutboxMessage.Channel.ROBOT, robot=robot, kind=kind, subject=title[:200],
                         body=body, link=link[:500], next_attempt_at=timezone.now()),
                ) is not None
        if outbox_created:
            _kick_after_commit()
    return created


def _kick_delivery() -> None:
    from .tasks import kick_delivery  # the queue is only touched after commit, never inside the caller's work

    kick_delivery()


def _kick_after_commit() -> None:
    """One delivery request per transaction, however many notify() calls it made (a job notifying 200 reps)."""
    conn = transaction.get_connection()
    if any(entry[1] is _kick_delivery for entry in conn.run_on_commit):
        return
    transaction.on_commit(_kick_delivery)


def _create_once(model, keys: dict, values: dict):
    """Insert unless the dedupe key exists; a concurrent insert of the same key is not an error."""
    if model.objects.filter(**keys).exists():
        return None
    try:
        with transaction.atomic():
            return model.objects.create(**keys, **values)
    except IntegrityError:
        return None


@transaction.atomic
def notification_mark_read(*, actor: User, notification_ids: Iterable[int] | None = None) -> int:
    """Mark the actor's own notifications read (all unread when ids is None).

    Naming a notification that is not the actor's raises NotFound and marks nothing.
    """
    if notification_ids is not None:
        ids = {int(i) for i in notification_ids}
        own = set(Notification.objects.filter(recipient=actor, pk__in=ids).values_list("pk", flat=True))
        if own != ids:
            raise NotFound("notification")
    qs = Notification.objects.filter(recipient=actor, read_at__isnull=True)
    if notification_ids is not None:
        qs = qs.filter(pk__in=ids)
    return qs.update(read_at=timezone.now())


# -- robots (admin only) ---------------------------------------------------------------------

ROBOT_FIELDS = ["name", "platform", "webhook_url", "secret", "org_unit", "kinds", "max_per_minute", "is_active"]

# The path each platform's webhook has (the host is checked against TUIJIN_ROBOT_ALLOWED_HOSTS).
WEBHOOK_SHAPES = {
    Robot.Platform.WECOM: (re.compile(r"/cgi-bin/webhook/send$"), "key"),
    Robot.Platform.DINGTALK: (re.compile(r"/robot/send$"), "access_token"),
    Robot.Platform.FEISHU: (re.compile(r"/open-apis/bot/v2/hook/[A-Za-z0-9_.~-]+$"), None),
}


def _require_admin(actor: User) -> None:
    if actor is None or actor.role != User.Role.ADMIN:
        raise Forbidden(_("只有管理员可以管理群机器人和发送队列"))


def mask_secret(secret: str) -> str:
    """What may be shown of a secret: its last four characters at most."""
    if not secret:
        return ""
    return "••••" + secret[-4:] if len(secret) > 8 else "••••"


def mask_url(url: str) -> str:
    """The webhook URL with its credential (key / access_token / hook token) masked."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "••••"
    query = urllib.parse.urlencode(
        [(k, mask_secret(v) or "••••") for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)],
        safe="•",
    )
    path = parts.path
    if "/hook/" in path:
        head, token = path.rsplit("/", 1)
        path = f"{head}/{mask_secret(token) or '••••'}"
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _audit_snapshot(robot: Robot) -> dict:
    data = snapshot(robot, ROBOT_FIELDS)
    # Never put credentials into the change trail: only whether they changed shows.
    data["secret"] = mask_secret(robot.secret)
    data["webhook_url"] = mask_url(robot.webhook_url)
    return data


def _clean_robot_data(data: dict, *, existing: Robot | None) -> dict:
    errors: dict[str, list[str]] = {}
    out: dict = {}
    name = str(data.get("name", existing.name if existing else "") or "").strip()
    if not name:
        errors["name"] = [_("请填写名称")]
    elif len(name) > 100:
        errors["name"] = [_("名称不能超过 100 个字符")]
    out["name"] = name

    platform = data.get("platform", existing.platform if existing else "")
    if platform not in Robot.Platform.values:
        errors["platform"] = [_("请选择平台：企业微信、钉钉或飞书")]
    out["platform"] = platform

    url = str(data.get("webhook_url", existing.webhook_url if existing else "") or "").strip()
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        parts = None
    if not url or parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        errors["webhook_url"] = [_("请填写以 https:// 开头的 Webhook 地址")]
    elif len(url) > 500:
        errors["webhook_url"] = [_("Webhook 地址不能超过 500 个字符")]
    elif not conf.webhook_allowed(url):
        # Only the platforms' own hosts: the worker must not be made to post into the internal network.
        errors["webhook_url"] = [_("Webhook 地址只能是 https:// 开头的平台官方地址（%(hosts)s）") % {
            "hosts": ", ".join(conf.robot_allowed_hosts())}]
    elif platform in WEBHOOK_SHAPES:
        pattern, param = WEBHOOK_SHAPES[platform]
        query = urllib.parse.parse_qs(parts.query)
        if not pattern.search(parts.path) or (param and not query.get(param, [""])[0]):
            examples = {
                Robot.Platform.WECOM: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…",
                Robot.Platform.DINGTALK: "https://oapi.dingtalk.com/robot/send?access_token=…",
                Robot.Platform.FEISHU: "https://open.feishu.cn/open-apis/bot/v2/hook/…",
            }
            errors["webhook_url"] = [_("地址格式与所选平台不符，应类似 %(example)s") % {"example": examples[platform]}]
    out["webhook_url"] = url

    if "secret" in data and data["secret"] is not None:
        secret = str(data["secret"]).strip()
        if secret or existing is None:
            out["secret"] = secret
    secret_now = out.get("secret", existing.secret if existing else "")
    if len(secret_now) > 200:
        errors["secret"] = [_("签名密钥不能超过 200 个字符")]
    if platform == Robot.Platform.WECOM and secret_now:
        errors["secret"] = [_("企业微信群机器人没有签名密钥，请留空（密钥就是地址里的 key）")]

    kinds = data.get("kinds", existing.kinds if existing else [])
    if isinstance(kinds, str):
        kinds = [k.strip() for k in re.split(r"[,，\s]+", kinds) if k.strip()]
    if not isinstance(kinds, list) or not all(isinstance(k, str) and 0 < len(k) <= 64 for k in kinds):
        errors["kinds"] = [_("通知类型应为逗号分隔的类型代码")]
    out["kinds"] = sorted(set(kinds)) if isinstance(kinds, list) else []

    raw_max = data.get("max_per_minute", existing.max_per_minute if existing else None)
    if raw_max in (None, ""):
        raw_max = RULES[platform].max_per_minute if platform in RULES else 20
    try:
        max_per_minute = int(raw_max)
    except (TypeError, ValueError):
        errors["max_per_minute"] = [_("每分钟上限应为整数")]
        max_per_minute = 0
    else:
        ceiling = RULES[platform].max_per_minute if platform in RULES else 20
        if not 1 <= max_per_minute <= ceiling:
            errors["max_per_minute"] = [_("每分钟上限应在 1 到 %(max)s 之间（平台限制）") % {"max": ceiling}]
    out["max_per_minute"] = max_per_minute

    unit = data.get("org_unit", existing.org_unit if existing else None)
    if unit is not None and not isinstance(unit, OrgUnit):
        try:
            unit = OrgUnit.objects.get(pk=int(unit))
        except (TypeError, ValueError, OrgUnit.DoesNotExist):
            errors["org_unit"] = [_("组织单元不存在")]
            unit = None
    out["org_unit"] = unit
    out["is_active"] = bool(data.get("is_active", existing.is_active if existing else True))
    if errors:
        raise ValidationFailed(errors)
    return out


@transaction.atomic
def robot_create(*, actor: User, **data) -> Robot:
    """Add a group robot. Fields: name, platform, webhook_url, secret, kinds, max_per_minute, org_unit, is_active."""
    _require_admin(actor)
    clean = _clean_robot_data(data, existing=None)
    robot = Robot.objects.create(**clean)
    record(actor=actor, obj=robot, action="create", changes=diff({}, _audit_snapshot(robot)))
    return robot


@transaction.atomic
def robot_update(*, actor: User, robot: Robot, **data) -> Robot:
    """Change a robot; a blank or missing secret keeps the stored one."""
    _require_admin(actor)
    robot = Robot.objects.select_for_update().get(pk=robot.pk)
    before = _audit_snapshot(robot)
    secret_before = robot.secret
    clean = _clean_robot_data(data, existing=robot)
    for key, value in clean.items():
        setattr(robot, key, value)
    robot.save()
    changes = diff(before, _audit_snapshot(robot))
    if robot.secret != secret_before:
        changes["secret"] = ["••••", "•••• (changed)"]
    if changes:
        record(actor=actor, obj=robot, action="update", changes=changes)
    return robot


def robot_set_active(*, actor: User, robot: Robot, active: bool) -> Robot:
    return robot_update(actor=actor, robot=robot, is_active=active)


@transaction.atomic
def robot_send_test(*, actor: User, robot: Robot) -> OutboxMessage:
    """Queue a test message to one robot (delivered by the worker like any other)."""
    _require_admin(actor)
    if not robot.is_active:
        raise ValidationFailed({"robot": [_("机器人已停用，请先启用")]})
    message = OutboxMessage.objects.create(
        channel=OutboxMessage.Channel.ROBOT, robot=robot, kind="robot.test",
        subject=_("推进 · 测试消息"),
        body=_("这是一条来自推进的测试消息，收到即表示机器人配置正确。发送人：%(name)s") % {"name": actor.label},
        link="/notifications/", dedupe_key=f"robot-test:{robot.pk}:{uuid.uuid4().hex}",
        next_attempt_at=timezone.now(),
    )
    record(actor=actor, obj=robot, action="send_test", changes={"outbox_message": [None, message.pk]})
    _kick_after_commit()
    return message


@transaction.atomic
def outbox_message_retry(*, actor: User, message: OutboxMessage) -> OutboxMessage:
    """Send a failed (or waiting) message again now, with a fresh set of attempts."""
    _require_admin(actor)
    message = OutboxMessage.objects.select_for_update().get(pk=message.pk)
    if message.status in (OutboxMessage.Status.SENT, OutboxMessage.Status.SENDING):
        raise ValidationFailed({"status": [_("该消息已发送或正在发送，不能重试")]})
    before = snapshot(message, ["status", "attempts", "next_attempt_at"])
    message.status = OutboxMessage.Status.PENDING
    message.attempts = 0
    message.next_attempt_at = timezone.now()
    message.save(update_fields=["status", "attempts", "next_attempt_at"])
    record(actor=actor, obj=message, action="retry",
           changes=diff(before, snapshot(message, ["status", "attempts", "next_attempt_at"])))
    _kick_after_commit()
    return message

