"""A received cell as the value it stands for, per value type of the contract (docs/contracts.md;
the types themselves are `core/valuetypes.py`'s).

The gate reads every column as text. For a contract column `c`, `typed` gives the expression of
its typed value — null when absent or not parseable — which the checks read as `c__v`; the
staging table holds these values (`extract.staging_frame`).
"""

from __future__ import annotations

import polars as pl

from pipelines.core import idnumbers
from pipelines.core.contracts import Column, Contract
from pipelines.core.valuetypes import VALUE_TYPES, trimmed


def text(col: str) -> pl.Expr:
    """The received value trimmed of surrounding spaces, an empty string as null."""
    return trimmed(pl.col(col))


def value(col: str) -> pl.Expr:
    """The typed value `typed` added as `<col>__v`."""
    return pl.col(f"{col}__v")


def typed(column: Column, contract: Contract, *, staged: bool = False) -> pl.Expr:
    """The typed value of a column, null where absent or not parseable (its value type's,
    `core/valuetypes.py`). `staged`: the frame already holds the identity number's body and
    check character (`<c>__body`, `<c>__check`, see `staged`)."""
    s = text(column.name)
    if staged and column.value_type == "id":
        return idnumbers.normalise(
            s, pl.col(f"{column.name}__check"), pl.col(f"{column.name}__body")
        )
    return VALUE_TYPES[column.value_type].value(s, contract.date_formats)


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
