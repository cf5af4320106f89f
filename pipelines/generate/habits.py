"""Departments' habits (extracts.md §2): formats, encodings, headers, manifests, bad rows.

| dept | habit |
| --- | --- |
| mps | CSV in GB18030 under Chinese headers (the first alias) |
| mca | CSV in UTF-8 with a BOM |
| nhsa | settlements as Parquet with typed cells; enrollments CSV; a `manifest.json` |
| cdpf | XLSX with typed cells at `test`/`county` scale; CSV beyond (see below) |
| hrss | CSV in UTF-8 with a `manifest.json` |
| the rest | CSV in UTF-8, canonical headers |

An XLSX sheet holds at most 1,048,576 rows and the cell-by-cell writer is slow, so cdpf sends CSV
at `city` and `province` scale (and any extract over the limit would fall back to CSV).

Bad rows: ≈ 0.1 % of the rows of every extract of 100 rows or more (at least one) are broken by
`samples.plant`, each in one way whose quarantine reason is known: a wrong check character, an
unknown code, an amount with three decimals, an impossible date, a duplicated key. Only columns
that no other check reads are broken, so each planted row fails exactly the planted reason (a
duplicate quarantines both copies). The roster's cases are left whole (no duplicate, no broken
shared column), so no case disagreement arises by accident.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from pipelines.core.contracts import Contract
from pipelines.core.quarters import Quarter
from pipelines.gate.checks import CheckContext, compile_checks
from pipelines.generate import samples

# beside the department folders: the rows each extract had broken, by reason (`samples.plant`)
PLANTED_ERRORS = "_planted_errors.json"

BAD_SHARE = 0.001
MIN_ROWS_FOR_BAD = 100
XLSX_MAX_ROWS = 1_048_575  # data rows under one header row
PLANTABLE = ("id_check_character", "codes", "type_money", "type_date", "duplicate_key")


def file_format(dept: str, extract: str, scale: str) -> str:
    if dept == "nhsa" and extract == "settlements":
        return "parquet"
    if dept == "cdpf" and scale in ("test", "county"):
        return "xlsx"
    return "csv"


def write_options(dept: str, fmt: str) -> dict:
    if fmt != "csv":
        return {}
    if dept == "mps":
        return {"encoding": "gb18030", "headers": "alias"}
    if dept == "mca":
        return {"encoding": "utf-8-sig"}
    return {}


def with_manifest(dept: str) -> bool:
    return dept in ("nhsa", "hrss")


def _plantable(contract: Contract, quarter: Quarter):
    """Checks a bad row can be planted for without tripping another check."""
    checks = compile_checks(contract, CheckContext(quarter))
    shared: set[str] = set()
    for c in checks:
        if len(c.columns) > 1 and c.kind != "duplicate_key":
            shared.update(c.columns)
    roster = any(c.kind == "group_agreement" for c in checks)
    out = []
    for c in checks:
        if c.kind not in PLANTABLE:
            continue
        if c.kind == "duplicate_key":
            if not roster:
                out.append(c)
        elif c.kind.startswith("id_") or c.columns[0] not in shared:
            if c.kind.startswith("id_") and c != next(x for x in checks if x.kind == c.kind):
                continue  # one identity column is enough
            out.append(c)
    return out


def plant_bad_rows(
    rows: list[dict],
    contract: Contract,
    quarter: Quarter,
    rng: np.random.Generator,
    protected: frozenset[str] = frozenset(),
) -> Counter:
    """Break ≈ 0.1 % of `rows` in place, never a row of a `protected` identity number (the
    subjects of planted rule cases); returns quarantined rows per reason."""
    n = len(rows)
    expected: Counter = Counter()
    if n < MIN_ROWS_FOR_BAD:
        return expected
    candidates = _plantable(contract, quarter)
    k = max(1, round(n * BAD_SHARE))
    # even rows only: a duplicate copies row i onto row i+1, which stays unplanted
    free = [
        i
        for i in range(0, n - 1, 2)
        if rows[i].get("id_number") not in protected
        and rows[i + 1].get("id_number") not in protected
    ]
    at = np.sort(rng.choice(np.array(free), size=k, replace=False))
    kinds = rng.integers(0, len(candidates), k)
    for i, kind in zip(at.tolist(), kinds.tolist(), strict=True):
        failing = samples.plant(rows, contract, candidates[kind], i, quarter=quarter)
        for reasons in failing.values():
            expected.update(reasons)
    return expected


def write(
    landing: Path,
    contract: Contract,
    frame: pl.DataFrame,
    quarter: Quarter,
    scale: str,
    rng: np.random.Generator,
    protected: frozenset[str] = frozenset(),
) -> tuple[Path, Counter]:
    """Plant bad rows and write the extract in its department's habit; returns the path and
    the quarantined rows per reason that the planting must produce."""
    dept = contract.department
    fmt = file_format(dept, contract.extract, scale)
    if fmt == "xlsx" and frame.height > XLSX_MAX_ROWS:
        fmt = "csv"
    rows = frame.to_dicts()
    expected = plant_bad_rows(rows, contract, quarter, rng, protected)
    path = samples.write_extract(
        landing,
        contract,
        rows,
        fmt=fmt,
        quarter=quarter,
        manifest=with_manifest(dept),
        **write_options(dept, fmt),
    )
    return path, expected
