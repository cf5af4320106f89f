"""Identity numbers (GB 11643-1999): the vectorised check character against python-stdnum,
the 15-to-18 upgrade, the embedded birth date, and masking."""

from __future__ import annotations

import datetime as dt
import random

import polars as pl
from stdnum.cn import ric

from pipelines.core import idnumbers
from pipelines.generate.samples import check_character, id_number


def _column(values: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"v": values}, schema={"v": pl.String})


def test_check_character_equals_stdnum_on_random_bodies():
    rng = random.Random(11643)
    bodies = [f"{rng.randrange(10**17):017d}" for _ in range(5000)]
    bodies += ["0" * 17, "9" * 17, "35010219900101123"]
    got = _column(bodies).select(idnumbers.check_character(pl.col("v")).alias("c"))["c"]
    got = got.to_list()
    want = [ric.calc_check_digit(b + "0") for b in bodies]
    assert got == want
    assert "X" in want and "0" in want  # every check character, the letter included


def test_factory_numbers_validate_with_stdnum():
    number = id_number("350102", dt.date(1990, 1, 1), 123)
    assert ric.is_valid(number) and number[:17] == "35010219900101123"
    assert check_character(number[:17]) == number[17]


def test_normalise_upgrades_fifteen_digits_and_upper_cases():
    values = ["350102500101123", " 35010219800517123x ", "35010219800517", None, "abc"]
    got = _column(values).select(idnumbers.normalise(pl.col("v")))["v"].to_list()
    body = "35010219500101123"
    upgraded = body + ric.calc_check_digit(body + "0")
    assert got == [upgraded, "35010219800517123X", "35010219800517", None, "ABC"]


def test_birth_date_is_null_for_an_impossible_date_or_what_is_not_eight_digits():
    dates = ("19900230", "20000229", "19000229", "00000101", "00010101", "+0010101", "1990O101")
    values = ["350102" + d + "1234" for d in dates] + ["3501021990", None]
    got = _column(values).select(idnumbers.birth_date(pl.col("v")))["v"].to_list()
    assert got == [None, dt.date(2000, 2, 29), None, None, dt.date(1, 1, 1), None, None, None, None]


def test_sequence_digit_gives_gender():
    values = [id_number("350102", dt.date(1990, 1, 1), s) for s in (123, 124)]
    got = _column(values).select(idnumbers.sequence_is_male(pl.col("v")))["v"].to_list()
    assert got == [True, False]


def test_mask():
    assert idnumbers.mask("350102199001011234") == "350102********1234"
    assert idnumbers.mask(" 35010219900101123X ") == "350102********123X"
    assert idnumbers.mask("350102900101123") == "350102*****1123"
    assert idnumbers.mask("12345") == "*****"
    assert idnumbers.mask(None) is None


def test_mask_expr_equals_mask():
    values = ["350102199001011234", "350102900101123", "1234", " 35010219900101123X "]
    got = _column(values).select(idnumbers.mask_expr(pl.col("v")))["v"].to_list()
    assert got == [idnumbers.mask(v) for v in values]


def test_scrub_masks_identity_numbers_in_free_text():
    text = (
        "行3 公民身份号码350102199001011234与性别不符; old 350102900101123; "
        "lower 35010219900101123x, phone 13812345678, case C00012, amount 1234.50"
    )
    scrubbed = idnumbers.scrub(text)
    assert "350102199001011234" not in scrubbed and "350102********1234" in scrubbed
    assert "350102900101123" not in scrubbed and "350102*****1123" in scrubbed
    assert "35010219900101123x" not in scrubbed and "350102********123x" in scrubbed
    assert "13812345678" in scrubbed and "C00012" in scrubbed and "1234.50" in scrubbed
    assert idnumbers.scrub("no numbers here") == "no numbers here"
