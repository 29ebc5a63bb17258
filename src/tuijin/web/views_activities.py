"""Activity pages: the list with filters and the phone-friendly quick form (also embedded on a customer)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from tuijin.core.errors import Forbidden, ValidationFailed
from tuijin.core.pages import (
    apply_errors,
    error_page,
    is_htmx_partial,
    paginate,
    start_of_day,
)
from tuijin.core.params import date_param, id_param, text_param
from tuijin.customers.selectors import contact_list, customer_get, customer_list
from tuijin.followups.models import Activity
from tuijin.followups.selectors import activity_list
from tuijin.followups.services import activity_create
from tuijin.org.selectors import user_list
from tuijin.pipeline.selectors import opportunity_list

from .forms import ActivityForm


@login_required
def activity_list_view(request):
    user, g = request.user, request.GET
    since = date_param(g, "since")
    filters = {
        "q": text_param(g, "q"),
        "scope": g.get("scope", "") if g.get("scope") in ("mine", "team") else "",
        "kind": g.get("kind", ""),
        "owner_id": id_param(g, "owner_id"),
        "customer_id": id_param(g, "customer"),
        "opportunity_id": id_param(g, "opportunity"),
    }
    since_dt = start_of_day(since) if since else None
    qs = activity_list(user=user, since=since_dt, **filters)
    page = paginate(request, qs, when_large=lambda: activity_list(
        user=user, since=since_dt, walk_time_index=True, **filters))
    query = g.copy()
    query.pop("page", None)
    ctx = {"page": page, "filters": filters, "since": since, "query": query.urlencode()}
    if is_htmx_partial(request):
        response = render(request, "web/activities/_table.html", ctx)
    else:
        ctx.update({
            "kinds": Activity.Kind.choices,
            "owners": list(user_list(user=user).order_by("username")),
            "scopes": [("", _("全部")), ("mine", _("我负责的")), ("team", _("下属负责的"))],
        })
        response = render(request, "web/activities/list.html", ctx)
    response["Vary"] = "HX-Request"
    return response


@login_required
def activity_new(request):
    user = request.user
    customer_id = id_param(request.POST if request.POST.get("customer") else request.GET, "customer")
    customer = customer_get(user=user, pk=customer_id) if customer_id else None
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    opportunities = contacts = None
    if customer is not None:
        opportunities = opportunity_list(user=user, customer_id=customer.pk)
        contacts = contact_list(user=user, customer_id=customer.pk)
    form = ActivityForm(request.POST or None, opportunities=opportunities, contacts=contacts)
    status = 200
    if request.method == "POST":
        status = 422
        if customer is None:
            form.add_error(None, _("请选择客户"))
        elif form.is_valid():
            data = form.cleaned_data
            try:
                activity_create(
                    actor=user, customer=customer, kind=data["kind"], occurred_at=data.get("occurred_at"),
                    duration_minutes=data.get("duration_minutes") or 0, subject=data.get("subject", ""),
                    conclusion=data.get("conclusion", ""), notes=data.get("notes", ""),
                    opportunity=data.get("opportunity"), contact=data.get("contact"),
                )
            except ValidationFailed as exc:
                apply_errors(form, exc)
            except Forbidden as exc:
                return error_page(request, str(exc), status=403)
            else:
                messages.success(request, _("跟进记录已保存"))
                if next_url and url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                    return redirect(next_url)
                return redirect("customer_detail", pk=customer.pk)
    ctx = {"form": form, "customer": customer, "next": next_url}
    if customer is None:
        ctx["customers"] = list(customer_list(user=user)[:200])
    return render(request, "web/activities/new.html", ctx, status=status)
