"""The check kinds: each kind of contract check is one registered object.

A kind gives, in one place:
- how it arises from a contract (a required column, a value type, a quality rule's
  `implementation`, a row rule, the primary key) and the `Check` it compiles to: its reason code
  (the quarantine reason) and what was expected, in words a data engineer can act on;
- `failure`: its row check, a Polars expression true where a row fails it (the gate quarantines
  with it);
- `expectation`: the Great Expectations expectation it compiles to — a native one where GE's is
  an exact equivalent, else `None`, and `expectations.py` wraps the gate's own `failure` in a
  custom expectation (`custom_expectations.py`);
- `plant`: how to break a row of sample text so that it fails this check and nothing else (the
  generator's planted bad rows and the tests' planted files).

`register` refuses a kind that lacks one of them, so a new kind is added in this file and cannot
be forgotten by the gate, the suite or the planting. Two kinds compare rows (`duplicate_key`,
`group_agreement`): they `settle` the whole extract first, so that rows can then be checked in a
stream, batch by batch.
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from pipelines.core import cells, gbt2260, idnumbers
from pipelines.core.contracts import Column, Contract, Rule
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import VALUE_TYPES
from pipelines.gate.values import key_text, staged, text, typed, value, well_formed

Row = dict[str, str]
DUPLICATE_KEY = "duplicate_key"
# The value types GE is handed typed (the gate's `__v`: normalised identity number, upper-cased
# code); it sees every other column as the trimmed text (`expectations.ge_frame`).
TYPED_IN_GE = ("id", "code", "county")
# ... and for these the value GE sees is the one the gate compares keys on (`text`'s typed value is
# the trimmed text itself); a key with a date or month column is compared on the parsed date, so
# its uniqueness is left to the gate's code.
KEY_AS_IN_GE = (*TYPED_IN_GE, "text")


@dataclass(frozen=True)
class CheckContext:
    """What a check may need besides the row: the quarter; for feedback the warning keys routed
    to the sending department (None before any warning exists: every key is unknown); and, for
    the checks that compare rows, what `settle` found over the whole extract beforehand
    (`settled`: reason -> the duplicated keys as `key_text`, or the groups whose rows disagree),
    so that the rows can then be checked in a stream, batch by batch. Without it those checks
    compare the rows of the frame they are evaluated on."""

    quarter: Quarter
    routed_warning_keys: frozenset[str] | None = None
    settled: Mapping[str, pl.Series] | None = field(default=None, compare=False)

    @property
    def end(self) -> dt.date:
        return self.quarter.end


@dataclass(frozen=True)
class Check:
    reason: str  # quarantine reason, e.g. `gender.codes`
    kind: str
    columns: tuple[str, ...]  # the columns it reads, the one it judges first
    expected: str  # what was expected, in words a data engineer can act on
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Native:
    """A native Great Expectations expectation: its class in `great_expectations.expectations`
    and its arguments (the suite adds the description and the reason)."""

    expectation: str
    arguments: dict[str, Any]


class CannotPlant(ValueError):
    """The row no longer holds what the error needs (e.g. a date to be before)."""


class Kind(abc.ABC):
    """One kind of contract check. Subclasses set `name` and say how they arise (see `arises`)."""

    name: ClassVar[str]
    # how the kind arises from a contract: "required" (a required column), "value_type" (every
    # column of `value_type`), "column_rule" / "row_rule" (a quality rule whose implementation is
    # `name`), "key" (the primary key)
    arises: ClassVar[str]
    value_type: ClassVar[str | None] = None
    single_value: ClassVar[bool] = False  # a bad value in its own column breaks nothing else
    compares_rows: ClassVar[bool] = False  # settled over the whole extract (`settle`)

    def applies_to(self, column: Column) -> bool:
        """Whether a "value_type" kind checks this column of its value type (all, unless said)."""
        return True

    def check_for(
        self, contract: Contract, column: Column | None, rule: Rule | None, ctx: CheckContext
    ) -> Check:
        """The check this kind compiles to for a column and/or a quality rule."""
        args = dict(rule.arguments) if rule is not None else {}
        return Check(
            self.reason(column, rule),
            self.name,
            self.columns(contract, column, args),
            self.expected(contract, column, args, ctx),
            args or self.arguments(ctx),
        )

    def reason(self, column: Column | None, rule: Rule | None) -> str:
        if rule is not None:
            return rule.id
        raise NotImplementedError(self.name)

    def columns(self, contract: Contract, column: Column | None, a: dict) -> tuple[str, ...]:
        """The judged column, then the columns its arguments name."""
        return (column.name,) + tuple(v for k, v in a.items() if k in ("column", "idColumn"))

    def arguments(self, ctx: CheckContext) -> dict[str, Any]:
        return {}

    @abc.abstractmethod
    def expected(
        self, contract: Contract, column: Column | None, a: dict, ctx: CheckContext
    ) -> str: ...

    @abc.abstractmethod
    def failure(self, check: Check, contract: Contract, ctx: CheckContext) -> pl.Expr:
        """True where the row fails; reads the columns `checks.staged` adds."""

    @abc.abstractmethod
    def expectation(self, check: Check, contract: Contract, *, settled: bool) -> Native | None: ...

    @abc.abstractmethod
    def plant(
        self, rows: list[Row], contract: Contract, check: Check, i: int, quarter: Quarter
    ) -> set[int]:
        """Break row `i` so it fails the check; returns the rows that then fail it."""


KINDS: dict[str, Kind] = {}


def register(cls: type[Kind]) -> type[Kind]:
    """Add a kind to the registry; it must give every part of a kind (the module docstring)."""
    if getattr(cls, "__abstractmethods__", None):
        missing = ", ".join(sorted(cls.__abstractmethods__))
        raise TypeError(f"check kind {cls.__name__} does not give {missing}")
    if cls.arises not in ("required", "value_type", "column_rule", "row_rule", "key"):
        raise TypeError(f"check kind {cls.name}: unknown origin {cls.arises!r}")
    if cls.name in KINDS:
        raise TypeError(f"check kind {cls.name} registered twice")
    KINDS[cls.name] = cls()
    return cls


def kind_of(check: Check) -> Kind:
    return KINDS[check.kind]


def _present(col: str) -> pl.Expr:
    return text(col).is_not_null()


def _strip_id(rows: list[Row], col: str, i: int) -> None:
    rows[i][col] = rows[i][col].strip()
    if not (len(rows[i][col]) == 18 and rows[i][col][:17].isdigit()):
        raise CannotPlant(f"row {i}: {col} is no longer an 18-character number")


def _rule_of(column: Column, implementation: str) -> Rule | None:
    return next((r for r in column.rules if r.implementation == implementation), None)


def _clear_dependents(contract: Contract, row: Row, col: str) -> None:
    """A nullable date that must not be before `col` (ended_on ≥ started_on) is emptied, so
    that moving `col` does not break it as well."""
    for c in contract.columns:
        r = _rule_of(c, "not_before_column")
        if r is not None and r.arguments["column"] == col and not c.required:
            row[c.name] = ""


# --- a required column -----------------------------------------------------------------------


@register
class Required(Kind):
    name = "required"
    arises = "required"
    single_value = True

    def reason(self, column, rule):
        return f"{column.name}.required"

    def expected(self, contract, column, a, ctx):
        return "a value"

    def failure(self, check, contract, ctx):
        return ~_present(check.columns[0])

    def expectation(self, check, contract, *, settled):
        return Native("ExpectColumnValuesToNotBeNull", {"column": check.columns[0]})

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = "  "  # spaces only: trimmed, an empty string is null
        return {i}


# --- identity numbers (GB 11643) -------------------------------------------------------------


class _IdKind(Kind):
    arises = "value_type"
    value_type = "id"
    part: ClassVar[str]  # the key of `idnumbers.failures`
    words: ClassVar[str]

    def reason(self, column, rule):
        return f"{column.name}.{self.part}"

    def expected(self, contract, column, a, ctx):
        return self.words

    def failure(self, check, contract, ctx):
        col = check.columns[0]
        return idnumbers.failures(
            value(col),
            ctx.end,
            check=pl.col(f"{col}__check"),
            born=pl.col(f"{col}__born"),
            well_formed=well_formed(col),
        )[self.part]

    def expectation(self, check, contract, *, settled):
        return None

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        _strip_id(rows, col, i)
        rows[i][col] = self.broken(rows[i][col])
        return {i}

    @abc.abstractmethod
    def broken(self, number: str) -> str: ...


@register
class IdFormat(_IdKind):
    name = "id_format"
    part = "format"
    words = "18 characters, 17 digits then a digit or X (or 15 digits)"
    single_value = True

    def broken(self, number):
        return number[:17]


@register
class IdCheckCharacter(_IdKind):
    name = "id_check_character"
    part = "check_character"
    words = "the right check character (ISO 7064 MOD 11-2)"

    def broken(self, number):
        return number[:17] + ("1" if number[17] != "1" else "2")


@register
class IdBirthDate(_IdKind):
    name = "id_birth_date"
    part = "birth_date"
    words = "an embedded birth date that is a real date not after the quarter end"

    def broken(self, number):
        body = number[:6] + "19900230" + number[14:17]  # 30 February
        return body + cells.check_character(body)


@register
class IdAddressCode(_IdKind):
    name = "id_address_code"
    part = "address_code"
    words = "a GB/T 2260 address code in force at some time from the birth year on"

    def broken(self, number):
        body = cells.UNKNOWN_ADDRESS + number[6:17]
        return body + cells.check_character(body)


# --- county codes ----------------------------------------------------------------------------


@register
class County(Kind):
    name = "county"
    arises = "value_type"
    value_type = "county"
    single_value = True

    def reason(self, column, rule):
        return f"{column.name}.invalid_county"

    def arguments(self, ctx):
        return {"year": ctx.end.year}

    def expected(self, contract, column, a, ctx):
        return f"a Fujian county-level code (区/县/县级市) in force in {ctx.end.year}"

    def failure(self, check, contract, ctx):
        v = value(check.columns[0])
        return v.is_not_null() & ~v.is_in(
            sorted(gbt2260.county_codes_in_force(check.arguments["year"]))
        )

    def expectation(self, check, contract, *, settled):
        codes = sorted(gbt2260.county_codes_in_force(check.arguments["year"]))
        return Native(
            "ExpectColumnValuesToBeInSet", {"column": check.columns[0], "value_set": codes}
        )

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = "350100"  # Fuzhou prefecture, not county-level
        return {i}


# --- values that do not parse as their type --------------------------------------------------


class _TypeKind(Kind):
    """A value present but not parseable as the column's type."""

    arises = "value_type"
    single_value = True
    words: ClassVar[str]
    bad_text: ClassVar[str]  # what a department's export gets wrong

    def reason(self, column, rule):
        return f"{column.name}.invalid_{self.value_type}"

    def expected(self, contract, column, a, ctx):
        return self.words.format(formats=" or ".join(contract.date_formats))

    def failure(self, check, contract, ctx):
        col = check.columns[0]
        return _present(col) & value(col).is_null()

    def expectation(self, check, contract, *, settled):
        regex = VALUE_TYPES[self.value_type].pattern  # GE's native regex: the gate's exact test
        if regex is None:
            return None
        return Native(
            "ExpectColumnValuesToMatchRegex", {"column": check.columns[0], "regex": regex}
        )

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = self.bad_text
        return {i}


@register
class TypeDate(_TypeKind):
    name, value_type = "type_date", "date"
    words, bad_text = "a date as {formats}", "2026-02-30"


@register
class TypeMonth(_TypeKind):
    name, value_type = "type_month", "month"
    words, bad_text = "a month as YYYY-MM", "2026-13"


@register
class TypeMoney(_TypeKind):
    name, value_type = "type_money", "money"
    words, bad_text = "an amount in yuan, non-negative, at most 2 decimals", "12.345"


@register
class TypeDecimal(_TypeKind):
    name, value_type = "type_decimal", "decimal"
    words, bad_text = "a decimal number", "12,5"


@register
class TypeInt(_TypeKind):
    name, value_type = "type_int", "int"
    words, bad_text = "a whole number", "2.5"


@register
class TypeBool(_TypeKind):
    name, value_type = "type_bool", "bool"
    words, bad_text = "true/false, 1/0, Y/N or 是/否", "yes"


# The longest text value a row may carry. Names, case numbers and notes are far shorter; a longer
# field is a broken export (a field that swallowed its neighbours), and a routed file's cell
# opens in Excel, which keeps at most 32,767 characters.
MAX_TEXT_CHARS = 4096


@register
class TextLength(Kind):
    """A text value longer than `MAX_TEXT_CHARS` characters (after trimming)."""

    name, value_type = "text_length", "text"
    arises = "value_type"
    single_value = True

    def applies_to(self, column):
        # a value that must be one of the keys routed to the department is refused when it is
        # not one (`known_warning_key`), however long
        return not any(r.implementation == "known_warning_key" for r in column.rules)

    def reason(self, column, rule):
        return f"{column.name}.too_long"

    def expected(self, contract, column, a, ctx):
        return f"at most {MAX_TEXT_CHARS:,} characters"

    def failure(self, check, contract, ctx):
        return _present(check.columns[0]) & (
            text(check.columns[0]).str.len_chars() > MAX_TEXT_CHARS
        )

    def expectation(self, check, contract, *, settled):
        return Native(
            "ExpectColumnValueLengthsToBeBetween",
            {"column": check.columns[0], "max_value": MAX_TEXT_CHARS},
        )

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        rows[i][col] = (rows[i][col].strip() or "x") + "x" * MAX_TEXT_CHARS
        return {i}


# --- the quality rules of a column (ODCS `quality[]`) ----------------------------------------


class _ColumnRule(Kind):
    arises = "column_rule"

    def expectation(self, check, contract, *, settled):
        return None


@register
class Codes(_ColumnRule):
    name = "codes"  # ODCS library metric invalidValues
    single_value = True

    def expected(self, contract, column, a, ctx):
        return "one of " + " ".join(a.get("validValues", []))

    def failure(self, check, contract, ctx):
        v = value(check.columns[0])
        return v.is_not_null() & ~v.is_in(list(check.arguments["validValues"]))

    def expectation(self, check, contract, *, settled):
        return Native(
            "ExpectColumnValuesToBeInSet",
            {"column": check.columns[0], "value_set": list(check.arguments["validValues"])},
        )

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = "NOT_A_CODE"
        return {i}


@register
class NotAfterQuarterEnd(_ColumnRule):
    name = "not_after_quarter_end"

    def expected(self, contract, column, a, ctx):
        return f"not after the quarter end {ctx.end}"

    def failure(self, check, contract, ctx):
        return value(check.columns[0]) > pl.lit(ctx.end)

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        rows[i][col] = cells.date_text(quarter.end + dt.timedelta(days=1))
        _clear_dependents(contract, rows[i], col)
        return {i}


@register
class InsideQuarter(_ColumnRule):
    name = "inside_quarter"

    def expected(self, contract, column, a, ctx):
        return f"inside {ctx.quarter} ({ctx.quarter.start} – {ctx.end})"

    def failure(self, check, contract, ctx):
        v = value(check.columns[0])
        return (v < pl.lit(ctx.quarter.start)) | (v > pl.lit(ctx.end))

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        before = quarter.start - dt.timedelta(days=1)
        if contract.column(col).value_type == "month":
            rows[i][col] = f"{before:%Y-%m}"
        else:
            rows[i][col] = cells.date_text(before)
            _clear_dependents(contract, rows[i], col)
        return {i}


@register
class GreaterThan(_ColumnRule):
    name = "greater_than"

    def expected(self, contract, column, a, ctx):
        return f"greater than {a.get('value')}"

    def failure(self, check, contract, ctx):
        col, a = check.columns[0], check.arguments
        limit = a["value"] * 100 if contract.column(col).value_type == "money" else a["value"]
        return value(col) <= limit

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = "0"
        return {i}


@register
class Between(_ColumnRule):
    name = "between"

    def expected(self, contract, column, a, ctx):
        return f"between {a.get('min')} and {a.get('max')}"

    def failure(self, check, contract, ctx):
        v, a = value(check.columns[0]), check.arguments
        return (v < a["min"]) | (v > a["max"])

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = str(check.arguments["max"] + 1)
        return {i}


@register
class NotBeforeColumn(_ColumnRule):
    name = "not_before_column"

    def expected(self, contract, column, a, ctx):
        return f"not before {a.get('column')}"

    def failure(self, check, contract, ctx):
        return value(check.columns[0]) < value(check.arguments["column"])

    def plant(self, rows, contract, check, i, quarter):
        other = cells.parse_date(rows[i][check.arguments["column"]])
        if other is None:
            raise CannotPlant(f"row {i}: {check.arguments['column']} holds no date")
        rows[i][check.columns[0]] = cells.date_text(other - dt.timedelta(days=1))
        return {i}


@register
class RequiredUnless(_ColumnRule):
    name = "required_unless"

    def expected(self, contract, column, a, ctx):
        return f"a value unless {a.get('column')} is " + "/".join(a.get("values", []))

    def _others(self, contract: Contract, a: dict) -> list[str]:
        codes = contract.column(a["column"]).codes or ()
        return [x for x in codes if x not in a["values"]]

    def failure(self, check, contract, ctx):
        a = check.arguments
        return ~_present(check.columns[0]) & value(a["column"]).is_in(self._others(contract, a))

    def plant(self, rows, contract, check, i, quarter):
        a = check.arguments
        rows[i][a["column"]] = self._others(contract, a)[0]
        rows[i][check.columns[0]] = ""
        return {i}


@register
class AgreesWithIdGender(_ColumnRule):
    name = "agrees_with_id_gender"

    def expected(self, contract, column, a, ctx):
        return "the gender of the identity number (odd digit = M)"

    def failure(self, check, contract, ctx):
        v, idv = value(check.columns[0]), value(check.arguments["idColumn"])
        male = idnumbers.sequence_is_male(idv)
        return well_formed(check.arguments["idColumn"]) & v.is_in(["M", "F"]) & ((v == "M") != male)

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        rows[i][col] = "F" if rows[i][col].strip().upper() == "M" else "M"
        return {i}


@register
class EqualsIdBirthDate(_ColumnRule):
    name = "equals_id_birth_date"

    def expected(self, contract, column, a, ctx):
        return "the birth date inside the identity number"

    def failure(self, check, contract, ctx):
        id_column = check.arguments["idColumn"]
        return well_formed(id_column) & (value(check.columns[0]) != pl.col(f"{id_column}__born"))

    def plant(self, rows, contract, check, i, quarter):
        id_column = check.arguments["idColumn"]
        try:
            born = cells.id_birth_date(rows[i][id_column].strip())
        except ValueError as e:
            raise CannotPlant(f"row {i}: no birth date in {id_column}") from e
        rows[i][check.columns[0]] = cells.date_text(born + dt.timedelta(days=1))
        return {i}


@register
class KnownWarningKey(_ColumnRule):
    name = "known_warning_key"

    def expected(self, contract, column, a, ctx):
        return "a warning key routed to this department"

    def failure(self, check, contract, ctx):
        v = value(check.columns[0])
        return v.is_not_null() & ~v.is_in(sorted(ctx.routed_warning_keys or ()))

    def plant(self, rows, contract, check, i, quarter):
        rows[i][check.columns[0]] = "W99-not-routed"
        return {i}


# --- rules spanning the columns of a row (schema `quality[]`) ---------------------------------


@register
class SumEquals(Kind):
    name = "sum_equals"
    arises = "row_rule"

    def columns(self, contract, column, a):
        return (a["total"], *a["parts"])

    def expected(self, contract, column, a, ctx):
        return f"{a['total']} = {' + '.join(a['parts'])} within {a['tolerance']}"

    def failure(self, check, contract, ctx):
        a = check.arguments
        v, parts = value(check.columns[0]), [value(p) for p in a["parts"]]
        tolerance = round(float(a["tolerance"]) * 100)
        e = (v - pl.sum_horizontal(parts)).abs() > tolerance
        return e & pl.all_horizontal([x.is_not_null() for x in (v, *parts)])

    def expectation(self, check, contract, *, settled):
        return None

    def plant(self, rows, contract, check, i, quarter):
        col = check.columns[0]
        try:
            rows[i][col] = cells.money(cells.cents_of(rows[i][col]) + 100)
        except (ArithmeticError, ValueError) as e:
            raise CannotPlant(f"row {i}: {col} holds no amount") from e
        return {i}


class _ComparesRows(Kind):
    """A check that compares rows: settled over the whole extract by `settle` (its result in
    `CheckContext.settled` under the check's reason), it is then a per-row membership test that
    gives the same answer in any batch."""

    compares_rows = True

    @abc.abstractmethod
    def settle(self, frame: pl.LazyFrame, check: Check, contract: Contract, ctx: CheckContext):
        """(what the rows compared found, rows seen or None) over the whole `frame`."""


@register
class GroupAgreement(_ComparesRows):
    name = "group_agreement"
    arises = "row_rule"

    def columns(self, contract, column, a):
        return (a["group"], *a["columns"])

    def expected(self, contract, column, a, ctx):
        return f"all rows of one {a['group']} agree on {', '.join(a['columns'])}"

    def failure(self, check, contract, ctx):
        a = check.arguments
        g = value(a["group"])
        if ctx.settled is not None and check.reason in ctx.settled:
            return g.is_in(ctx.settled[check.reason].implode())
        disagree = [
            valid_value(x, contract, ctx).drop_nulls().n_unique().over(g) > 1 for x in a["columns"]
        ]
        return g.is_not_null() & pl.any_horizontal(disagree)

    def settle(self, frame, check, contract, ctx):
        unsettled = CheckContext(ctx.quarter, ctx.routed_warning_keys)
        per_group = staged(frame, contract).with_columns(
            self.failure(check, contract, unsettled).fill_null(False).alias(check.reason)
        )
        groups = (
            per_group.filter(pl.col(check.reason))
            .select(value(check.arguments["group"]).alias("g"))
            .unique()
            .collect()["g"]
        )
        return groups, None

    def expectation(self, check, contract, *, settled):
        return None

    def plant(self, rows, contract, check, i, quarter):
        group, first = check.arguments["group"], check.arguments["columns"][0]
        members: dict[str, list[int]] = {}
        for r, row in enumerate(rows):
            members.setdefault(row[group], []).append(r)
        for r in list(range(i, len(rows))) + list(range(i)):
            case = members[rows[r][group]]
            if len(case) >= 2:
                codes = contract.column(first).codes
                current = rows[r][first].strip().upper()
                if codes:
                    rows[r][first] = next(x for x in codes if x != current)
                else:
                    rows[r][first] = next(x for x in cells.county_codes(quarter) if x != current)
                return set(case)
        raise CannotPlant("no case of two or more rows to make disagree")


@register
class DuplicateKey(_ComparesRows):
    name = DUPLICATE_KEY
    arises = "key"

    def reason(self, column, rule):
        return DUPLICATE_KEY

    def columns(self, contract, column, a):
        return contract.primary_key

    def expected(self, contract, column, a, ctx):
        return f"a unique key ({', '.join(contract.primary_key)})"

    def failure(self, check, contract, ctx):
        key = key_text(check.columns)
        if ctx.settled is not None and check.reason in ctx.settled:
            return key.is_in(ctx.settled[check.reason].implode())
        return key.is_not_null() & (pl.len().over(key) > 1)

    def settle(self, frame, check, contract, ctx):
        """Every key is hashed (8 bytes a row); only keys whose hash repeats are then compared
        exactly. The registry of 42 million people fits in a few hundred MB this way."""
        keys = check.columns
        key = key_text(keys)
        with_keys = frame.with_columns(
            [typed(contract.column(c), contract).alias(f"{c}__v") for c in keys]
        )
        hashes = with_keys.select(key.hash().alias("h"), key.is_null().alias("n")).collect(
            engine="streaming"
        )
        rows = hashes.height
        # a repeated hash, found next to its copy once sorted: 0.2 s for 10 M rows against 2 s
        # for `is_duplicated`'s hash table
        h = hashes.filter(~pl.col("n"))["h"].sort()
        candidates = h.filter(h == h.shift(1)).unique()
        del hashes, h
        duplicated = pl.Series("key", [], dtype=pl.String)
        if candidates.len():
            duplicated = (
                with_keys.select(key.alias("key"))
                .filter(pl.col("key").hash().is_in(candidates.implode()))
                .filter(pl.col("key").is_duplicated())
                .unique()
                .collect(engine="streaming")["key"]
            )
        return duplicated, rows

    def expectation(self, check, contract, *, settled):
        columns = list(dict.fromkeys(check.columns))
        if settled or not all(contract.column(c).value_type in KEY_AS_IN_GE for c in columns):
            return None
        # pandas `duplicated(keep=False)`: every copy of a duplicated key is unexpected.
        if len(columns) == 1:
            return Native("ExpectColumnValuesToBeUnique", {"column": columns[0]})
        return Native(
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": columns, "ignore_row_if": "any_value_is_missing"},
        )

    def plant(self, rows, contract, check, i, quarter):
        j = i + 1 if i + 1 < len(rows) else i - 1
        rows[j] = dict(rows[i])
        return {i, j}


# --- compiling a contract --------------------------------------------------------------------


def _kinds(arises: str, key: str | None = None) -> list[Kind]:
    return [k for k in KINDS.values() if k.arises == arises and (key is None or _key(k) == key)]


def _key(kind: Kind) -> str | None:
    return kind.value_type if kind.arises == "value_type" else kind.name


def compile_checks(contract: Contract, ctx: CheckContext) -> list[Check]:
    """Every check of a contract, in column order (required, the column's value type, its quality
    rules), then the row rules, then the key."""
    (required,) = _kinds("required")
    (key,) = _kinds("key")
    checks: list[Check] = []
    for c in contract.columns:
        if c.required:
            checks.append(required.check_for(contract, c, None, ctx))
        for kind in _kinds("value_type", c.value_type):
            if kind.applies_to(c):
                checks.append(kind.check_for(contract, c, None, ctx))
        for r in c.rules:
            checks.append(
                _rule_kind(contract, r, "column_rule", c.name).check_for(contract, c, r, ctx)
            )
    for r in contract.rules:
        checks.append(
            _rule_kind(contract, r, "row_rule", "schema").check_for(contract, None, r, ctx)
        )
    checks.append(key.check_for(contract, None, None, ctx))
    # a reason names one check: the quarantine, the accounting and the Great Expectations suite
    # count and flag rows by it
    reasons = [c.reason for c in checks]
    twice = sorted({r for r in reasons if reasons.count(r) > 1})
    if twice:
        raise ValueError(
            f"{contract.name}: more than one check gives the reason {', '.join(twice)}: give "
            "each quality rule an `id` no other check of its column has"
        )
    return checks


def _rule_kind(contract: Contract, rule: Rule, arises: str, where: str) -> Kind:
    kind = KINDS.get(rule.implementation)
    if kind is None or kind.arises != arises:
        known = sorted(k.name for k in KINDS.values() if k.arises == arises)
        raise ValueError(
            f"{contract.name}: {where}: unknown rule implementation {rule.implementation} "
            f"(known: {', '.join(known)})"
        )
    return kind


def failure(check: Check, contract: Contract, ctx: CheckContext) -> pl.Expr:
    """True where the row fails the check, as a column named by its reason; reads the columns
    `values.staged` adds."""
    return kind_of(check).failure(check, contract, ctx).fill_null(False).alias(check.reason)


def valid_value(col: str, contract: Contract, ctx: CheckContext) -> pl.Expr:
    """A column's typed value where it passes its own value checks, else null: rows compared for
    agreement are compared on values that are themselves valid (a typo is already quarantined
    on its own row and does not make the rest of its case disagree)."""
    own = [
        failure(c, contract, ctx)
        for c in compile_checks(contract, ctx)
        if c.columns == (col,) and not kind_of(c).compares_rows
    ]
    return pl.when(~pl.any_horizontal(own)).then(value(col)) if own else value(col)
