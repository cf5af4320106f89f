"""The gate's accounting for auditors: `extract_quality` and `quarantine_reasons` (outputs.md §2).

Each extract asset leaves its result as a small JSON file (`<out>/<quarter>/gate/<dept>.<extract>
.json`), so one extract can be re-run alone and the quarter's tables rebuilt from all of them; the
policy stage reads which extracts passed from these files. Nothing here holds a full identity
number or a name: examples are masked by the gate.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from pipelines.core.departments import CORE_EXTRACTS
from pipelines.core.layout import Outputs, aside

PASSED, FAILED, MISSING = "PASSED", "FAILED", "MISSING"


@dataclass
class ExtractResult:
    """One row of `extract_quality` plus what the quality reports need."""

    quarter: str
    department: str
    extract: str
    contract_version: str
    status: str = MISSING
    file_name: str | None = None
    file_format: str | None = None
    encoding: str | None = None
    sha256: str | None = None
    rows_received: int = 0
    rows_accepted: int = 0
    rows_quarantined: int = 0
    failure_reasons: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    reason_rows: dict[str, int] = field(default_factory=dict)  # reason -> rows carrying it
    reason_examples: dict[str, list[str]] = field(default_factory=dict)  # masked
    # where the gate wrote the tables, relative to <out> (`Outputs.written`), for a reader of
    # the file; the stages find them through `staged` and `quarantined`
    staging_path: str | None = None
    quarantine_path: str | None = None

    def staged(self, out: Path) -> Path | None:
        """The accepted rows' table in the output folder `out` (None: no row was accepted),
        where the layout puts it: also when an earlier safetynet recorded the whole path of the
        folder this one was copied from."""
        if not self.staging_path:
            return None
        return Outputs(out).quarter(self.quarter).staging(self.department, self.extract)

    def quarantined(self, out: Path) -> Path | None:
        """The quarantined rows' table in the output folder `out` (None: none quarantined)."""
        if not self.quarantine_path:
            return None
        return Outputs(out).quarter(self.quarter).quarantine(self.department, self.extract)

    def quality_row(self) -> dict:
        row = asdict(self)
        for k in ("reason_rows", "reason_examples", "staging_path", "quarantine_path"):
            row.pop(k)
        row["failure_reasons"] = "; ".join(self.failure_reasons)
        row["extra_columns"] = ", ".join(self.extra_columns)
        return row

    def reason_table(self) -> list[dict]:
        return [
            {
                "quarter": self.quarter,
                "department": self.department,
                "extract": self.extract,
                "reason": reason,
                "rows": rows,
                "examples": " | ".join(self.reason_examples.get(reason, [])),
            }
            for reason, rows in sorted(self.reason_rows.items())
        ]


QUALITY_COLUMNS = {
    "quarter": pl.String,
    "department": pl.String,
    "extract": pl.String,
    "file_name": pl.String,
    "file_format": pl.String,
    "encoding": pl.String,
    "sha256": pl.String,
    "rows_received": pl.Int64,
    "rows_accepted": pl.Int64,
    "rows_quarantined": pl.Int64,
    "status": pl.String,
    "failure_reasons": pl.String,
    "contract_version": pl.String,
    "extra_columns": pl.String,
}
REASON_COLUMNS = {
    "quarter": pl.String,
    "department": pl.String,
    "extract": pl.String,
    "reason": pl.String,
    "rows": pl.Int64,
    "examples": pl.String,
}


def result_path(out: Path, quarter: str, department: str, extract: str) -> Path:
    return Outputs(out).quarter(quarter).gate_result(department, extract)


def save_result(out: Path, result: ExtractResult) -> Path:
    path = result_path(out, result.quarter, result.department, result.extract)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = aside(path)
    tmp.write_text(json.dumps(asdict(result), ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_results(out: Path, quarter: str) -> list[ExtractResult]:
    return [
        ExtractResult(**json.loads(p.read_text(encoding="utf-8")))
        for p in Outputs(out).quarter(quarter).gate_result_files()
    ]


def quality_table(results: list[ExtractResult]) -> pl.DataFrame:
    """One row per extract per quarter, sorted by department and extract."""
    rows = [r.quality_row() for r in results]
    return pl.DataFrame(rows, schema=QUALITY_COLUMNS).sort("department", "extract")


def reasons_table(results: list[ExtractResult]) -> pl.DataFrame:
    rows = [row for r in results for row in r.reason_table()]
    return pl.DataFrame(rows, schema=REASON_COLUMNS).sort("department", "extract", "reason")


def write_tables(out: Path, quarter: str, results: list[ExtractResult]) -> dict[str, Path]:
    tables = Outputs(out).quarter(quarter)
    tables.tables.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, frame in (
        ("extract_quality", quality_table(results)),
        ("quarantine_reasons", reasons_table(results)),
    ):
        path = tables.table(name)
        tmp = aside(path)
        frame.write_parquet(tmp)
        os.replace(tmp, path)
        written[name] = path
    return written


def previous_accepted(out: Path, quarter: str, department: str, extract: str) -> int | None:
    """Rows accepted for the extract in the given (previous) quarter, if it was processed."""
    path = result_path(out, quarter, department, extract)
    if not path.is_file():
        return None
    return int(json.loads(path.read_text(encoding="utf-8"))["rows_accepted"])


def core_failures(results: list[ExtractResult]) -> list[str]:
    """The extracts every rule reads (policy.md §4): if one failed, no rule can be evaluated and
    the quarter could not be processed at all."""
    status = {(r.department, r.extract): r.status for r in results}
    return [f"{d}/{e}" for d, e in CORE_EXTRACTS if status.get((d, e)) != "PASSED"]


def reconciliation_text(results: list[ExtractResult]) -> str:
    """A plain-text reconciliation table: received = accepted + quarantined for every extract."""
    header = f"{'extract':<40} {'status':<8} {'received':>10} {'accepted':>10} {'quarantined':>11}"
    lines = [header, "-" * len(header)]
    for r in sorted(results, key=lambda r: (r.department, r.extract)):
        lines.append(
            f"{r.department + '/' + r.extract:<40} {r.status:<8} {r.rows_received:>10,} "
            f"{r.rows_accepted:>10,} {r.rows_quarantined:>11,}"
        )
    total = [
        sum(getattr(r, k) for r in results)
        for k in ("rows_received", "rows_accepted", "rows_quarantined")
    ]
    lines.append("-" * len(header))
    lines.append(f"{'total':<40} {'':<8} {total[0]:>10,} {total[1]:>10,} {total[2]:>11,}")
    for r in results:
        for message in r.failure_reasons:
            lines.append(f"  {r.status} {r.department}/{r.extract}: {message}")
    return "\n".join(lines)
