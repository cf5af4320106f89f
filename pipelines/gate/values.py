"""A received cell as the value it stands for, per value type of the contract (docs/contracts.md).

The gate reads every column as text. For a contract column `c`, `typed` gives the expression of
its typed value — null when absent or not parseable — which the checks read as `c__v`; the
staging table holds these values (`extract.staging_frame`).
"""

from __future__ import annotations

import polars as pl

from pipelines.core import idnumbers
from pipelines.core.contracts import Column, Contract

DATE_PATTERNS = {"YYYY-MM-DD": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "YYYYMMDD": r"^[0-9]{8}$"}
# ASCII digits only: `\d` also matches full-width and other Unicode digits, which the casts
# below reject, so the pattern alone (GE's regex expectation) would accept what the gate does not.
MONEY_PATTERN = r"^[0-9]{1,15}(?:\.[0-9]{1,2})?$"
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(?:\.[0-9]+)?$"
INT_PATTERN = r"^[-+]?[0-9]{1,18}$"
MONTH_PATTERN = r"^\d{4}-\d{2}$"
BOOL_TRUE = ("TRUE", "1", "Y", "是")
BOOL_FALSE = ("FALSE", "0", "N", "否")


def text(col: str) -> pl.Expr:
    """The received value trimmed of surrounding spaces, an empty string as null."""
    s = pl.col(col).str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


def value(col: str) -> pl.Expr:
    """The typed value `typed` added as `<col>__v`."""
    return pl.col(f"{col}__v")


def typed(column: Column, contract: Contract, *, staged: bool = False) -> pl.Expr:
    """The typed value of a column, null where absent or not parseable. `staged`: the frame
    already holds the identity number's body and check character (`<c>__body`, `<c>__check`,
    see `staged`)."""
    s = text(column.name)
    vt = column.value_type
    if vt == "id":
        if not staged:
            return idnumbers.normalise(s)
        return idnumbers.normalise(
            s, pl.col(f"{column.name}__check"), pl.col(f"{column.name}__body")
        )
    if vt in ("code", "county"):
        return s.str.to_uppercase()
    if vt == "date":
        # one pattern for the layouts the department may use, then one parse of the digits
        pattern = "|".join(DATE_PATTERNS[f] for f in contract.date_formats)
        digits = s.str.replace_all("-", "", literal=True)
        # the pattern leaves four digits of year: year 0 (there is none) is judged on them, so
        # the date is parsed once (the streaming engine computes an expression again wherever
        # it is named)
        real = s.str.contains(pattern) & ~digits.str.starts_with("0000")
        return pl.when(real).then(digits.str.strptime(pl.Date, "%Y%m%d", strict=False))
    if vt == "month":
        return pl.when(s.str.contains(MONTH_PATTERN)).then(
            (s + "-01").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        )
    if vt == "money":  # exact: integer cents
        whole = s.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)
        frac = s.str.extract(r"\.(\d{1,2})$", 1).str.pad_end(2, "0").cast(pl.Int64, strict=False)
        return pl.when(s.str.contains(MONEY_PATTERN)).then(whole * 100 + frac.fill_null(0))
    if vt == "decimal":
        return pl.when(s.str.contains(DECIMAL_PATTERN)).then(s.cast(pl.Float64, strict=False))
    if vt == "int":
        return pl.when(s.str.contains(INT_PATTERN)).then(s.cast(pl.Int64, strict=False))
    if vt == "bool":
        u = s.str.to_uppercase()
        return pl.when(u.is_in(BOOL_TRUE)).then(True).when(u.is_in(BOOL_FALSE)).then(False)
    return s  # text


def key_text(columns: tuple[str, ...]) -> pl.Expr:
    """A row's key as one text (typed values joined by U+001F); null when any part is null."""
    return pl.concat_str([value(c).cast(pl.String) for c in columns], separator="\x1f")


def staged(frame: pl.LazyFrame, contract: Contract) -> pl.LazyFrame:
    """The typed columns in stages, so that what several checks share is computed once (the
    streaming engine does not eliminate common sub-expressions): the identity number's 17-digit
    body (`<c>__body`) and check character (`<c>__check`), then every `<c>__v`, then the
    embedded birth date (`<c>__born`) and whether the number is well formed (`<c>__ok`, which
    four of its checks and those comparing other columns with it read: `well_formed`)."""
    present = set(frame.collect_schema().names())
    ids = [c.name for c in contract.columns if c.value_type == "id" and c.name in present]
    frame = frame.with_columns(idnumbers.body17(text(c)).alias(f"{c}__body") for c in ids)
    frame = frame.with_columns(
        idnumbers.check_character(pl.col(f"{c}__body")).alias(f"{c}__check") for c in ids
    )
    frame = frame.with_columns(
        typed(c, contract, staged=True).alias(f"{c.name}__v")
        if c.name in present
        else pl.lit(None, dtype=pl.String).alias(f"{c.name}__v")
        for c in contract.columns
    )
    return frame.with_columns(
        expr
        for c in ids
        for expr in (
            idnumbers.birth_date(value(c)).alias(f"{c}__born"),
            idnumbers.is_well_formed(value(c)).alias(f"{c}__ok"),
        )
    )


def well_formed(col: str) -> pl.Expr:
    """Whether the identity number of `col` is well formed, as `staged` left it."""
    return pl.col(f"{col}__ok")
