"""Page forms. They only shape and render input; the services do the real validation and writing.

Text lengths come from the model fields (core.limits.max_length), the same numbers the API and the import check.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from tuijin.core.limits import max_length
from tuijin.customers.models import Contact, Customer, CustomerMember, OwnerChange
from tuijin.followups.models import Activity
from tuijin.org.models import User
from tuijin.org.selectors import user_directory
from tuijin.pipeline.models import Opportunity, Product, Stage

from .widgets import speed_up


class BootstrapMixin:
    """Bootstrap classes on every widget, so templates can render `{{ field }}` as is."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.RadioSelect | forms.CheckboxSelectMultiple):
                css = ""
            elif isinstance(widget, forms.Select | forms.SelectMultiple):
                css = "form-select"
                speed_up(widget)
            else:
                css = "form-control"
            if css:
                widget.attrs["class"] = (widget.attrs.get("class", "") + " " + css).strip()


def _blank(choices):
    return [("", "—"), *choices]


class CustomerForm(BootstrapMixin, forms.Form):
    # Everything optional here: customers.services.validate_customer_data is the one rule book.
    name = forms.CharField(label=_("客户名称"), max_length=max_length(Customer, "name"), required=False)
    credit_code = forms.CharField(label=_("统一社会信用代码"), max_length=max_length(Customer, "credit_code"), required=False)
    industry = forms.CharField(label=_("行业"), max_length=max_length(Customer, "industry"), required=False)
    size_band = forms.ChoiceField(label=_("规模"), choices=_blank(Customer.Size.choices), required=False)
    region = forms.CharField(label=_("区域"), max_length=max_length(Customer, "region"), required=False)
    city = forms.CharField(label=_("城市"), max_length=max_length(Customer, "city"), required=False)
    source = forms.ChoiceField(label=_("来源"), choices=_blank(Customer.Source.choices), required=False)
    status = forms.ChoiceField(label=_("状态"), choices=Customer.Status.choices, initial=Customer.Status.ACTIVE)
    phone = forms.CharField(label=_("电话"), max_length=max_length(Customer, "phone"), required=False)
    address = forms.CharField(label=_("地址"), max_length=max_length(Customer, "address"), required=False)
    tags = forms.CharField(label=_("标签"), required=False, help_text=_("用逗号分隔"))
    notes = forms.CharField(label=_("备注"), max_length=max_length(Customer, "notes"), required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))

    CUSTOMER_KEYS = [
        "name", "credit_code", "industry", "size_band", "region", "city", "source", "status", "phone",
        "address", "tags", "notes",
    ]

    def customer_data(self) -> dict:
        return {k: self.cleaned_data.get(k, "") for k in self.CUSTOMER_KEYS}


class CustomerCreateForm(CustomerForm):
    contact_name = forms.CharField(label=_("联系人姓名"), max_length=max_length(Contact, "name"), required=False)
    contact_title = forms.CharField(label=_("职务"), max_length=max_length(Contact, "title"), required=False)
    contact_mobile = forms.CharField(label=_("手机"), max_length=max_length(Contact, "mobile"), required=False)
    contact_decision_role = forms.ChoiceField(
        label=_("决策角色"), choices=_blank(Contact.DecisionRole.choices), required=False
    )
    allow_duplicate = forms.BooleanField(label=_("仍然创建（我已确认不是重复客户）"), required=False)

    CONTACT_MAP = {
        "contacts[0].name": "contact_name",
        "contacts[0].title": "contact_title",
        "contacts[0].mobile": "contact_mobile",
        "contacts[0].decision_role": "contact_decision_role",
    }

    def contacts(self) -> list[dict]:
        if not self.cleaned_data.get("contact_name") and not self.cleaned_data.get("contact_mobile"):
            return []
        return [{
            "name": self.cleaned_data.get("contact_name", ""),
            "title": self.cleaned_data.get("contact_title", ""),
            "mobile": self.cleaned_data.get("contact_mobile", ""),
            "decision_role": self.cleaned_data.get("contact_decision_role", ""),
            "is_primary": True,
        }]


class CustomerEditForm(CustomerForm):
    version = forms.IntegerField(widget=forms.HiddenInput)


class ContactForm(BootstrapMixin, forms.Form):
    name = forms.CharField(label=_("姓名"), max_length=max_length(Contact, "name"), required=False)
    title = forms.CharField(label=_("职务"), max_length=max_length(Contact, "title"), required=False)
    decision_role = forms.ChoiceField(label=_("决策角色"), choices=_blank(Contact.DecisionRole.choices), required=False)
    mobile = forms.CharField(label=_("手机"), max_length=max_length(Contact, "mobile"), required=False)
    phone = forms.CharField(label=_("电话"), max_length=max_length(Contact, "phone"), required=False)
    email = forms.CharField(label=_("邮箱"), max_length=max_length(Contact, "email"), required=False)
    wechat = forms.CharField(label=_("微信"), max_length=max_length(Contact, "wechat"), required=False)
    is_primary = forms.BooleanField(label=_("主联系人"), required=False)


class OpportunityForm(BootstrapMixin, forms.Form):
    name = forms.CharField(label=_("商机名称"), max_length=max_length(Opportunity, "name"), required=False)
    amount = forms.CharField(label=_("金额"), required=False, initial="0")
    expected_close_date = forms.DateField(
        label=_("预计成交日期"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    stage = forms.ModelChoiceField(label=_("阶段"), queryset=Stage.objects.none(), required=False)
    products = forms.ModelMultipleChoiceField(
        label=_("产品"), queryset=Product.objects.none(), required=False,
        widget=forms.SelectMultiple(attrs={"size": 4}),
    )

    def __init__(self, *args, pipeline=None, **kwargs):
        super().__init__(*args, **kwargs)
        if pipeline is not None:
            self.fields["stage"].queryset = pipeline.stages.filter(kind=Stage.Kind.OPEN).order_by("order")
        self.fields["products"].queryset = Product.objects.filter(is_active=True).order_by("line_id", "id")


class ActivityForm(BootstrapMixin, forms.Form):
    kind = forms.ChoiceField(
        label=_("方式"), choices=Activity.Kind.choices, initial=Activity.Kind.CALL, widget=forms.RadioSelect
    )
    subject = forms.CharField(label=_("主题"), max_length=max_length(Activity, "subject"), required=False)
    conclusion = forms.CharField(
        label=_("关键结论"), max_length=max_length(Activity, "conclusion"), required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    notes = forms.CharField(label=_("备注"), max_length=max_length(Activity, "notes"), required=False,
                            widget=forms.Textarea(attrs={"rows": 2}))
    opportunity = forms.ModelChoiceField(label=_("商机"), queryset=Opportunity.objects.none(), required=False)
    contact = forms.ModelChoiceField(label=_("联系人"), queryset=Contact.objects.none(), required=False)
    occurred_at = forms.DateTimeField(
        label=_("时间"), required=False, help_text=_("留空表示现在"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"],
    )
    duration_minutes = forms.IntegerField(label=_("时长(分钟)"), required=False, min_value=0, max_value=1440)

    def __init__(self, *args, opportunities=None, contacts=None, **kwargs):
        super().__init__(*args, **kwargs)
        # Limited to the chosen customer's records, already filtered by the visibility selectors.
        if opportunities is not None:
            self.fields["opportunity"].queryset = opportunities
        if contacts is not None:
            self.fields["contact"].queryset = contacts


class MemberForm(BootstrapMixin, forms.Form):
    user = forms.ModelChoiceField(label=_("成员"), queryset=User.objects.none())
    access = forms.ChoiceField(label=_("权限"), choices=CustomerMember.Access.choices)
    until = forms.DateField(label=_("有效期至"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        # The staff directory, not customer data: any colleague may be invited to a customer team.
        qs = user_directory()
        if customer is not None:
            qs = qs.exclude(pk=customer.owner_id)
        self.fields["user"].queryset = qs


class TransferForm(BootstrapMixin, forms.Form):
    to_user = forms.ModelChoiceField(label=_("转移给"), queryset=User.objects.none())
    keep_old_owner = forms.BooleanField(label=_("原负责人保留为团队成员"), required=False)
    old_owner_access = forms.ChoiceField(
        label=_("原负责人权限"), choices=CustomerMember.Access.choices, initial=CustomerMember.Access.READ
    )
    reason = forms.CharField(label=_("转移原因"), max_length=max_length(OwnerChange, "reason"), required=False)

    def __init__(self, *args, customer=None, **kwargs):
        super().__init__(*args, **kwargs)
        qs = user_directory(roles=User.SALES_ROLES)
        if customer is not None:
            qs = qs.exclude(pk=customer.owner_id)
        self.fields["to_user"].queryset = qs
