"""Identity numbers (GB 11643-1999), vectorised over Polars columns, and masking.

The check character is ISO 7064 MOD 11-2 as in `stdnum.cn.ric.calc_check_digit` (the tests hold
this implementation to it); the address code is judged against the GB/T 2260 history in
`gbt2260`, not by `ric.validate`, which wrongly demands the code be in force in the birth year.
"""

from __future__ import annotations

import datetime as dt
import functools
import re

import numpy as np
import polars as pl

from pipelines.core import gbt2260

_ID_LIKE = re.compile(
    r"(?<![0-9A-Za-z])(\d{6})(\d{7}|\d{5}|\d{8})(\d{3}[\dXx]|\d{4})(?![0-9A-Za-z])"
)


def check_character(body17: pl.Expr) -> pl.Expr:
    """The 18th character for a 17-digit body (null where the body is not 17 ASCII digits).

    ISO 7064 MOD 11-2: Σ digit·2^(17-i) mod 11. As 13 ≡ 2 (mod 11), that is the body read as a
    base-13 number, mod 11 (the trick `stdnum.cn.ric.calc_check_digit` uses): one vectorised
    parse instead of seventeen digit extractions. 13^17 < 2^63, so it fits an Int64.
    """
    body = pl.when(body17.str.contains(r"^[0-9]{17}$")).then(body17)
    code = (23 - 2 * (body.str.to_integer(base=13, strict=False) % 11)) % 11
    # 10 is X: written on the code's text, so the code is computed once (the streaming engine
    # computes an expression again wherever it is named; `body17` is best a column for that)
    return code.cast(pl.String).str.replace("10", "X", literal=True)


def body17(raw: pl.Expr) -> pl.Expr:
    """The 17 digits before the check character: a 15-digit first-generation number upgraded
    (`19` inserted after the six address digits), else the first 17 characters."""
    s = raw.str.strip_chars().str.to_uppercase()
    upgraded = s.str.slice(0, 6) + pl.lit("19") + s.str.slice(6, 9)
    # ASCII digits only: `\d` also matches full-width digits (typed in a Chinese input mode)
    return pl.when(s.str.contains(r"^[0-9]{15}$")).then(upgraded).otherwise(s.str.slice(0, 17))


def normalise(raw: pl.Expr, check: pl.Expr | None = None, body: pl.Expr | None = None) -> pl.Expr:
    """Trimmed, upper-cased (`x` → `X`), 15-digit first-generation numbers upgraded to 18
    (insert `19` after the six address digits, then compute the check character). Anything else
    is returned trimmed and upper-cased, for the format check to reject. `check` and `body` may
    pass the already computed `check_character(body17(raw))` and `body17(raw)`."""
    s = raw.str.strip_chars().str.to_uppercase()
    body = body17(raw) if body is None else body
    check = check_character(body) if check is None else check
    return pl.when(s.str.contains(r"^[0-9]{15}$")).then(body + check).otherwise(s)


def is_well_formed(norm: pl.Expr) -> pl.Expr:
    return norm.str.contains(r"^[0-9]{17}[0-9X]$")


def birth_date(norm: pl.Expr) -> pl.Expr:
    """The embedded birth date: the eight digits after the address code, null if they are not
    eight digits or not a real date (there is no year 0)."""
    digits = norm.str.slice(6, 8)
    real = digits.str.contains(r"^[0-9]{8}$") & ~digits.str.starts_with("0000")
    # the year is judged on the digits, so the date is parsed once (see `check_character`)
    return pl.when(real).then(digits.str.strptime(pl.Date, "%Y%m%d", strict=False))


def failures(
    norm: pl.Expr,
    quarter_end: dt.date,
    *,
    check: pl.Expr | None = None,
    born: pl.Expr | None = None,
    well_formed: pl.Expr | None = None,
) -> dict[str, pl.Expr]:
    """Reason suffix -> expression true where a non-null normalised number fails it. `check`,
    `born` and `well_formed` may pass the already computed check character, birth date and
    `is_well_formed`."""
    ok_form = is_well_formed(norm) if well_formed is None else well_formed
    born = birth_date(norm) if born is None else born
    check = check_character(norm.str.slice(0, 17)) if check is None else check
    # a dense table indexed by the six digits: a gather streams, a dictionary replace does not
    last_year = pl.lit(_last_year_table()).gather(norm.str.slice(0, 6).cast(pl.Int32, strict=False))
    return {
        "format": norm.is_not_null() & ~ok_form,
        "check_character": ok_form & (norm.str.slice(17, 1) != check),
        "birth_date": ok_form & (born.is_null() | (born > pl.lit(quarter_end))),
        # in force at some time from the birth year on (extracts.md §2)
        "address_code": ok_form & born.is_not_null() & (last_year < born.dt.year()),
    }


@functools.cache
def _last_year_table() -> pl.Series:
    """Index = the 6-digit address code; value = the last year it was in force (9999 while in
    force, -1 for a code that never existed, so every birth year is later)."""
    table = np.full(1_000_000, -1, dtype=np.int16)
    for code, year in gbt2260.last_year_in_force().items():
        table[int(code)] = year
    return pl.Series("last_year_in_force", table)


def sequence_is_male(norm: pl.Expr) -> pl.Expr:
    """The 17th digit: odd = male."""
    return norm.str.slice(16, 1).cast(pl.Int8, strict=False) % 2 == 1


def mask(value: str | None) -> str | None:
    """`350102********1234`: six address digits, stars, last four. Short values are starred."""
    if value is None:
        return None
    v = str(value).strip()
    if len(v) < 12:
        return "*" * len(v)
    return v[:6] + "*" * (len(v) - 10) + v[-4:]


def mask_expr(col: pl.Expr) -> pl.Expr:
    s = col.str.strip_chars()
    n = s.str.len_chars()
    return (
        pl.when(n >= 12)
        .then(s.str.slice(0, 6) + pl.lit("*").repeat_by(n - 10).list.join("") + s.str.slice(-4))
        .otherwise(pl.lit("*").repeat_by(n).list.join(""))
    )


def scrub(text: str) -> str:
    """Mask anything in free text that looks like a 15- or 18-character identity number."""
    return _ID_LIKE.sub(lambda m: mask(m.group(0)) or "", text)


def normalise_text(value: str) -> str:
    """`normalise` for one value (tests and tools; the gate works on whole columns)."""
    return pl.select(normalise(pl.lit(value, dtype=pl.String))).item()
