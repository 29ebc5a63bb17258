"""Normalisation and validation used by the duplicate check (查重).

Company names are compared without legal-form suffixes, brackets and
punctuation ("上海联影医疗科技股份有限公司" ≈ "上海联影医疗科技（股份）公司"); phones by
their digits without country prefix; the unified social credit code
(统一社会信用代码, GB 32100-2015) by its check character.
"""

from __future__ import annotations

import re
import unicodedata

_SUFFIXES = [
    "股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "股份公司", "集团公司", "集团",
    "公司", "co.,ltd", "co., ltd", "co.ltd", "company limited", "limited", "ltd", "inc", "corp", "llc",
]
_PUNCT = re.compile(r"[\s\W_]+", re.UNICODE)


def normalize_name(name: str) -> str:
    text = unicodedata.normalize("NFKC", name or "").lower().strip()
    text = re.sub(r"[（(]股份[)）]", "", text)
    text = _PUNCT.sub("", text)
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            s = _PUNCT.sub("", suffix)
            if text.endswith(s) and len(text) > len(s) + 1:
                text = text[: -len(s)]
                changed = True
    return text


def normalize_phone(phone: str) -> str:
    text = unicodedata.normalize("NFKC", phone or "").strip()
    digits = re.sub(r"\D", "", text)
    international = text.startswith("+86") or digits.startswith("0086")
    if digits.startswith("0086"):
        digits = digits[4:]
    elif text.startswith("+86") or (digits.startswith("86") and len(digits) == 13):
        digits = digits[2:]
    # "+86 21 6437 0045" is dialled "021-6437 0045" at home: restore the trunk 0 of landlines.
    if international and digits and not digits.startswith("0") and not (len(digits) == 11 and digits[0] == "1"):
        digits = "0" + digits
    return digits


_CODE_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_CODE_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
_CODE_RE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")


def credit_code_check_char(first17: str) -> str:
    total = sum(_CODE_CHARS.index(c) * w for c, w in zip(first17, _CODE_WEIGHTS, strict=True))
    return _CODE_CHARS[(31 - total % 31) % 31]


def normalize_credit_code(code: str) -> str:
    return unicodedata.normalize("NFKC", code or "").strip().upper()


def credit_code_is_valid(code: str) -> bool:
    code = normalize_credit_code(code)
    if not _CODE_RE.match(code):
        return False
    return credit_code_check_char(code[:17]) == code[17]
