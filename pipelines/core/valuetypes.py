"""The contracts' value types (docs/contracts.md `valueType`, extracts.md §2), one object each:
which received text is a value of the type and the value it stands for, the column type of the
staging tables, and whether a typed file (Parquet, Excel) holds the type typed.

Every reader of a type reads it here: the gate's typed values (`gate/values.py`) and Great
Expectations' regular expressions (`gate/kinds.py`), the staging tables (`gate/extract.py`, and
tests/rulecase.py's), the sample writers (`generate/samples.py`) and the province's chunked writer
(`generate/stream.py`). A writer types a file's column only where the gate reads every value of
it as the type, so a planted error reaches the gate as sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import polars as pl

from pipelines.core import idnumbers


@dataclass(frozen=True)
class DateLayout:
    """A layout a department may write its dates in (a contract's `dateFormats`)."""

    strftime: str
    pattern: str  # the text of a date, ASCII digits only
    width: int  # characters


DATE_LAYOUTS = {
    "YYYY-MM-DD": DateLayout("%Y-%m-%d", r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", 10),
    "YYYYMMDD": DateLayout("%Y%m%d", r"^[0-9]{8}$", 8),
}
# ASCII digits only: `\d` also matches full-width and other Unicode digits, which the casts
# below reject, so the pattern alone (GE's regex expectation) would accept what the gate does not.
MONEY_PATTERN = r"^[0-9]{1,15}(?:\.[0-9]{1,2})?$"
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(?:\.[0-9]+)?$"
INT_PATTERN = r"^[-+]?[0-9]{1,18}$"
MONTH_PATTERN = r"^\d{4}-\d{2}$"  # the parse then refuses what is not ASCII
MONEY_STAGED = pl.Decimal(18, 2)


class ValueType:
    """One value type. `value` is the gate's typed value of a cell's trimmed text (null where
    the cell is empty): null where the text is not a value of the type."""

    name: ClassVar[str]
    staged: ClassVar[pl.DataType] = pl.String  # the staging tables' column type
    # the text of a value where one regular expression is the whole test (Great Expectations
    # checks it natively: `gate/kinds.py`); a date or a month must also be a real day
    pattern: ClassVar[str | None] = None
    in_file: ClassVar[bool] = False  # a typed file holds it as `staged`; else as text
    # the kinds of Parquet column it may arrive in (`gate/reader.py` names a column's kind),
    # each checked by the value it holds (extracts.md §2); any other is the wrong column or a
    # broken export. Pandas writes whole numbers as floats beside nulls: every number kind.
    parquet_kinds: ClassVar[frozenset[str]] = frozenset({"text", "integer", "float", "decimal"})

    def value(self, text: pl.Expr, date_formats: Sequence[str]) -> pl.Expr:
        return text

    def staged_value(self, value: pl.Expr) -> pl.Expr:
        """The staging tables' value (of type `staged`) of a typed value."""
        return value


class Text(ValueType):
    name = "text"


class Code(ValueType):
    name = "code"

    def value(self, text, date_formats):
        return text.str.to_uppercase()


class County(Code):
    name = "county"


class IdNumber(ValueType):
    name = "id"
    parquet_kinds = frozenset({"text"})  # a number cannot hold the check character X

    def value(self, text, date_formats):
        return idnumbers.normalise(text)


class Date(ValueType):
    name, staged, in_file = "date", pl.Date, True
    parquet_kinds = frozenset({"text", "date"})

    def value(self, text, date_formats):
        # one pattern for the layouts the department may use, then one parse of the digits
        pattern = "|".join(DATE_LAYOUTS[f].pattern for f in date_formats)
        digits = text.str.replace_all("-", "", literal=True)
        # the pattern leaves four digits of year: year 0 (there is none) is judged on them, so
        # the date is parsed once (the streaming engine computes an expression again wherever
        # it is named)
        real = text.str.contains(pattern) & ~digits.str.starts_with("0000")
        return pl.when(real).then(digits.str.strptime(pl.Date, "%Y%m%d", strict=False))


class Month(ValueType):
    # a typed file's date cell is a day, not a month: a file holds months as text
    name, staged = "month", pl.Date
    parquet_kinds = frozenset({"text", "date"})

    def value(self, text, date_formats):
        return pl.when(text.str.contains(MONTH_PATTERN)).then(
            (text + "-01").str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        )


class Money(ValueType):
    """Yuan, non-negative, at most two decimals: the typed value is exact, in integer cents."""

    name, staged, pattern, in_file = "money", MONEY_STAGED, MONEY_PATTERN, True

    def value(self, text, date_formats):
        whole = text.str.extract(r"^(\d+)", 1).cast(pl.Int64, strict=False)
        frac = text.str.extract(r"\.(\d{1,2})$", 1).str.pad_end(2, "0").cast(pl.Int64, strict=False)
        return pl.when(text.str.contains(MONEY_PATTERN)).then(whole * 100 + frac.fill_null(0))

    def staged_value(self, value):
        yuan = (
            (value // 100).cast(pl.String)
            + "."
            + (value % 100).cast(pl.String).str.pad_start(2, "0")
        )
        return yuan.str.to_decimal(scale=2).cast(MONEY_STAGED)


class DecimalNumber(ValueType):
    name, staged, pattern, in_file = "decimal", pl.Float64, DECIMAL_PATTERN, True

    def value(self, text, date_formats):
        return pl.when(text.str.contains(DECIMAL_PATTERN)).then(text.cast(pl.Float64, strict=False))


class WholeNumber(ValueType):
    name, staged, pattern, in_file = "int", pl.Int64, INT_PATTERN, True

    def value(self, text, date_formats):
        return pl.when(text.str.contains(INT_PATTERN)).then(text.cast(pl.Int64, strict=False))


class Boolean(ValueType):
    name, staged, in_file = "bool", pl.Boolean, True
    parquet_kinds = ValueType.parquet_kinds | {"boolean"}
    true: ClassVar[tuple[str, ...]] = ("TRUE", "1", "Y", "是")
    false: ClassVar[tuple[str, ...]] = ("FALSE", "0", "N", "否")

    def value(self, text, date_formats):
        u = text.str.to_uppercase()
        return pl.when(u.is_in(self.true)).then(True).when(u.is_in(self.false)).then(False)


VALUE_TYPES: dict[str, ValueType] = {
    t.name: t
    for t in [
        IdNumber(),
        County(),
        Date(),
        Month(),
        Money(),
        DecimalNumber(),
        WholeNumber(),
        Boolean(),
        Code(),
        Text(),
    ]
}


def trimmed(cell: pl.Expr) -> pl.Expr:
    """A cell's text trimmed of surrounding spaces, an empty string as null."""
    s = cell.str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


def typed(cell: pl.Expr, value_type: str, date_formats: Sequence[str]) -> pl.Expr:
    """The typed value of a cell's text (`ValueType.value`), null where empty or not one."""
    return VALUE_TYPES[value_type].value(trimmed(cell), date_formats)


def file_column(cells: pl.Series, value_type: str, date_formats: Sequence[str]) -> pl.Series | None:
    """A column of texts as a typed file holds it: the staging tables' values, an empty cell
    null; None where the type is held as text or a value is not one of the type (the column
    stays text: a file holds one type per column)."""
    kind = VALUE_TYPES[value_type]
    if not kind.in_file:
        return None
    frame = pl.DataFrame({"cell": cells}).select(
        empty=trimmed(pl.col("cell")).is_null(),
        value=kind.staged_value(typed(pl.col("cell"), value_type, date_formats)),
    )
    if not (frame["empty"] | frame["value"].is_not_null()).all():
        return None
    return frame["value"].alias(cells.name)
