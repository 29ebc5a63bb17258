"""The import columns: Chinese and English headers, where each value goes, allowed values.

One list drives the template, the header matching and the 说明 sheet, so they
cannot drift apart. Choice columns accept the stored code ("medium"), the
Chinese label ("中型(100-499人)"), the label without its bracketed note ("中型")
and the English label once a translation exists.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field

from django.db import models
from django.utils import translation

from tuijin.core.limits import max_length
from tuijin.customers.models import Contact, Customer


@dataclass(frozen=True)
class Column:
    key: str  # "customer.name", "contact.mobile", "owner"
    zh: str
    en: str
    required: bool = False
    choices: type[models.TextChoices] | None = None
    help_zh: str = ""
    help_en: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def target(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def field(self) -> str:
        return self.key.split(".", 1)[-1]

    def header(self, lang: str | None = None) -> str:
        lang = lang or translation.get_language() or "zh-hans"
        text = self.en if lang.startswith("en") else self.zh
        return f"{text}*" if self.required else text

    def help(self, lang: str | None = None) -> str:
        lang = lang or translation.get_language() or "zh-hans"
        return self.help_en if lang.startswith("en") else self.help_zh


COLUMNS: list[Column] = [
    Column("customer.name", "客户名称", "customer name", required=True,
           help_zh="必填。同名（忽略“有限公司”等后缀和标点）的多行视为同一客户的多个联系人。",
           help_en="Required. Rows with the same name (ignoring suffixes such as Co., Ltd. and punctuation) "
                   "are one customer with several contacts.",
           aliases=("name", "customer", "客户", "公司名称")),
    Column("customer.credit_code", "统一社会信用代码", "credit code",
           help_zh="18位，校验位须正确。", help_en="18 characters with a valid check character.",
           aliases=("unified social credit code", "信用代码")),
    Column("customer.industry", "行业", "industry", help_zh=f"最多{max_length(Customer, 'industry')}字。",
           help_en=f"Up to {max_length(Customer, 'industry')} characters."),
    Column("customer.size_band", "规模", "size", choices=Customer.Size, aliases=("size band", "company size")),
    Column("customer.region", "区域", "region", help_zh="如 华东、华南。", help_en="e.g. East China."),
    Column("customer.city", "城市", "city"),
    Column("customer.source", "来源", "source", choices=Customer.Source),
    Column("customer.tags", "标签", "tags", help_zh="多个标签用逗号分隔。", help_en="Separate tags with commas."),
    Column("customer.status", "状态", "status", choices=Customer.Status, help_zh="留空为“活跃”。",
           help_en="Empty means active."),
    Column("customer.phone", "电话", "phone", help_zh="至少7位数字。", help_en="At least 7 digits.",
           aliases=("company phone", "客户电话")),
    Column("customer.address", "地址", "address"),
    Column("owner", "负责人用户名", "owner username",
           help_zh="登录用户名，须是你可见的在职用户；留空为导入人。更新已有客户时不改变负责人。",
           help_en="Login name of an active user you can see; empty means you. "
                   "Updating an existing customer does not change its owner.",
           aliases=("owner", "负责人")),
    Column("contact.name", "联系人姓名", "contact name",
           help_zh="填写任一联系人列时必填。", help_en="Required when any contact column is filled.",
           aliases=("联系人", "contact")),
    Column("contact.title", "联系人职务", "contact title", aliases=("职务", "title", "job title")),
    Column("contact.decision_role", "决策角色", "decision role", choices=Contact.DecisionRole,
           aliases=("role",)),
    Column("contact.mobile", "手机", "mobile", help_zh="以1开头的11位数字。",
           help_en="11 digits starting with 1.", aliases=("手机号", "mobile phone", "cell phone")),
    Column("contact.phone", "座机", "landline", help_zh="至少7位数字。", help_en="At least 7 digits.",
           aliases=("contact phone", "联系人电话")),
    Column("contact.email", "邮箱", "email", aliases=("e-mail", "电子邮箱")),
    Column("contact.wechat", "微信", "wechat", aliases=("微信号", "weixin")),
    Column("contact.qq", "QQ", "qq", help_zh="只能是数字。", help_en="Digits only.", aliases=("qq号",)),
]

CUSTOMER_COLUMNS = [c for c in COLUMNS if c.target == "customer"]
CONTACT_COLUMNS = [c for c in COLUMNS if c.target == "contact"]
BY_KEY = {c.key: c for c in COLUMNS}

_SPACES = re.compile(r"[\s_\-]+")


def normalize_header(text) -> str:
    """Compare headers without case, spaces, required-star or full-width forms."""
    text = unicodedata.normalize("NFKC", str(text or "")).strip().lower().replace("*", "")
    return _SPACES.sub(" ", text).strip()


_HEADER_MAP: dict[str, Column] = {}
for _col in COLUMNS:
    for _name in (_col.zh, _col.en, *_col.aliases):
        _HEADER_MAP.setdefault(normalize_header(_name), _col)


def column_for_header(text) -> Column | None:
    return _HEADER_MAP.get(normalize_header(text))


def _label_variants(label: str) -> set[str]:
    text = normalize_header(label)
    out = {text}
    bare = re.sub(r"\(.*?\)", "", text).strip()
    if bare:
        out.add(bare)
    return out


@functools.lru_cache(maxsize=32)
def choice_map(choices: type[models.TextChoices]) -> dict[str, str]:
    """Every accepted spelling (normalised) → stored code."""
    out: dict[str, str] = {}
    for code in choices.values:
        out[normalize_header(code)] = code
    for lang in ("zh-hans", "en"):
        with translation.override(lang):
            for code, label in choices.choices:
                for v in _label_variants(str(label)):
                    out.setdefault(v, code)
    return out


def choice_to_code(column: Column, value: str) -> str:
    """The stored code for a choice cell; unknown values pass through for the validator to reject."""
    if not value or column.choices is None:
        return value
    return choice_map(column.choices).get(normalize_header(value), value)


def choices_text(column: Column, lang: str | None = None) -> str:
    if column.choices is None:
        return ""
    lang = lang or translation.get_language() or "zh-hans"
    with translation.override(lang):
        return "; ".join(f"{code} = {label}" for code, label in column.choices.choices)
