"""Row checks compiled from a data contract.

One definition per check, used twice: the gate evaluates the Polars expressions to decide what is
quarantined, and the Great Expectations suite (`expectations.py`) is compiled from the same
`Check` objects, so the two agree row for row (tests/test_expectations.py shows it).

Evaluation runs on a frame of the received text (every column a string). For every contract
column `c` it adds `c__v`, the typed value (null when absent or not parseable), then one boolean
column per check, named by the check's reason, true where the row fails it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from pipelines import gbt2260, idnumbers
from pipelines.contracts import Column, Contract
from pipelines.quarters import Quarter

DUPLICATE_KEY = "duplicate_key"
_DATE_PATTERNS = {"YYYY-MM-DD": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", "YYYYMMDD": r"^[0-9]{8}$"}
# ASCII digits only: `\d` also matches full-width and other Unicode digits, which the casts
# below reject, so the pattern alone (GE's regex expectation) would accept what the gate does not.
MONEY_PATTERN = r"^[0-9]{1,15}(?:\.[0-9]{1,2})?$"
DECIMAL_PATTERN = r"^-?[0-9]{1,15}(?:\.[0-9]+)?$"
INT_PATTERN = r"^[-+]?[0-9]{1,18}$"
MONTH_PATTERN = r"^\d{4}-\d{2}$"
BOOL_TRUE = ("TRUE", "1", "Y", "是")
BOOL_FALSE = ("FALSE", "0", "N", "否")


@dataclass(frozen=True)
class CheckContext:
    """What a check may need besides the row: the quarter; for feedback the warning keys routed
    to the sending department (None before any warning exists: every key is unknown); and the
    two checks that compare rows, settled over the whole extract beforehand by
    `cross_row_context`, so that the rows can then be checked in a stream, batch by batch:
    the duplicated keys (as `key_text`) and the groups whose rows disagree. Without them the
    two checks compare the rows of the frame they are evaluated on."""

    quarter: Quarter
    routed_warning_keys: frozenset[str] | None = None
    duplicated_keys: pl.Series | None = field(default=None, compare=False)
    disagreeing_groups: pl.Series | None = field(default=None, compare=False)

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


def text(col: str) -> pl.Expr:
    """The received value trimmed of surrounding spaces, an empty string as null."""
    s = pl.col(col).str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


def typed(
    column: Column, contract: Contract, ctx: CheckContext, *, staged: bool = False
) -> pl.Expr:
    """The typed value of a column, null where absent or not parseable. `staged`: the frame
    already holds the identity number's check character (`<c>__check`, see `_staged`)."""
    s = text(column.name)
    vt = column.value_type
    if vt == "id":
        return idnumbers.normalise(s, pl.col(f"{column.name}__check") if staged else None)
    if vt in ("code", "county"):
        return s.str.to_uppercase()
    if vt == "date":
        # one pattern for the layouts the department may use, then one parse of the digits
        pattern = "|".join(_DATE_PATTERNS[f] for f in contract.date_formats)
        digits = s.str.replace_all("-", "", literal=True)
        value = pl.when(s.str.contains(pattern)).then(
            digits.str.strptime(pl.Date, "%Y%m%d", strict=False)
        )
        return pl.when(value.dt.year() >= 1).then(value)  # there is no year 0
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


_TYPE_WORDS = {
    "date": "a date as {formats}",
    "month": "a month as YYYY-MM",
    "money": "an amount in yuan, non-negative, at most 2 decimals",
    "decimal": "a decimal number",
    "int": "a whole number",
    "bool": "true/false, 1/0, Y/N or 是/否",
}
_ID_WORDS = {
    "format": "18 characters, 17 digits then a digit or X (or 15 digits)",
    "check_character": "the right check character (ISO 7064 MOD 11-2)",
    "birth_date": "an embedded birth date that is a real date not after the quarter end",
    "address_code": "a GB/T 2260 address code in force at some time from the birth year on",
}


def compile_checks(contract: Contract, ctx: CheckContext) -> list[Check]:
    """Every check of a contract, in column order, then row rules, then the key."""
    checks: list[Check] = []
    for c in contract.columns:
        if c.required:
            checks.append(Check(f"{c.name}.required", "required", (c.name,), "a value"))
        vt = c.value_type
        if vt == "id":
            for suffix, words in _ID_WORDS.items():
                checks.append(Check(f"{c.name}.{suffix}", f"id_{suffix}", (c.name,), words))
        elif vt == "county":
            checks.append(
                Check(
                    f"{c.name}.invalid_county",
                    "county",
                    (c.name,),
                    f"a Fujian county-level code (区/县/县级市) in force in {ctx.end.year}",
                    {"year": ctx.end.year},
                )
            )
        elif vt in _TYPE_WORDS:
            words = _TYPE_WORDS[vt].format(formats=" or ".join(contract.date_formats))
            checks.append(Check(f"{c.name}.invalid_{vt}", f"type_{vt}", (c.name,), words))
        for r in c.rules:
            checks.append(_rule_check(c, r.id, r.implementation, r.arguments, ctx))
    for r in contract.rules:
        a = r.arguments
        if r.implementation == "sum_equals":
            cols = (a["total"], *a["parts"])
            words = f"{a['total']} = {' + '.join(a['parts'])} within {a['tolerance']}"
        elif r.implementation == "group_agreement":
            cols = (a["group"], *a["columns"])
            words = f"all rows of one {a['group']} agree on {', '.join(a['columns'])}"
        else:
            raise ValueError(f"{contract.name}: unknown row rule {r.implementation}")
        checks.append(Check(r.id, r.implementation, cols, words, dict(a)))
    checks.append(
        Check(
            DUPLICATE_KEY,
            "duplicate_key",
            contract.primary_key,
            f"a unique key ({', '.join(contract.primary_key)})",
        )
    )
    return checks


def _rule_check(c: Column, reason: str, impl: str, a: dict, ctx: CheckContext) -> Check:
    words = {
        "codes": lambda: "one of " + " ".join(a.get("validValues", [])),
        "not_after_quarter_end": lambda: f"not after the quarter end {ctx.end}",
        "inside_quarter": lambda: f"inside {ctx.quarter} ({ctx.quarter.start} – {ctx.end})",
        "greater_than": lambda: f"greater than {a.get('value')}",
        "between": lambda: f"between {a.get('min')} and {a.get('max')}",
        "not_before_column": lambda: f"not before {a.get('column')}",
        "required_unless": lambda: (
            f"a value unless {a.get('column')} is " + "/".join(a.get("values", []))
        ),
        "agrees_with_id_gender": lambda: "the gender of the identity number (odd digit = M)",
        "equals_id_birth_date": lambda: "the birth date inside the identity number",
        "known_warning_key": lambda: "a warning key routed to this department",
    }
    if impl not in words:
        raise ValueError(f"column {c.name}: unknown rule implementation {impl}")
    cols = (c.name,) + tuple(v for k, v in a.items() if k in ("column", "idColumn"))
    return Check(reason, impl, cols, words[impl](), dict(a))


def _v(col: str) -> pl.Expr:
    return pl.col(f"{col}__v")


def failure(check: Check, contract: Contract, ctx: CheckContext) -> pl.Expr:
    """True where the row fails the check; needs the columns `_staged` adds."""
    col = check.columns[0]
    a = check.arguments
    v = _v(col)
    present = text(col).is_not_null()
    k = check.kind
    if k == "required":
        e = ~present
    elif k.startswith("id_"):
        e = idnumbers.failures(
            v, ctx.end, check=pl.col(f"{col}__check"), born=pl.col(f"{col}__born")
        )[k[3:]]
    elif k == "county":
        e = v.is_not_null() & ~v.is_in(sorted(gbt2260.county_codes_in_force(a["year"])))
    elif k.startswith("type_"):
        e = present & v.is_null()
    elif k == "codes":
        e = v.is_not_null() & ~v.is_in(list(a["validValues"]))
    elif k == "not_after_quarter_end":
        e = v > pl.lit(ctx.end)
    elif k == "inside_quarter":
        e = (v < pl.lit(ctx.quarter.start)) | (v > pl.lit(ctx.end))
    elif k == "greater_than":
        limit = a["value"] * 100 if contract.column(col).value_type == "money" else a["value"]
        e = v <= limit
    elif k == "between":
        e = (v < a["min"]) | (v > a["max"])
    elif k == "not_before_column":
        e = v < _v(a["column"])
    elif k == "required_unless":
        other = _v(a["column"])
        codes = contract.column(a["column"]).codes or ()
        others = [x for x in codes if x not in a["values"]]
        e = ~present & other.is_in(others)
    elif k == "agrees_with_id_gender":
        idv = _v(a["idColumn"])
        male = idnumbers.sequence_is_male(idv)
        e = idnumbers.is_well_formed(idv) & v.is_in(["M", "F"]) & ((v == "M") != male)
    elif k == "equals_id_birth_date":
        idv = _v(a["idColumn"])
        e = idnumbers.is_well_formed(idv) & (v != pl.col(f"{a['idColumn']}__born"))
    elif k == "known_warning_key":
        known = sorted(ctx.routed_warning_keys or ())
        e = v.is_not_null() & ~v.is_in(known)
    elif k == "sum_equals":
        parts = [_v(p) for p in a["parts"]]
        tolerance = round(float(a["tolerance"]) * 100)
        e = (v - pl.sum_horizontal(parts)).abs() > tolerance
        e = e & pl.all_horizontal([x.is_not_null() for x in (v, *parts)])
    elif k == "group_agreement":
        g = _v(a["group"])
        if ctx.disagreeing_groups is not None:
            e = g.is_in(ctx.disagreeing_groups.implode())
        else:
            disagree = [
                _valid_value(x, contract, ctx).drop_nulls().n_unique().over(g) > 1
                for x in a["columns"]
            ]
            e = g.is_not_null() & pl.any_horizontal(disagree)
    elif k == "duplicate_key":
        key = key_text(check.columns)
        if ctx.duplicated_keys is not None:
            e = key.is_in(ctx.duplicated_keys.implode())
        else:
            e = key.is_not_null() & (pl.len().over(key) > 1)
    else:  # pragma: no cover - compile_checks only makes the kinds above
        raise ValueError(k)
    return e.fill_null(False).alias(check.reason)


def key_text(columns: tuple[str, ...]) -> pl.Expr:
    """A row's key as one text (typed values joined by U+001F); null when any part is null."""
    return pl.concat_str([_v(c).cast(pl.String) for c in columns], separator="\x1f")


def _group_check(contract: Contract, ctx: CheckContext) -> Check | None:
    return next((c for c in compile_checks(contract, ctx) if c.kind == "group_agreement"), None)


def cross_row_context(
    frame: pl.LazyFrame, contract: Contract, ctx: CheckContext
) -> tuple[CheckContext, int]:
    """Settle the checks that compare rows over the whole extract, in streaming passes, and
    return the context carrying them, with the number of rows seen.

    Duplicates: every key is hashed (8 bytes a row); only keys whose hash repeats are then
    compared exactly. The registry of 42 million people fits in a few hundred MB this way.
    """
    present = set(frame.collect_schema().names())
    keys = contract.primary_key
    key = key_text(keys)
    with_keys = frame.with_columns(
        [typed(contract.column(c), contract, ctx).alias(f"{c}__v") for c in keys if c in present]
    )
    duplicated = pl.Series("key", [], dtype=pl.String)
    rows = 0
    if set(keys) <= present:
        hashes = with_keys.select(key.hash().alias("h"), key.is_null().alias("n")).collect(
            engine="streaming"
        )
        rows = hashes.height
        h = hashes.filter(~pl.col("n"))["h"]
        candidates = h.filter(h.is_duplicated()).unique()
        del hashes, h
        if candidates.len():
            duplicated = (
                with_keys.select(key.alias("key"))
                .filter(pl.col("key").hash().is_in(candidates.implode()))
                .filter(pl.col("key").is_duplicated())
                .unique()
                .collect(engine="streaming")["key"]
            )
    else:
        rows = frame.select(pl.len()).collect(engine="streaming").item()
    groups = None
    group = _group_check(contract, ctx)
    if group is not None and set(group.columns) <= present:
        per_group = (
            _staged(frame, contract, ctx)
            .with_columns(failure(group, contract, ctx))
            .filter(pl.col(group.reason))
        )
        groups = per_group.select(_v(group.arguments["group"]).alias("g")).unique().collect()["g"]
    return (
        CheckContext(
            ctx.quarter,
            ctx.routed_warning_keys,
            duplicated_keys=duplicated,
            disagreeing_groups=groups,
        ),
        rows,
    )


def _valid_value(col: str, contract: Contract, ctx: CheckContext) -> pl.Expr:
    """A column's typed value where it passes its own value checks, else null: rows compared for
    agreement are compared on values that are themselves valid (a typo is already quarantined
    on its own row and does not make the rest of its case disagree)."""
    own = [failure(c, contract, ctx) for c in _own_checks(contract, ctx, col)]
    return pl.when(~pl.any_horizontal(own)).then(_v(col)) if own else _v(col)


def _own_checks(contract: Contract, ctx: CheckContext, col: str) -> list[Check]:
    return [
        c
        for c in compile_checks(contract, ctx)
        if c.columns == (col,) and c.kind not in ("duplicate_key",)
    ]


def _staged(frame: pl.LazyFrame, contract: Contract, ctx: CheckContext) -> pl.LazyFrame:
    """The typed columns in stages, so that what several checks share is computed once (the
    streaming engine does not eliminate common sub-expressions): the identity number's check
    character (`<c>__check`), then every `<c>__v`, then the embedded birth date (`<c>__born`)."""
    present = set(frame.collect_schema().names())
    ids = [c.name for c in contract.columns if c.value_type == "id" and c.name in present]
    frame = frame.with_columns(
        idnumbers.check_character(idnumbers.body17(text(c))).alias(f"{c}__check") for c in ids
    )
    frame = frame.with_columns(
        typed(c, contract, ctx, staged=True).alias(f"{c.name}__v")
        if c.name in present
        else pl.lit(None, dtype=pl.String).alias(f"{c.name}__v")
        for c in contract.columns
    )
    return frame.with_columns(idnumbers.birth_date(_v(c)).alias(f"{c}__born") for c in ids)


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
    return _staged(lf, contract, ctx).with_columns([failure(c, contract, ctx) for c in checks])
