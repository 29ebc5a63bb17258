"""Pages of tuijin.notify: the user's inbox, and for admins the robots (群机器人) and the outbox.

Views stay thin: selectors read (inbox rows are always the user's own; robots and
outbox are admin-only), services write.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.org.models import OrgUnit

from .models import OutboxMessage, Robot
from .selectors import (
    notification_get,
    notification_list,
    outbox_get,
    outbox_list,
    outbox_status_counts,
    robot_get,
    robot_list,
)
from .services import (
    mask_secret,
    mask_url,
    notification_mark_read,
    outbox_message_retry,
    robot_create,
    robot_send_test,
    robot_set_active,
    robot_update,
)

PAGE_SIZE = 25


def _page(request, qs):
    return Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))


def _safe_next(request, url: str, fallback: str = "notify:inbox"):
    if url and url_has_allowed_host_and_scheme(url, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        # A plain redirect, not django's redirect(): that would try a bare word ("NaN") as a URL name (500).
        return HttpResponseRedirect(url)
    return redirect(fallback)


def _forbidden(request, exc):
    return render(request, "web/error.html", {"title": _("没有权限"), "message": str(exc)}, status=403)


# -- inbox ------------------------------------------------------------------------------------

@login_required
def inbox(request):
    unread_only = request.GET.get("unread") in ("1", "true")
    page = _page(request, notification_list(user=request.user, unread_only=unread_only))
    return render(request, "notify/inbox.html", {"page": page, "unread_only": unread_only})


@login_required
@require_POST
def notification_open(request, pk: int):
    """Mark one notification read and go to the record it is about."""
    n = notification_get(user=request.user, pk=pk)
    notification_mark_read(actor=request.user, notification_ids=[n.pk])
    return _safe_next(request, n.link)


@login_required
@require_POST
def notification_read(request, pk: int):
    n = notification_get(user=request.user, pk=pk)
    notification_mark_read(actor=request.user, notification_ids=[n.pk])
    return _safe_next(request, request.POST.get("next", ""))


@login_required
@require_POST
def notification_read_all(request):
    count = notification_mark_read(actor=request.user)
    messages.success(request, _("已将 %(n)s 条通知标为已读") % {"n": count})
    return _safe_next(request, request.POST.get("next", ""))


# -- robots (admin) ---------------------------------------------------------------------------

class RobotForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("名称"), max_length=100, required=False)
    platform = forms.ChoiceField(label=gettext_lazy("平台"), choices=Robot.Platform.choices)
    webhook_url = forms.CharField(label=gettext_lazy("Webhook 地址"), max_length=500, required=False)
    secret = forms.CharField(
        label=gettext_lazy("签名密钥"), required=False, max_length=200,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=gettext_lazy("钉钉“加签”的 SEC 开头密钥或飞书“签名校验”密钥；编辑时留空表示不修改。企业微信无需填写。"),
    )
    kinds = forms.CharField(label=gettext_lazy("推送的通知类型"), required=False,
                            help_text=gettext_lazy("用逗号分隔的类型代码；留空表示推送全部类型"))
    max_per_minute = forms.IntegerField(label=gettext_lazy("每分钟上限"), required=False, min_value=0,
                                        help_text=gettext_lazy("企业微信、钉钉最多 20 条/分钟，飞书最多 100 条/分钟"))
    org_unit = forms.ModelChoiceField(label=gettext_lazy("所属组织"), queryset=OrgUnit.objects.all(), required=False,
                                      help_text=gettext_lazy("只推送与该组织（含下级）成员有关的通知；留空表示全公司"))
    is_active = forms.BooleanField(label=gettext_lazy("启用"), required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            w = field.widget
            css = ("form-check-input" if isinstance(w, forms.CheckboxInput)
                   else "form-select" if isinstance(w, forms.Select) else "form-control")
            w.attrs["class"] = css


def _robot_form_page(request, form, robot=None, status=200):
    return render(request, "notify/robot_form.html", {
        "form": form, "robot": robot, "masked_secret": mask_secret(robot.secret) if robot else "",
    }, status=status)


def _apply_errors(form, exc: ValidationFailed):
    for key, msgs in exc.errors.items():
        for msg in msgs:
            form.add_error(key if key in form.fields else None, msg)


@login_required
def robots(request):
    try:
        rows = list(robot_list(user=request.user))
        counts = outbox_status_counts(user=request.user)
    except Forbidden as exc:
        return _forbidden(request, exc)
    for r in rows:
        r.masked_url = mask_url(r.webhook_url)
        r.masked_secret = mask_secret(r.secret)
    return render(request, "notify/robots.html", {"robots": rows, "counts": counts})


@login_required
def robot_new(request):
    try:
        robot_list(user=request.user)  # admin check before showing the form
    except Forbidden as exc:
        return _forbidden(request, exc)
    form = RobotForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            robot = robot_create(actor=request.user, **form.cleaned_data)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
        except Forbidden as exc:
            return _forbidden(request, exc)
        else:
            messages.success(request, _("已添加群机器人“%(name)s”") % {"name": robot.name})
            return redirect("notify:robots")
    return _robot_form_page(request, form, status=422 if request.method == "POST" else 200)


@login_required
def robot_edit(request, pk: int):
    try:
        robot = robot_get(user=request.user, pk=pk)
    except Forbidden as exc:
        return _forbidden(request, exc)
    initial = {"name": robot.name, "platform": robot.platform, "webhook_url": robot.webhook_url,
               "kinds": ", ".join(robot.kinds or []), "max_per_minute": robot.max_per_minute,
               "org_unit": robot.org_unit, "is_active": robot.is_active}
    form = RobotForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            robot_update(actor=request.user, robot=robot, **form.cleaned_data)
        except ValidationFailed as exc:
            _apply_errors(form, exc)
        except Forbidden as exc:
            return _forbidden(request, exc)
        else:
            messages.success(request, _("已保存"))
            return redirect("notify:robots")
    return _robot_form_page(request, form, robot, status=422 if request.method == "POST" else 200)


@login_required
@require_POST
def robot_active(request, pk: int):
    try:
        robot = robot_get(user=request.user, pk=pk)
        robot_set_active(actor=request.user, robot=robot, active=request.POST.get("active") == "1")
    except Forbidden as exc:
        return _forbidden(request, exc)
    return redirect("notify:robots")


@login_required
@require_POST
def robot_test(request, pk: int):
    try:
        robot = robot_get(user=request.user, pk=pk)
        message = robot_send_test(actor=request.user, robot=robot)
    except Forbidden as exc:
        return _forbidden(request, exc)
    except ValidationFailed as exc:
        messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
        return redirect("notify:robots")
    messages.success(request, _("测试消息已加入发送队列（#%(id)s）") % {"id": message.pk})
    return redirect(f"{reverse('notify:outbox')}?robot={robot.pk}")


# -- outbox (admin) ---------------------------------------------------------------------------

@login_required
def outbox(request):
    status = request.GET.get("status", "")
    channel = request.GET.get("channel", "")
    try:
        robot_id = int(request.GET.get("robot") or 0) or None
    except ValueError:
        robot_id = None
    try:
        qs = outbox_list(user=request.user, status=status, channel=channel, robot_id=robot_id)
        counts = outbox_status_counts(user=request.user)
    except Forbidden as exc:
        return _forbidden(request, exc)
    page = _page(request, qs)
    for m in page.object_list:
        m.target = m.robot.name if m.robot_id else m.to_email
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "notify/outbox.html", {
        "page": page, "status": status, "channel": channel, "robot_id": robot_id, "counts": counts,
        "statuses": OutboxMessage.Status.choices, "channels": OutboxMessage.Channel.choices,
        "query": query.urlencode(),
    })


@login_required
@require_POST
def outbox_retry(request, pk: int):
    try:
        message = outbox_get(user=request.user, pk=pk)
        outbox_message_retry(actor=request.user, message=message)
    except Forbidden as exc:
        return _forbidden(request, exc)
    except ValidationFailed as exc:
        messages.error(request, " ".join(m for ms in exc.errors.values() for m in ms))
    else:
        messages.success(request, _("消息 #%(id)s 已重新加入发送队列") % {"id": message.pk})
    return _safe_next(request, request.POST.get("next", ""), fallback="notify:outbox")
