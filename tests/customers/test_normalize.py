"""Duplicate-check normalisation: credit code check character, company names, phones."""

import pytest

from tuijin.customers.normalize import (
    credit_code_check_char,
    credit_code_is_valid,
    normalize_credit_code,
    normalize_name,
    normalize_phone,
)

REAL_VALID_CODES = [
    "91350100M000100Y43",  # the GB 32100-2015 worked example
    "91110108551385082Q",  # 小米科技有限责任公司
    "914403001922038216",  # 华为技术有限公司
]


@pytest.mark.parametrize("code", REAL_VALID_CODES)
def test_real_credit_codes_pass_the_check_character(code):
    assert credit_code_is_valid(code)
    assert credit_code_check_char(code[:17]) == code[17]


@pytest.mark.parametrize(
    "code",
    [
        "91350100M000100Y44",  # wrong check character
        "91350100M000100Y4",  # 17 characters
        "91350100M000100Y433",  # 19 characters
        "9135010OM000100Y43",  # letter O is not in the code alphabet (digit 0 expected)
        "91350100I000100Y43",  # letter I is not in the code alphabet
        "913501A0M000100Y43",  # region code (chars 3-8) must be digits
        "",
    ],
)
def test_malformed_or_wrong_check_character_codes_are_rejected(code):
    assert not credit_code_is_valid(code)


def test_credit_code_is_upper_cased_and_full_width_folded_before_checking():
    assert normalize_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert credit_code_is_valid("91350100m000100y43")
    assert credit_code_is_valid("９１３５０１００Ｍ０００１００Ｙ４３")


def test_joint_stock_suffix_variants_normalise_to_the_same_name():
    a = normalize_name("上海联影医疗科技股份有限公司")
    b = normalize_name("上海联影医疗科技（股份）公司")
    c = normalize_name("上海联影医疗科技(股份)有限公司")
    assert a == b == c == "上海联影医疗科技"


def test_different_companies_stay_different_after_normalisation():
    assert normalize_name("上海联影医疗科技有限公司") != normalize_name("上海联影智能有限公司")


def test_english_legal_forms_and_punctuation_are_ignored():
    assert normalize_name("ABC Co., Ltd.") == normalize_name("abc company limited") == "abc"


def test_a_bare_suffix_is_not_stripped_to_nothing():
    assert normalize_name("公司") == "公司"


@pytest.mark.parametrize(
    "raw", ["+86 138-0013-8000", "0086 13800138000", "86 13800138000", "138 0013 8000", "８６１３８００１３８０００"]
)
def test_mobile_numbers_with_country_prefix_normalise_to_eleven_digits(raw):
    assert normalize_phone(raw) == "13800138000"


def test_landline_keeps_area_code():
    assert normalize_phone("021-5555 0001") == "02155550001"


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("+86 21 6437 0045", "02164370045"),  # Shanghai landline, international form
        ("+86 (0)21 6437 0045", "02164370045"),
        ("0086-10-6552-9988", "01065529988"),  # Beijing: area code starts with 1 but is not a mobile
        ("+86 10 6552 9988", "01065529988"),
    ],
)
def test_international_landlines_match_their_domestic_form(raw, expected):
    assert normalize_phone(raw) == expected
