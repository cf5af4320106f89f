"""Sample extracts built from the data contracts themselves (tests and the demo).

`make_rows` gives valid rows (the text a department would send) for any contract, reading each
column's `valueType` and rules: identity numbers with the right check character, gender and
birth date agreeing with them where the contract says so, county codes in force, dates inside
the quarter or not after `E` as the rules ask, money like `1234.50`, settlements whose total is
the sum of its parts, roster cases that agree, unique keys. `plant` breaks a row in the way a
check names and says which rows must then be quarantined with which reasons. The writers put
rows on disk in every format of extracts.md §2 (CSV in UTF-8, UTF-8 with BOM or GB18030 under
Chinese headers; Parquet and XLSX with typed cells), optionally with a `manifest.json`.
Everything is seeded: the same call gives the same rows and the same bytes.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import random
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import xlsxwriter

from pipelines.core import contracts, gbt2260
from pipelines.core.cells import (
    UNKNOWN_ADDRESS,
    cents_of,
    check_character,
    county_codes,
    date_text,
    id_birth_date,
    id_is_male,
    id_number,
    money,
    parse_date,
)
from pipelines.core.contracts import Column, Contract, Rule
from pipelines.core.layout import MANIFEST, Landing
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import MONEY_STAGED, file_column
from pipelines.gate.kinds import KINDS, CannotPlant, Check, CheckContext, compile_checks, kind_of

QUARTER = Quarter(2026, 3)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国"
FIXED_TIME = dt.datetime(2026, 10, 1, 8, 0, 0)
Row = dict[str, str]


def _rule(column: Column, implementation: str) -> Rule | None:
    return next((r for r in column.rules if r.implementation == implementation), None)


def _row_rule(contract: Contract, implementation: str) -> Rule | None:
    return next((r for r in contract.rules if r.implementation == implementation), None)


def _day(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return first + dt.timedelta(days=rng.randint(0, (last - first).days))


# ------------------------------------------------------------------ rows
def warning_keys(n: int, seed: int = 0) -> list[str]:
    """Keys of warnings routed to a department, for feedback extracts."""
    digest = [hashlib.sha1(f"{seed}/{i}".encode()).hexdigest()[:12] for i in range(n)]
    return [f"W{seed:02d}-{d}" for d in digest]


@dataclass(frozen=True)
class _Case:
    number: int
    position: int
    size: int


def make_rows(
    contract: Contract,
    n: int,
    *,
    quarter: Quarter = QUARTER,
    seed: int = 0,
    keys: Sequence[str] | None = None,
    variants: bool = True,
) -> list[Row]:
    """`n` valid rows of `contract` as text, keyed by canonical column name.

    With `variants` some rows use the other spellings the spec accepts (compact dates where the
    contract allows them, lower-case codes padded with spaces, `是`/`否`/`Y`/`0` booleans, money
    without trailing zeros, address codes abolished in 2021 and Kinmen's inside identity
    numbers), so that a clean file exercises them too. Feedback rows take their warning keys
    from `keys` (default `warning_keys(n, seed)`).
    """
    rng = random.Random(f"{contract.name}/{n}/{seed}")
    counties = county_codes(quarter)
    if _has_rule(contract, "known_warning_key") and keys is None:
        keys = warning_keys(n, seed)
    cases = _cases(contract, n, rng)
    used_ids: set[str] = set()
    rows: list[Row] = []
    for i in range(n):
        row: Row = {}
        variant = variants and i % 5 == 4
        for c in contract.columns:
            if c.value_type == "id":
                row[c.name] = _new_id(rng, i, quarter, counties, used_ids, variants)
        case = cases[i] if cases else _Case(i, 0, 1)
        for c in contract.columns:
            if c.value_type not in ("id", "date"):
                row[c.name] = _value(contract, c, i, row, rng, quarter, keys, case, variant)
        for c in contract.columns:
            if c.value_type == "date":
                row[c.name] = _date(contract, c, row, rng, quarter, variant)
        rows.append({c.name: row[c.name] for c in contract.columns})
    _fix_sums(contract, rows, rng)
    return rows


def _has_rule(contract: Contract, implementation: str) -> bool:
    return any(_rule(c, implementation) for c in contract.columns) or bool(
        _row_rule(contract, implementation)
    )


def _cases(contract: Contract, n: int, rng: random.Random) -> list[_Case] | None:
    """For a contract with a `group_agreement` rule (the roster's household cases): each row's
    case. Cases of one to four members, the first one the HEAD."""
    if _row_rule(contract, "group_agreement") is None:
        return None
    out: list[_Case] = []
    number = 0
    while len(out) < n:
        size = min(rng.choice([1, 1, 2, 3, 4]), n - len(out))
        out.extend(_Case(number, pos, size) for pos in range(size))
        number += 1
    return out


def _new_id(
    rng: random.Random,
    i: int,
    quarter: Quarter,
    counties: list[str],
    used: set[str],
    variants: bool,
) -> str:
    while True:
        born = _day(rng, dt.date(1935, 1, 1), quarter.end - dt.timedelta(days=365))
        address = rng.choice(counties)
        if variants and i % 13 == 6:
            # abolished in 2021, still valid on the numbers of people registered there earlier
            address, born = "350402", _day(rng, dt.date(1940, 1, 1), dt.date(2015, 12, 31))
        elif variants and i % 17 == 8:
            address = gbt2260.KINMEN  # never a county_code, but a valid address code
        number = id_number(address, born, rng.randint(0, 999))
        if number not in used:
            used.add(number)
            return number


def _value(
    contract: Contract,
    c: Column,
    i: int,
    row: Row,
    rng: random.Random,
    quarter: Quarter,
    keys: Sequence[str] | None,
    case: _Case,
    variant: bool,
) -> str:
    vt = c.value_type
    agreement = _row_rule(contract, "group_agreement")
    shared = agreement is not None and c.name in agreement.arguments["columns"]
    # what every row of a case shares comes from the case's own random stream
    crng = random.Random(f"{contract.name}/case/{case.number}/{c.name}") if shared else rng
    if vt == "county":
        return crng.choice(county_codes(quarter))
    if vt == "code":
        codes = list(c.codes or ())
        gender = _rule(c, "agrees_with_id_gender")
        if gender is not None:
            value = "M" if id_is_male(row[gender.arguments["idColumn"]]) else "F"
        elif agreement is not None and c.name == "relation" and "HEAD" in codes:
            value = "HEAD" if case.position == 0 else crng.choice([x for x in codes if x != "HEAD"])
        else:
            value = crng.choice(codes)
        return f" {value.lower()} " if variant else value
    if vt == "bool":
        # extracts.md §3: single_person true = a case of exactly one member
        single = shared and c.name == "single_person"
        truth = case.size == 1 if single else crng.random() < 0.5
        if variant:
            return rng.choice(["是", "Y", "1", "TRUE"] if truth else ["否", "n", "0", "False"])
        return "true" if truth else "false"
    if vt == "money":
        low = 1 if _rule(c, "greater_than") else 0
        return money(rng.randint(low, 900_000), short=variant)
    if vt == "decimal":
        return f"{rng.randint(1, 30_000) / 100:.2f}"
    if vt == "int":
        between = _rule(c, "between")
        lo, hi = (between.arguments["min"], between.arguments["max"]) if between else (0, 99)
        return str(rng.randint(lo, hi))
    if vt == "month":
        if _rule(c, "inside_quarter") is not None:
            return f"{quarter.year}-{quarter.start.month + rng.randint(0, 2):02d}"
        return f"{quarter.year - 1}-{rng.randint(1, 12):02d}"
    # text
    if _rule(c, "known_warning_key") is not None:
        if keys is None or len(keys) <= i:
            raise ValueError("feedback rows need one routed warning key each")
        return keys[i]
    if agreement is not None and c.name == agreement.arguments["group"]:
        return f"C{case.number:05d}"
    if c.restricted:  # a person's name
        return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
    if c.name in contract.primary_key:
        return f"{c.name[:3].upper()}{i:07d}"
    if not c.required and rng.random() < 0.5:
        return ""
    return f"{c.name[:4].upper()}-{rng.randint(0, 99_999):05d}"


def _date(
    contract: Contract,
    c: Column,
    row: Row,
    rng: random.Random,
    quarter: Quarter,
    variant: bool,
) -> str:
    fmt = contract.date_formats[-1] if variant else "YYYY-MM-DD"
    end = quarter.end
    birth = _rule(c, "equals_id_birth_date")
    if birth is not None:
        return date_text(id_birth_date(row[birth.arguments["idColumn"]]), fmt)
    unless = _rule(c, "required_unless")
    if unless is not None:
        a = unless.arguments
        if row[a["column"]].strip().upper() in a["values"]:
            return ""
    if _rule(c, "inside_quarter") is not None:
        return date_text(_day(rng, quarter.start, end), fmt)
    after = _rule(c, "not_before_column")
    if after is not None:
        other = parse_date(row[after.arguments["column"]])
        if other is None or (not c.required and rng.random() < 0.5):
            return ""
        return date_text(min(end, other + dt.timedelta(days=rng.randint(0, 900))), fmt)
    if _rule(c, "not_after_quarter_end") is not None or unless is not None:
        return date_text(_day(rng, end - dt.timedelta(days=3650), end), fmt)
    if not c.required and rng.random() < 0.5:
        return ""
    return date_text(_day(rng, end - dt.timedelta(days=365), end + dt.timedelta(days=365)), fmt)


def _fix_sums(contract: Contract, rows: list[Row], rng: random.Random) -> None:
    """A `sum_equals` total is the sum of its parts (settlements: total_cost)."""
    rule = _row_rule(contract, "sum_equals")
    if rule is None:
        return
    a = rule.arguments
    for row in rows:
        parts = [rng.randint(0, 300_000) for _ in a["parts"]]
        for name, cents in zip(a["parts"], parts, strict=True):
            row[name] = money(cents)
        row[a["total"]] = money(sum(parts))


# ------------------------------------------------------------------ planting errors
# each check kind plants its own bad value (`gate/kinds.py`); these break one value and nothing else
SINGLE_VALUE_KINDS = tuple(name for name, kind in KINDS.items() if kind.single_value)
# the text helpers of `core.cells`, with the sample writers, for the generator and the tests
__all__ = [
    "UNKNOWN_ADDRESS",
    "CannotPlant",
    "SINGLE_VALUE_KINDS",
    "cents_of",
    "check_character",
    "county_codes",
    "date_text",
    "id_birth_date",
    "id_is_male",
    "id_number",
    "money",
    "parse_date",
    "plant",
    "plant_several",
]


def plant(
    rows: list[Row],
    contract: Contract,
    check: Check | str,
    i: int,
    *,
    quarter: Quarter = QUARTER,
) -> dict[int, set[str]]:
    """Break row `i` (0-based) so that it fails `check` (a check, or its reason such as
    `gender.disagrees_with_id`) and nothing else; returns the rows that must then be quarantined
    (0-based) with their reasons. A duplicate key copies row `i` onto a neighbour (both rows
    fail); a case disagreement changes one member of the first case of two or more rows from
    `i` on (every member fails)."""
    if isinstance(check, str):
        checks = compile_checks(contract, CheckContext(quarter))
        check = next(c for c in checks if c.reason == check)
    failing = kind_of(check).plant(rows, contract, check, i, quarter)
    return {r: {check.reason} for r in failing}


def plant_several(
    rows: list[Row], contract: Contract, checks: list[Check], i: int
) -> dict[int, set[str]]:
    """Break one value in every column of row `i` that has a single-value check (its type, codes,
    county, identity-number format; else `required`); returns {i: every reason}."""
    reasons: set[str] = set()
    for c in contract.columns:
        own = [x for x in checks if x.columns == (c.name,) and x.kind in SINGLE_VALUE_KINDS]
        value_checks = [x for x in own if x.kind != "required"]
        chosen = (value_checks or own)[:1]
        for check in chosen:
            reasons |= plant(rows, contract, check, i)[i]
    return {i: reasons}


# ------------------------------------------------------------------ typed cells
def typed_column(contract: Contract, name: str, values: list[str], *, money_as: str = "decimal"):
    """(values, polars dtype) of a column as a Parquet or Excel writer would hold them: each value
    type as its staging tables' type (`core.valuetypes.file_column`: dates as dates, money as
    Decimal(18,2), decimals as float, whole numbers as int, booleans as bool), money as float
    where `money_as` says so (Excel's numbers). A column with any value that cannot be typed
    stays text (a file holds one type per column, and a planted error must reach the gate as
    sent)."""
    cells = pl.Series(name, values, dtype=pl.String)
    held = file_column(cells, contract.column(name).value_type, contract.date_formats)
    if held is None:
        return list(values), pl.String
    if money_as == "float" and held.dtype == MONEY_STAGED:
        held = held.cast(pl.Float64)
    return held.to_list(), held.dtype


# ------------------------------------------------------------------ writers
def extract_path(
    landing: Path, contract: Contract, ext: str, *, quarter: Quarter = QUARTER, dept: str = ""
) -> Path:
    """`<landing>/<quarter>/<dept>/<extract>.<ext>` (extracts.md §1)."""
    path = Landing(landing).extract_file(
        quarter, dept or contract.department, contract.extract, ext
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def headers_for(
    contract: Contract,
    columns: Sequence[str],
    headers: str,
    rename: dict[str, str] | None = None,
) -> list[str]:
    """`canonical` names, the first Chinese `alias`, or `padded` canonical names; `rename` gives
    the header of some columns outright."""
    out = []
    for name in columns:
        col = next((c for c in contract.columns if c.name == name), None)
        if rename and name in rename:
            out.append(rename[name])
        elif col is None or headers == "canonical":
            out.append(name)
        elif headers == "alias":
            out.append(col.aliases[0] if col.aliases else name)
        elif headers == "padded":
            out.append(f"  {name} ")
        else:
            raise ValueError(headers)
    return out


def _columns(contract: Contract, rows: list[Row], drop: Sequence[str]) -> list[str]:
    names = [c.name for c in contract.columns]
    for row in rows[:1]:
        names += [k for k in row if k not in names]  # extra columns added by a test
    return [n for n in names if n not in drop]


def write_csv(
    path: Path,
    contract: Contract,
    rows: list[Row],
    *,
    encoding: str = "utf-8",
    headers: str = "canonical",
    rename: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    line_end: str = "\n",
) -> Path:
    """CSV in `utf-8`, `utf-8-sig` (with BOM) or `gb18030`."""
    columns = _columns(contract, rows, drop)
    with path.open("w", encoding=encoding, newline="") as f:
        w = csv.writer(f, lineterminator=line_end)
        w.writerow(headers_for(contract, columns, headers, rename))
        for row in rows:
            w.writerow([row.get(c, "") for c in columns])
    return path


def write_parquet(
    path: Path,
    contract: Contract,
    rows: list[Row],
    *,
    typed: bool = True,
    money_as: str = "decimal",
    headers: str = "canonical",
    rename: dict[str, str] | None = None,
    drop: Sequence[str] = (),
) -> Path:
    columns = _columns(contract, rows, drop)
    series = []
    names = headers_for(contract, columns, headers, rename)
    for name, header in zip(columns, names, strict=True):
        values = [row.get(name, "") for row in rows]
        if typed and name in {c.name for c in contract.columns}:
            vals, dtype = typed_column(contract, name, values, money_as=money_as)
        else:
            vals, dtype = values, pl.String
        series.append(pl.Series(header, vals, dtype=dtype))
    pl.DataFrame(series).write_parquet(path)
    return path


def write_xlsx(
    path: Path,
    contract: Contract,
    rows: list[Row],
    *,
    typed: bool = True,
    headers: str = "canonical",
    rename: dict[str, str] | None = None,
    drop: Sequence[str] = (),
    extra_sheets: int = 0,
) -> Path:
    """The first sheet holds the extract: dates as Excel dates, amounts and whole numbers as
    numbers, booleans as booleans, everything else (identity numbers above all) as text."""
    columns = _columns(contract, rows, drop)
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"created": FIXED_TIME})
    date_format = wb.add_format({"num_format": "yyyy-mm-dd"})
    ws = wb.add_worksheet("extract")
    for c, header in enumerate(headers_for(contract, columns, headers, rename)):
        ws.write_string(0, c, header)
    known = {c.name for c in contract.columns}
    for c, name in enumerate(columns):
        values = [row.get(name, "") for row in rows]
        if typed and name in known:
            vals, dtype = typed_column(contract, name, values, money_as="float")
        else:
            vals, dtype = values, pl.String
        for r, v in enumerate(vals, start=1):
            if v is None or v == "":
                continue
            if dtype == pl.Date:
                ws.write_datetime(r, c, dt.datetime.combine(v, dt.time()), date_format)
            elif dtype == pl.Boolean:
                ws.write_boolean(r, c, v)
            elif dtype in (pl.Float64, pl.Int64):
                ws.write_number(r, c, v)
            else:
                ws.write_string(r, c, str(v))
    for s in range(extra_sheets):  # later sheets are not the extract
        wb.add_worksheet(f"notes{s}").write_string(0, 0, "not the extract")
    wb.close()
    return path


def write_extract(
    landing: Path,
    contract: Contract,
    rows: list[Row],
    *,
    fmt: str = "csv",
    quarter: Quarter = QUARTER,
    dept: str = "",
    manifest: bool = False,
    **options,
) -> Path:
    """Write rows as `<landing>/<quarter>/<dept>/<extract>.<fmt>`; with `manifest`, list the
    file (its data rows and sha256) in the folder's `manifest.json`, keeping what it lists."""
    path = extract_path(landing, contract, fmt, quarter=quarter, dept=dept)
    writer = {"csv": write_csv, "parquet": write_parquet, "xlsx": write_xlsx}[fmt]
    writer(path, contract, rows, **options)
    if manifest:
        listed = path.parent / MANIFEST
        files = {}
        if listed.exists():
            doc = json.loads(listed.read_text(encoding="utf-8"))
            files = {name: entry["rows"] for name, entry in doc["files"].items()}
        files[path.name] = len(rows)
        write_manifest(path.parent, files, department=dept or contract.department, quarter=quarter)
    return path


def remove_folder(folder: Path) -> None:
    """A department re-sending a quarter replaces its folder as a whole."""
    if folder.exists():
        shutil.rmtree(folder)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(
    folder: Path,
    files: dict[str, int],
    *,
    department: str,
    quarter: Quarter = QUARTER,
    sha: dict[str, str] | None = None,
) -> Path:
    """`manifest.json` listing `files` (name -> data rows) with the sha256 of each file in the
    folder (or as given in `sha`, e.g. for a file that is absent)."""
    entries = {}
    for name, rows in files.items():
        p = folder / name
        digest = (sha or {}).get(name) or (sha256(p) if p.exists() else "0" * 64)
        entries[name] = {"rows": rows, "sha256": digest}
    doc = {"department": department, "quarter": str(quarter), "files": entries}
    path = folder / MANIFEST
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
    return path


def contract_named(name: str) -> Contract:
    """`mps.residents` -> its contract; `any.feedback` for feedback."""
    dept, extract = name.split(".", 1)
    return contracts.all_contracts()[(dept, extract)]
