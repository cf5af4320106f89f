"""The contract gate for one extract of one quarter.

read (ingest.py) → check every row (checks.py) → decide file-level failure → write the accepted
rows as a typed staging table and the rejected rows as quarantine Parquet → account for every
row: received = accepted + quarantined, always (extracts.md §2).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import polars as pl

from pipelines import idnumbers, ingest, parameters
from pipelines.checks import Check, CheckContext, compile_checks, evaluate
from pipelines.contracts import Contract
from pipelines.ingest import ROW_NUMBER, FileProblem
from pipelines.quarters import Quarter

PASSED, FAILED, MISSING = "PASSED", "FAILED", "MISSING"
EXAMPLES_PER_REASON = 3
SOURCE_FILE = "source_file"


@dataclass
class ExtractResult:
    """One row of `extract_quality` plus what the quality reports need."""

    quarter: str
    department: str
    extract: str
    file_name: str | None
    file_format: str | None
    encoding: str | None
    sha256: str | None
    rows_received: int
    rows_accepted: int
    rows_quarantined: int
    status: str
    failure_reasons: list[str]
    contract_version: str
    extra_columns: list[str] = field(default_factory=list)
    reason_rows: dict[str, int] = field(default_factory=dict)  # reason -> rows carrying it
    reason_examples: dict[str, list[str]] = field(default_factory=dict)  # masked
    staging_path: str | None = None
    quarantine_path: str | None = None

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


@dataclass
class Checked:
    """An extract after the gate: the result, and (for the GE validation) the checked frame."""

    result: ExtractResult
    checks: list[Check]
    ctx: CheckContext
    frame: pl.DataFrame | None  # text columns, `__v` typed columns and one flag per check


def paths(out: Path, quarter: str, department: str, extract: str) -> tuple[Path, Path]:
    base = out / quarter
    return (
        base / "staging" / department / f"{extract}.parquet",
        base / "quarantine" / department / f"{extract}.parquet",
    )


def run_extract(
    contract: Contract,
    landing: Path,
    out: Path,
    quarter: Quarter,
    *,
    department: str | None = None,
    previous_accepted: int | None = None,
    routed_warning_keys: frozenset[str] | None = None,
    keep_frame: bool = False,
) -> Checked:
    """Gate one extract. Never raises for anything wrong with the input: a broken file fails
    its extract, with messages naming file, column or figure, and what was expected."""
    dept = department or contract.department
    q = str(quarter)
    folder = landing / q / dept
    ctx = CheckContext(quarter, routed_warning_keys)
    checks = compile_checks(contract, ctx)
    staging_path, quarantine_path = paths(out, q, dept, contract.extract)
    for p in (staging_path, quarantine_path):
        p.unlink(missing_ok=True)  # a re-run rewrites the extract's outputs as a whole

    files = ingest.find_files(folder, contract.extract)
    manifest = ingest.read_manifest(folder, dept, q)
    problems, absent = ingest.manifest_problems(manifest, dept, contract.extract, files)
    result = ExtractResult(
        quarter=q,
        department=dept,
        extract=contract.extract,
        file_name=", ".join(p.name for p in files) or (", ".join(absent) or None),
        file_format=", ".join(ingest.FORMATS[p.suffix.lower()] for p in files) or None,
        encoding=None,
        sha256=None,
        rows_received=0,
        rows_accepted=0,
        rows_quarantined=0,
        status=MISSING,
        failure_reasons=[],
        contract_version=contract.version,
    )
    if not files:
        if problems:
            _fail(result, problems)
        return Checked(result, checks, ctx, None)
    if len(files) > 1:
        problems.append(
            FileProblem(
                "file.two_files",
                f"{dept}/{contract.extract}: {len(files)} files ({result.file_name}); "
                "expected exactly one file per extract",
            )
        )

    reads = [ingest.read_file(p, contract, dept) for p in files]
    for r in reads:
        ingest.check_against_manifest(r, manifest, dept)
        problems.extend(r.problems)
        result.extra_columns.extend(c for c in r.extra_columns if c not in result.extra_columns)
    result.encoding = ", ".join(r.encoding for r in reads if r.encoding) or None
    result.sha256 = ", ".join(r.sha256 for r in reads if r.sha256) or None

    frames = []
    for r in reads:
        if r.frame is None:
            continue
        f = r.frame
        if len(reads) > 1:
            f = f.with_columns(pl.lit(r.path.name).alias(SOURCE_FILE))
        frames.append(f)
    if not frames:
        _fail(result, problems)
        return Checked(result, checks, ctx, None)
    raw = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
    received = raw.height
    result.rows_received = received
    if received == 0:
        problems.append(FileProblem("file.zero_rows", f"{dept}/{result.file_name}: no data rows"))

    flags = [c.reason for c in checks if set(c.columns) <= set(raw.columns)]
    checked = evaluate(raw, contract, ctx, checks).with_columns(
        pl.any_horizontal([pl.col(f) for f in flags] or [pl.lit(False)]).alias("__bad")
    )
    checked = checked.collect()
    bad = int(checked["__bad"].sum())

    if received and not problems:
        problems.extend(
            _share_and_snapshot(contract, quarter, dept, result, bad, previous_accepted)
        )

    file_reasons = sorted({p.reason for p in problems})
    quarantined = checked if problems else checked.filter(pl.col("__bad"))
    staged = [f"{c.name}__v" for c in contract.columns] + [ROW_NUMBER]
    # select before filter: only the typed columns of the accepted rows are copied
    accepted_frame = None if problems else checked.select(*staged, "__bad").filter(~pl.col("__bad"))
    reasons = pl.concat_list(
        [pl.when(pl.col(f)).then(pl.lit(f)) for f in flags] or [pl.lit(None, dtype=pl.String)]
    ).list.drop_nulls()
    if file_reasons:
        reasons = pl.concat_list([reasons, pl.lit(file_reasons, dtype=pl.List(pl.String))])
    quarantined = quarantined.with_columns(reasons.alias("reasons"))

    result.rows_quarantined = quarantined.height
    result.rows_accepted = 0 if accepted_frame is None else accepted_frame.height
    result.status = FAILED if problems else PASSED
    result.failure_reasons = [p.message for p in problems]
    _count_reasons(result, quarantined, contract)

    if quarantined.height:
        _write(
            _as_received(quarantined, reads, contract),
            quarantine_path,
        )
        result.quarantine_path = str(quarantine_path)
    if accepted_frame is not None:
        _write(staging_frame(accepted_frame, contract), staging_path)
        result.staging_path = str(staging_path)
    assert result.rows_received == result.rows_accepted + result.rows_quarantined
    return Checked(result, checks, ctx, checked if keep_frame else None)


def _share_and_snapshot(
    contract: Contract,
    quarter: Quarter,
    dept: str,
    result: ExtractResult,
    bad: int,
    previous_accepted: int | None,
) -> list[FileProblem]:
    """The two file-level checks that weigh the rows of an otherwise sound file."""
    where = f"{dept}/{result.file_name}"
    received = result.rows_received
    try:
        limit = parameters.value("max_quarantine_share", quarter.end)
        ratio = parameters.value("min_snapshot_ratio", quarter.end)
    except parameters.ParameterMissing as e:
        # without its limits the gate cannot judge the file (policy.md §3: a quarter for which a
        # parameter has no value in effect cannot be evaluated)
        return [FileProblem("file.parameter_missing", f"{where}: {e}")]
    problems = []
    share = bad / received
    if share > limit:
        problems.append(
            FileProblem(
                "file.quarantine_share",
                f"{where}: {bad:,} of {received:,} rows quarantined ({share:.1%}); "
                f"at most {limit:.0%} allowed (max_quarantine_share)",
            )
        )
    accepted = received - bad
    if contract.is_snapshot and previous_accepted and accepted < ratio * previous_accepted:
        problems.append(
            FileProblem(
                "file.snapshot_drop",
                f"{where}: {accepted:,} rows accepted, fewer than {ratio:.0%} of last "
                f"quarter's {previous_accepted:,} (min_snapshot_ratio)",
            )
        )
    return problems


def _fail(result: ExtractResult, problems: list[FileProblem]) -> None:
    result.status = FAILED
    result.failure_reasons = [p.message for p in problems]
    for p in problems:
        result.reason_rows.setdefault(p.reason, 0)


def _count_reasons(result: ExtractResult, quarantined: pl.DataFrame, contract: Contract) -> None:
    counted = quarantined.select(pl.col("reasons").explode().drop_nulls().value_counts())
    counts = {
        row["reasons"]: row["count"] for row in counted.unnest("reasons").iter_rows(named=True)
    }
    result.reason_rows.update(counts)
    if not counts:
        return
    sample = (
        quarantined.select(ROW_NUMBER, "reasons", *_example_columns(contract, quarantined))
        .explode("reasons")
        .group_by("reasons", maintain_order=True)
        .head(EXAMPLES_PER_REASON)
    )
    for row in sample.iter_rows(named=True):
        reason = row["reasons"]
        result.reason_examples.setdefault(reason, []).append(_example(row, reason, contract))


def _example_columns(contract: Contract, frame: pl.DataFrame) -> list[str]:
    return [c.name for c in contract.columns if c.name in frame.columns]


def _example(row: dict, reason: str, contract: Contract) -> str:
    """`row 17 (350102********1234): gender='Q'` — identity numbers masked, names never shown."""
    ident = ""
    key = contract.primary_key[0]
    if key in row and row[key] is not None:
        col = contract.column(key)
        ident = f" ({idnumbers.mask(row[key]) if col.restricted else row[key]})"
    text = f"row {row[ROW_NUMBER]}{ident}"
    column = reason.split(".", 1)[0]
    if column in row and "." in reason:
        col = contract.column(column)
        value = row[column]
        if col.value_type == "id":
            value = idnumbers.mask(value)
        elif col.restricted:
            value = "(withheld)"
        text += f": {column}={value!r}"
    return text


def _as_received(frame: pl.DataFrame, reads: list[ingest.ReadFile], contract: Contract):
    """The rejected rows exactly as received (all columns as text, received headers), plus
    `row_number` and `reasons` (outputs.md §3)."""
    headers: dict[str, str] = {}
    for r in reads:
        for name, raw in r.received_headers.items():
            headers.setdefault(name, raw)
    keep = [c for c in headers if c in frame.columns]
    out_names: dict[str, str] = {}
    used = {ROW_NUMBER, "reasons", SOURCE_FILE}
    for c in keep:
        name = headers[c]
        while name in used:
            name += "_"
        used.add(name)
        out_names[c] = name
    cols = [pl.col(c).alias(out_names[c]) for c in keep]
    extra = [SOURCE_FILE] if SOURCE_FILE in frame.columns else []
    return frame.select(*extra, *cols, ROW_NUMBER, "reasons")


def staging_frame(accepted: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Accepted rows, typed: identity numbers normalised to 18 characters, codes upper-cased,
    dates as dates, money as DECIMAL(18,2), plus the row's `row_number` in its file."""
    cols = []
    for c in contract.columns:
        v = pl.col(f"{c.name}__v")
        if c.value_type == "money":
            text = (
                (v // 100).cast(pl.String) + "." + (v % 100).cast(pl.String).str.pad_start(2, "0")
            )
            v = text.str.to_decimal(scale=2).cast(pl.Decimal(18, 2))
        cols.append(v.alias(c.name))
    return accepted.select(*cols, ROW_NUMBER)


def _write(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    frame.write_parquet(tmp, compression="zstd", statistics=True)
    os.replace(tmp, path)


def clear_quarter(out: Path, quarter: str) -> None:
    """Forget a quarter's gate outputs before it is run again as a whole."""
    for sub in ("staging", "quarantine"):
        shutil.rmtree(out / quarter / sub, ignore_errors=True)
