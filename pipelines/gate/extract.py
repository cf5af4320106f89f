"""The contract gate for one extract of one quarter.

read (`reader.py`, each file against the manifest: `manifest.py`) → check every row
(`checks.py`) → decide file-level failure → write the accepted rows as a typed staging table and
the rejected rows as quarantine Parquet → account for every row: received = accepted +
quarantined, always (extracts.md §2).
"""

from __future__ import annotations

import os
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from pipelines.core import idnumbers, parameters
from pipelines.core.contracts import Contract, as_sent_by
from pipelines.core.faults import crash_point
from pipelines.core.layout import EXTRACT_FORMATS, Landing, Outputs, aside
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import VALUE_TYPES
from pipelines.gate import reader as ingest
from pipelines.gate.accounting import FAILED, MISSING, PASSED, ExtractResult
from pipelines.gate.checks import (
    Check,
    CheckContext,
    Prepared,
    compile_checks,
    cross_row_context,
    evaluate,
    ge_columns,
)
from pipelines.gate.manifest import check_against_manifest, manifest_problems, read_manifest
from pipelines.gate.reader import ROW_NUMBER, FileProblem

# the statuses and the accounting row are the accounting's; the gate's callers find them here too
__all__ = [
    "FAILED",
    "MISSING",
    "PASSED",
    "AccountingError",
    "Checked",
    "ExtractResult",
    "run_extract",
]
EXAMPLES_PER_REASON = 3
SOURCE_FILE = "source_file"


@dataclass
class Checked:
    """An extract after the gate: the result and, for the Great Expectations validation, the
    checked rows as a lazy frame (text columns, `__v` typed columns, one flag per check,
    `row_number`) with the context that settled the row-comparing checks, and the rows as GE
    validates them when pass 2 wrote them (`prepared`). `close()` (or garbage collection)
    removes the temporary UTF-8 copy of a GB18030 file the frame reads and the prepared rows."""

    result: ExtractResult
    checks: list[Check]
    ctx: CheckContext
    source: pl.LazyFrame | None
    reads: list[ingest.ReadFile] = field(default_factory=list, repr=False)
    # the rows as GE validates them, with the gate's flags, when the gate's second pass wrote
    # them (`checks.Prepared`; the file at `prepared_path`, removed by `close()`)
    prepared: Prepared | None = None
    prepared_path: Path | None = None

    def __post_init__(self) -> None:
        self._files: list[Path] = []  # removed with the reads' temporary copies
        weakref.finalize(self, _close_all, self.reads, self._files)

    def for_validation(self) -> Prepared | pl.LazyFrame | None:
        """What Great Expectations validates: the prepared rows if the gate wrote them, else
        the checked rows (`source`), read again."""
        return self.prepared if self.prepared is not None else self.source

    def close(self) -> None:
        _close_all(self.reads, self._files)
        self.prepared = self.prepared_path = None


def _close_all(reads: list[ingest.ReadFile], files: list[Path]) -> None:
    for r in reads:
        r.close()
    while files:
        files.pop().unlink(missing_ok=True)  # the folder stays: parallel steps write in it


class AccountingError(RuntimeError):
    """received ≠ accepted + quarantined: a bug in the gate, never the input's fault."""


def run_extract(
    contract: Contract,
    landing: Path,
    out: Path,
    quarter: Quarter,
    *,
    department: str | None = None,
    previous_accepted: int | None = None,
    routed_warning_keys: frozenset[str] | None = None,
) -> Checked:
    """Gate one extract. Never raises for anything wrong with the input: a broken file fails
    its extract, with messages naming file, column or figure, and what was expected.

    The file is streamed, never held whole: a first pass counts the rows and settles the
    checks that compare rows (duplicate keys, a case's agreement); a second pass checks every
    row and writes the staging and quarantine Parquet files together. Only when the weighing
    of the result fails the file (too many rows quarantined, a snapshot drop) is a third pass
    needed, to quarantine every row instead.
    """
    dept = department or contract.department
    contract = as_sent_by(contract, dept)
    q = str(quarter)
    arrived = Landing(landing)
    ctx = CheckContext(quarter, routed_warning_keys)
    checks = compile_checks(contract, ctx)
    outputs = Outputs(out).quarter(q)
    staging_path = outputs.staging(dept, contract.extract)
    quarantine_path = outputs.quarantine(dept, contract.extract)
    prepared_dir, prepared_glob = outputs.ge_inputs(dept, contract.extract)
    # a re-run rewrites the extract's outputs as a whole; prepared rows a killed run left go too
    for p in (staging_path, quarantine_path, *prepared_dir.glob(prepared_glob)):
        p.unlink(missing_ok=True)

    files = arrived.extract_files(q, dept, contract.extract)
    manifest = read_manifest(arrived.manifest(q, dept), dept, q)
    problems, absent = manifest_problems(manifest, dept, contract.extract, files)
    result = ExtractResult(
        quarter=q,
        department=dept,
        extract=contract.extract,
        contract_version=contract.version,
        file_name=", ".join(p.name for p in files) or (", ".join(absent) or None),
        file_format=", ".join(EXTRACT_FORMATS[p.suffix.lower()] for p in files) or None,
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

    reads = [ingest.read_file(p, contract, dept, landing) for p in files]
    readable = [r for r in reads if r.frame is not None]
    # pass 1: count the rows, settle duplicates and case agreement over the whole extract
    for r in readable:
        ctx_one, r.rows = _first_pass(r, contract, ctx, dept)
        if len(readable) == 1:
            ctx = ctx_one
    for r in reads:
        check_against_manifest(r, manifest, dept)
        problems.extend(r.problems)
        result.extra_columns.extend(c for c in r.extra_columns if c not in result.extra_columns)
    result.encoding = ", ".join(r.encoding for r in reads if r.encoding) or None
    result.sha256 = ", ".join(r.sha256 for r in reads if r.sha256) or None
    checked = Checked(result, checks, ctx, None, reads)
    if not readable:
        _fail(result, problems)
        return checked

    frames = [
        r.frame.with_columns(pl.lit(r.path.name).alias(SOURCE_FILE)) if len(reads) > 1 else r.frame
        for r in readable
    ]
    raw = pl.concat(frames, how="diagonal") if len(frames) > 1 else frames[0]
    if len(readable) > 1:
        ctx, _ = cross_row_context(raw, contract, ctx)
        checked.ctx = ctx
    received = sum(r.rows for r in readable)
    result.rows_received = received
    if received == 0:
        problems.append(FileProblem("file.zero_rows", f"{dept}/{result.file_name}: no data rows"))

    flags = [c.reason for c in checks if set(c.columns) <= set(raw.collect_schema().names())]
    source = evaluate(raw, contract, ctx, checks).with_columns(
        pl.any_horizontal([pl.col(f) for f in flags] or [pl.lit(False)]).alias("__bad")
    )
    checked.source = source
    headers = _received_headers(reads)

    # pass 2: check every row; write accepted and quarantined rows, and the rows as Great
    # Expectations validates them with the flags just computed, in one scan
    if not problems:
        staged_tmp, quarantined_tmp = aside(staging_path), aside(quarantine_path)
        # one file per gating, removed with `checked` (and a sink that fails leaves none)
        prepared_path = prepared_dir / prepared_glob.replace("*", uuid.uuid4().hex[:12])
        checked._files.append(prepared_path)
        accepted = staging_frame(source.filter(~pl.col("__bad")), contract)
        rejected = _as_received(source.filter(pl.col("__bad")), flags, [], headers)
        for_ge = source.select(*ge_columns(contract, set(source.collect_schema().names())), *flags)
        pl.collect_all(
            [
                accepted.sink_parquet(staged_tmp, lazy=True, mkdir=True),
                rejected.sink_parquet(quarantined_tmp, lazy=True, mkdir=True),
                for_ge.sink_parquet(prepared_path, lazy=True, mkdir=True),
            ],
            engine="streaming",
        )
        checked.prepared = Prepared(pl.scan_parquet(prepared_path), tuple(flags), owner=checked)
        checked.prepared_path = prepared_path
        bad = _rows_in(quarantined_tmp)
        problems.extend(
            _share_and_snapshot(contract, quarter, dept, result, bad, previous_accepted)
        )
        if not problems:
            os.replace(staged_tmp, staging_path)
            crash_point("gate")
            os.replace(quarantined_tmp, quarantine_path)
            result.rows_accepted, result.rows_quarantined = received - bad, bad
            result.status = PASSED
        else:
            staged_tmp.unlink(missing_ok=True)
            quarantined_tmp.unlink(missing_ok=True)
    if problems:
        # pass 3 (or 2): the extract fails; every row is quarantined, its own reasons kept
        file_reasons = sorted({p.reason for p in problems})
        quarantined_tmp = aside(quarantine_path)
        _as_received(source, flags, file_reasons, headers).sink_parquet(
            quarantined_tmp, mkdir=True, engine="streaming"
        )
        os.replace(quarantined_tmp, quarantine_path)
        result.rows_accepted, result.rows_quarantined = 0, received
        result.status = FAILED
        result.failure_reasons = [p.message for p in problems]

    if result.rows_quarantined:
        result.quarantine_path = Outputs(out).written(quarantine_path)
        _count_reasons(result, pl.scan_parquet(quarantine_path), contract, headers)
    else:
        quarantine_path.unlink(missing_ok=True)
    if result.status == PASSED:
        result.staging_path = Outputs(out).written(staging_path)
    if result.rows_received != result.rows_accepted + result.rows_quarantined:
        raise AccountingError(f"{dept}/{contract.extract}: accounting does not add up")
    return checked


def _first_pass(
    read: ingest.ReadFile, contract: Contract, ctx: CheckContext, dept: str
) -> tuple[CheckContext, int]:
    try:
        return cross_row_context(read.frame, contract, ctx)
    except pl.exceptions.PolarsError:
        # a CSV that polars cannot parse (a row with more fields than the header): the slow
        # tolerant reader keeps every row and fails the file naming the first bad row
        if read.file_format != "csv":
            raise
        read.read_tolerant(dept)
        return cross_row_context(read.frame, contract, ctx)


def _rows_in(path: Path) -> int:
    return pl.scan_parquet(path).select(pl.len()).collect().item()


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
    if contract.weighs_quarantine_share and bad > limit * received:  # exact: limit is a decimal
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


def _count_reasons(
    result: ExtractResult, quarantined: pl.LazyFrame, contract: Contract, headers: dict[str, str]
) -> None:
    """Rows per reason and a few masked examples, read back from the quarantine file."""
    counted = (
        quarantined.select(pl.col("reasons").explode().drop_nulls().alias("reason"))
        .group_by("reason")
        .len()
        .sort("reason")
        .collect()
    )
    result.reason_rows.update(dict(zip(counted["reason"], counted["len"], strict=True)))
    if not counted.height:
        return
    names = _output_names(headers)
    columns = [c.name for c in contract.columns if names.get(c.name)]
    sample = (
        quarantined.select(ROW_NUMBER, "reasons", *[pl.col(names[c]).alias(c) for c in columns])
        .explode("reasons")
        .group_by("reasons", maintain_order=True)
        .head(EXAMPLES_PER_REASON)
        .collect()
    )
    for row in sample.iter_rows(named=True):
        reason = row["reasons"]
        result.reason_examples.setdefault(reason, []).append(_example(row, reason, contract))


def _example(row: dict, reason: str, contract: Contract) -> str:
    """`row 17 (350102********1234): gender='Q'` — identity numbers masked, names never shown."""
    ident = ""
    key = contract.primary_key[0]
    if row.get(key) is not None:
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


def _received_headers(reads: list[ingest.ReadFile]) -> dict[str, str]:
    """Frame column -> the header as received (the first file's, when two files differ)."""
    headers: dict[str, str] = {}
    for r in reads:
        for name, raw in r.received_headers.items():
            headers.setdefault(name, raw)
    return headers


def _output_names(headers: dict[str, str]) -> dict[str, str]:
    """Frame column -> its column name in the quarantine file (the received header, made
    unique against the columns the gate adds)."""
    out: dict[str, str] = {}
    used = {ROW_NUMBER, "reasons", SOURCE_FILE}
    for column, raw in headers.items():
        name = raw
        while name in used:
            name += "_"
        used.add(name)
        out[column] = name
    return out


def _as_received(
    frame: pl.LazyFrame, flags: list[str], file_reasons: list[str], headers: dict[str, str]
) -> pl.LazyFrame:
    """The rejected rows exactly as received (all columns as text, received headers), plus
    `row_number` and `reasons`: every check the row fails, then the file-level reasons
    (outputs.md §3)."""
    joined = pl.concat_str(
        [pl.when(pl.col(f)).then(pl.lit(f)) for f in flags] or [pl.lit(None, dtype=pl.String)],
        separator=";",
        ignore_nulls=True,
    )
    reasons = (
        pl.when(joined.is_null() | (joined == ""))
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(joined.str.split(";"))
    )
    if file_reasons:
        reasons = pl.concat_list([reasons, pl.lit(file_reasons, dtype=pl.List(pl.String))])
    names = _output_names(headers)
    present = frame.collect_schema().names()
    cols = [pl.col(c).alias(names[c]) for c in headers if c in present]
    extra = [SOURCE_FILE] if SOURCE_FILE in present else []
    return frame.select(*extra, *cols, ROW_NUMBER, reasons.alias("reasons"))


def staging_frame(accepted: pl.LazyFrame, contract: Contract) -> pl.LazyFrame:
    """Accepted rows, typed: identity numbers normalised to 18 characters, codes upper-cased,
    dates as dates, money as DECIMAL(18,2), plus the row's `row_number` in its file."""
    cols = []
    for c in contract.columns:
        v = VALUE_TYPES[c.value_type].staged_value(pl.col(f"{c.name}__v"))
        cols.append(v.alias(c.name))
    return accepted.select(*cols, ROW_NUMBER)
