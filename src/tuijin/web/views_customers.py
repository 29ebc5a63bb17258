"""Customer pages: list with filters (htmx table refresh), create with duplicate check, detail with
contacts, opportunities, activities, team members, owner history, transfer and change trail, and edit."""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from tuijin.core.errors import Forbidden, StaleVersion, ValidationFailed
from tuijin.core.history import history_rows
from tuijin.core.pages import STALE_MESSAGE, apply_errors, error_page, is_htmx_partial, paginate
from tuijin.core.params import id_param, int_param, text_param
from tuijin.customers import services as customer_services
from tuijin.customers.models import Customer
from tuijin.customers.selectors import (
    contact_list,
    customer_can_manage_members,
    customer_can_transfer,
    customer_can_write,
    customer_get,
    customer_list,
    customer_visible_qs,
)
from tuijin.followups.selectors import activity_list
from tuijin.org.models import User
from tuijin.org.selectors import user_list
from tuijin.pipeline import services as pipeline_services
from tuijin.pipeline.selectors import opportunity_list, pipeline_default

from .forms import (
    ActivityForm,
    ContactForm,
    CustomerCreateForm,
    CustomerEditForm,
    MemberForm,
    OpportunityForm,
    TransferForm,
)

# "Not contacted for more than N days": a century is beyond any real question (and keeps the date math in range).
MAX_STALE_DAYS = 36_500


def scope_choices():
    labels = {"": _("全部"), "mine": _("我负责的"), "shared": _("我参与的"), "team": _("下属负责的")}
    return list(labels.items())


@login_required
def customer_list_view(request):
    user, g = request.user, request.GET
    filters = {
        "q": text_param(g, "q"),
        "scope": g.get("scope", ""),
        "status": g.get("status", ""),
        "industry": g.get("industry", ""),
        "region": g.get("region", ""),
        "owner_id": id_param(g, "owner_id"),
    }
    qs = customer_list(user=user, **filters)
    stale = int_param(g, "stale", min_value=0, max_value=MAX_STALE_DAYS)
    if stale:
        cutoff = timezone.now() - dt.timedelta(days=stale)
        qs = qs.filter(Q(last_contact_at__lt=cutoff) | Q(last_contact_at__isnull=True))
    page = paginate(request, qs)
    query = g.copy()
    query.pop("page", None)
    ctx = {"page": page, "filters": filters, "query": query.urlencode(), "stale": stale}
    if is_htmx_partial(request):
        response = render(request, "web/customers/_table.html", ctx)
    else:
        visible = customer_visible_qs(user=user).order_by()
        ctx.update({
            "scopes": scope_choices(),
            "statuses": Customer.Status.choices,
            "industries": [i for i in visible.values_list("industry", flat=True).distinct().order_by("industry") if i],
            "regions": [r for r in visible.values_list("region", flat=True).distinct().order_by("region") if r],
            "owners": list(user_list(user=user).order_by("username")),
        })
        response = render(request, "web/customers/list.html", ctx)
    response["Vary"] = "HX-Request"
    return response


@login_required
def customer_new(request):
    form = CustomerCreateForm(request.POST or None)
    duplicate = None
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            customer = customer_services.customer_create(
                actor=request.user,
                allow_duplicate=form.cleaned_data.get("allow_duplicate", False),
                contacts=form.contacts(),
                **form.customer_data(),
            )
        except customer_services.DuplicateFound as exc:
            duplicate = exc.matches
            apply_errors(form, exc, form.CONTACT_MAP)
            status = 422
        except ValidationFailed as exc:
            apply_errors(form, exc, form.CONTACT_MAP)
            status = 422
        except Forbidden as exc:
            return error_page(request, str(exc), status=403)
        else:
            messages.success(request, _("客户已创建"))
            return redirect("customer_detail", pk=customer.pk)
    elif request.method == "POST":
        status = 422
    return render(request, "web/customers/new.html", {"form": form, "duplicate": duplicate}, status=status)


def _detail_context(request, customer, **forms) -> dict:
    user = request.user
    can_write = customer_can_write(user=user, customer=customer)
    can_transfer = customer_can_transfer(user=user, customer=customer)
    can_manage_members = customer_can_manage_members(user=user, customer=customer)
    pipeline = pipeline_default()
    opportunities = opportunity_list(user=user, customer_id=customer.pk)
    contacts = contact_list(user=user, customer_id=customer.pk)
    ctx = {
        "customer": customer,
        "can_write": can_write,
        "can_transfer": can_transfer,
        "can_manage_members": can_manage_members,
        "can_create_opportunity": can_write and user.role not in User.CROSS_ROLES,
        "contacts": list(contacts),
        "opportunities": list(opportunities[:50]),
        "activities": list(activity_list(user=user, customer_id=customer.pk)[:30]),
        "members": list(customer.members.select_related("user").order_by("added_at")),
        "owner_changes": list(customer.owner_changes.select_related("from_user", "to_user", "actor")[:50]),
        "history": history_rows(customer),
        "contact_form": forms.get("contact_form") or ContactForm(),
        "opportunity_form": forms.get("opportunity_form") or OpportunityForm(pipeline=pipeline),
        "activity_form": forms.get("activity_form") or ActivityForm(
            opportunities=opportunities.filter(stage__kind="open"), contacts=contacts,
        ),
        "open_tab": forms.get("open_tab", ""),
    }
    if can_manage_members:
        ctx["member_form"] = forms.get("member_form") or MemberForm(customer=customer)
    if can_transfer:
        ctx["transfer_form"] = forms.get("transfer_form") or TransferForm(customer=customer)
    return ctx


def _detail(request, customer, status: int = 200, **forms):
    return render(request, "web/customers/detail.html", _detail_context(request, customer, **forms), status=status)


@login_required
def customer_detail(request, pk):
    return _detail(request, customer_get(user=request.user, pk=pk))


@login_required
def customer_edit(request, pk):
    customer = customer_get(user=request.user, pk=pk)
    if not customer_can_write(user=request.user, customer=customer):
        return error_page(request, _("你对该客户只有只读权限"), status=403)
    initial = {k: getattr(customer, k) for k in CustomerEditForm.CUSTOMER_KEYS}
    initial["tags"] = ", ".join(customer.tags or [])
    initial["version"] = customer.version
    form = CustomerEditForm(request.POST or None, initial=initial)
    status = 200
    if request.method == "POST":
        status = 422
        if form.is_valid():
            try:
                customer_services.customer_update(
                    actor=request.user, customer=customer, version=form.cleaned_data["version"],
                    **form.customer_data(),
                )
            except StaleVersion:
                form.add_error(None, STALE_MESSAGE)
                status = 409
            except ValidationFailed as exc:
                apply_errors(form, exc)
            except Forbidden as exc:
                return error_page(request, str(exc), status=403)
            else:
                messages.success(request, _("客户已保存"))
                return redirect("customer_detail", pk=customer.pk)
    return render(request, "web/customers/edit.html", {"form": form, "customer": customer}, status=status)


def _tab_post(request, customer, form, *, tab: str, form_name: str, save):
    """The detail page's tab forms share one shape: valid form → service → message and redirect;
    service field errors go back onto the form in its open tab (422), Forbidden is a 403 page.

    `save(cleaned_data)` calls the service and returns (success message, URL to redirect to).
    """
    if form.is_valid():
        try:
            message, url = save(form.cleaned_data)
        except ValidationFailed as exc:
            apply_errors(form, exc)
        except Forbidden as exc:
            return error_page(request, str(exc), status=403)
        else:
            messages.success(request, message)
            return redirect(url)
    return _detail(request, customer, status=422, open_tab=tab, **{form_name: form})


@login_required
@require_POST
def customer_contact_new(request, pk):
    customer = customer_get(user=request.user, pk=pk)

    def save(data):
        customer_services.contact_create(actor=request.user, customer=customer, **data)
        return _("联系人已添加"), customer_detail_url(customer)

    return _tab_post(request, customer, ContactForm(request.POST), tab="contacts", form_name="contact_form",
                     save=save)


@login_required
@require_POST
def customer_opportunity_new(request, pk):
    customer = customer_get(user=request.user, pk=pk)
    if not customer_can_write(user=request.user, customer=customer):
        return error_page(request, _("你对该客户只有只读权限"), status=403)

    def save(data):
        opp = pipeline_services.opportunity_create(
            actor=request.user, customer=customer, stage=data.get("stage"), name=data["name"],
            amount=data.get("amount") or "0", expected_close_date=data.get("expected_close_date"),
            products=[p.pk for p in data.get("products") or []],
        )
        return _("商机已创建"), reverse("opportunity_detail", args=[opp.pk])

    form = OpportunityForm(request.POST, pipeline=pipeline_default())
    return _tab_post(request, customer, form, tab="opportunities", form_name="opportunity_form", save=save)


@login_required
@require_POST
def customer_member_add(request, pk):
    customer = customer_get(user=request.user, pk=pk)

    def save(data):
        customer_services.customer_member_set(
            actor=request.user, customer=customer, user=data["user"], access=data["access"],
            until=data.get("until"),
        )
        return _("团队成员已保存"), f"{customer_detail_url(customer)}#members"

    form = MemberForm(request.POST, customer=customer)
    return _tab_post(request, customer, form, tab="members", form_name="member_form", save=save)


@login_required
@require_POST
def customer_member_remove(request, pk, user_id):
    customer = customer_get(user=request.user, pk=pk)
    member = User.objects.filter(pk=user_id).first()
    if member is None:
        return error_page(request, _("该用户不是团队成员"), status=422)
    try:
        customer_services.customer_member_remove(actor=request.user, customer=customer, user=member)
    except ValidationFailed as exc:
        return error_page(request, " ".join(m for ms in exc.errors.values() for m in ms), status=422)
    except Forbidden as exc:
        return error_page(request, str(exc), status=403)
    messages.success(request, _("团队成员已移除"))
    return redirect(f"{customer_detail_url(customer)}#members")


@login_required
@require_POST
def customer_transfer(request, pk):
    customer = customer_get(user=request.user, pk=pk)
    if not customer_can_transfer(user=request.user, customer=customer):
        return error_page(request, _("你无权转移该客户"), status=403)

    def save(data):
        pipeline_services.customer_transfer(
            actor=request.user, customers=[customer], to_user=data["to_user"],
            keep_old_owner=data.get("keep_old_owner", False),
            old_owner_access=data.get("old_owner_access") or "read", reason=data.get("reason", ""),
        )
        # The actor may no longer see the customer after handing it over.
        still_visible = customer_list(user=request.user).filter(pk=customer.pk).exists()
        message = _("客户已转移给 %(name)s") % {"name": data["to_user"].label}
        return message, customer_detail_url(customer) if still_visible else reverse("customers")

    form = TransferForm(request.POST, customer=customer)
    return _tab_post(request, customer, form, tab="transfer", form_name="transfer_form", save=save)


def customer_detail_url(customer) -> str:
    return reverse("customer_detail", args=[customer.pk])
