"""Row checks compiled from a data contract, evaluated on a frame of received text.

One definition per check, used twice: the gate evaluates the Polars expressions to decide what is
quarantined, and the Great Expectations suite (`expectations.py`) is compiled from the same
`Check` objects, so the two agree row for row (tests/test_expectations.py shows it). What each
kind of check does is its registered object in `kinds.py`.

Evaluation runs on a frame of the received text (every column a string). For every contract
column `c` it adds `c__v`, the typed value (`values.py`), then one boolean column per check, named
by the check's reason, true where the row fails it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from pipelines.core.contracts import Contract
from pipelines.gate.kinds import (
    DUPLICATE_KEY,
    TYPED_IN_GE,
    Check,
    CheckContext,
    compile_checks,
    failure,
    kind_of,
)
from pipelines.gate.values import key_text, staged, text

__all__ = [
    "DUPLICATE_KEY",
    "Check",
    "CheckContext",
    "Prepared",
    "compile_checks",
    "cross_row_context",
    "evaluate",
    "failure",
    "ge_columns",
    "key_text",
    "text",
]


def cross_row_context(
    frame: pl.LazyFrame, contract: Contract, ctx: CheckContext
) -> tuple[CheckContext, int]:
    """Settle the checks that compare rows (`Kind.compares_rows`) over the whole extract, in
    streaming passes, and return the context carrying what they found, with the number of rows
    seen. A check reading a column the file lacks is left out, as in `evaluate`."""
    present = set(frame.collect_schema().names())
    settled: dict[str, pl.Series] = {}
    rows = None
    for check in compile_checks(contract, ctx):
        kind = kind_of(check)
        if kind.compares_rows and set(check.columns) <= present:
            found, seen = kind.settle(frame, check, contract, ctx)
            settled[check.reason] = found
            rows = seen if rows is None else rows
    if rows is None:
        rows = frame.select(pl.len()).collect(engine="streaming").item()
    return CheckContext(ctx.quarter, ctx.routed_warning_keys, settled=settled), rows


def evaluate(
    frame: pl.LazyFrame | pl.DataFrame,
    contract: Contract,
    ctx: CheckContext,
    checks: list[Check] | None = None,
) -> pl.LazyFrame:
    """Adds `__v` columns and one boolean column per check (true = fails).

    A check reading a column the file lacks is left out: the file has failed already, and the
    missing column is not each row's own fault.
    """
    lf = frame.lazy()
    present = set(lf.collect_schema().names())
    checks = compile_checks(contract, ctx) if checks is None else checks
    checks = [c for c in checks if set(c.columns) <= present]
    return staged(lf, contract).with_columns([failure(c, contract, ctx) for c in checks])


def ge_columns(contract: Contract, present: set[str]) -> list[pl.Expr]:
    """The columns Great Expectations validates, from the checked rows: one per contract column
    present, under its canonical name: the typed value for id/code/county columns, the trimmed
    text (empty as null) for every other type."""
    return [
        (pl.col(f"{c.name}__v") if c.value_type in TYPED_IN_GE else text(c.name))
        .cast(pl.String)
        .alias(c.name)
        for c in contract.columns
        if c.name in present
    ]


@dataclass(frozen=True)
class Prepared:
    """What Great Expectations validates, written by the gate's own pass over the rows: the
    `ge_columns` under their canonical names and, beside them, the gate's flag of every check
    in `flags` (named by its reason), in row order. GE then takes those flags instead of
    evaluating the checks a second time over a second read of the file."""

    frame: pl.LazyFrame | pl.DataFrame
    flags: tuple[str, ...]
    # what keeps the file `frame` reads (the gate's `Checked`, which removes it when closed or
    # collected): held here so that the file lives as long as this does
    owner: object = field(default=None, compare=False, repr=False)
