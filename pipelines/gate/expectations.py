"""The data contract as a Great Expectations suite, validated.

The suite is compiled from the same `kinds.Check` objects the gate evaluates, one expectation
per check, so GE's unexpected rows and the gate's quarantined rows agree row for row
(tests/test_expectations.py shows it on a file with planted errors).

- Native expectations where a check kind says GE's is an exact equivalent of its Polars check
  (`Kind.expectation`): `required` (not null), `codes` and `county` (in set; nulls pass, as in
  the gate), `type_money`/`type_int`/`type_decimal` (the same regex constants), and, when the
  whole extract is validated as one frame, `duplicate_key` when every key column is one GE sees
  exactly as the gate compares it (id, code, county, text).
- Every other check is one of two custom expectations whose metric runs the gate's own Polars
  code (`checks.evaluate`) on the columns GE hands it: a column map for a check reading one
  column, a multicolumn map (`ignore_row_if="never"`, the Polars code decides about nulls) for a
  check reading several.

Streaming: the extract is validated in batches of at most `batch_rows` rows, taken from one
streaming pass over what the gate hands over, so a province's registry never sits in memory whole:
the rows its second pass wrote with its own flag of every check (`checks.Prepared`, whose flags the
custom metrics take as they are), or, when that pass did not run, the gate's checked source
(`checks.evaluate` of the scan, the checks evaluated again on each batch). The two checks that
compare rows (`duplicate_key`, `group_agreement`) were settled over the whole extract by
`checks.cross_row_context`; with those sets in the context they compile to the custom expectation,
a per-row membership test that gives the same answer in any batch (GE's native uniqueness would
only see its own batch). The batches' results are merged into ONE validation per extract per
quarter with exact whole-extract counts.

The custom expectations (`custom_expectations`) need the Python objects of the validation
running; `validate` makes its contract, context and batch flags the current validation for the
call (`custom_expectations.running`).

One validation per extract per quarter, named `<quarter>.<dept>.<extract>`, in a file context at
`<out>/gx`, with Data Docs at `<out>/data_docs/index.html` (outputs.md §4). Stored results keep
counts only: no value from the data (identity numbers and names are personal data) is stored or
rendered. Where GE is worked around — its internals patched for speed while the batches are
validated, its stores kept without its slow steps, the batches' results merged — is
`gx_patches` (the list of every workaround), `gx_store` and `gx_deferred`; the Data Docs are
built by `datadocs`.
"""

from __future__ import annotations

import hashlib
import logging
import time
import traceback
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import pandas as pd
import polars as pl
from great_expectations.validator.v1_validator import Validator

from pipelines.core import idnumbers
from pipelines.core.contracts import Contract, as_sent_by
from pipelines.core.faults import crash_point
from pipelines.core.quarters import Quarter

# `row_checks`: the module; `checks` is what the gate compiled (a list of `Check`), as elsewhere.
from pipelines.gate import checks as row_checks
from pipelines.gate import custom_expectations, datadocs, gx_patches, gx_store
from pipelines.gate.kinds import Check, CheckContext, kind_of

logger = logging.getLogger(__name__)

# Counts only: GE keeps no example values (partial_unexpected_list stays empty).
DEFAULT_RESULT_FORMAT: dict[str, Any] = {"result_format": "SUMMARY", "partial_unexpected_count": 0}


# --- the frame GE validates, batch by batch ---------------------------------------------------


def ge_frame(checked: pl.DataFrame, contract: Contract) -> pd.DataFrame:
    """The frame GE validates, from the gate's checked rows (`checks.evaluate`: the received
    text under canonical names and the `__v` typed columns), or from one batch of them.

    Row order is kept and the index is a RangeIndex, so GE's `unexpected_index_list` are row
    positions in the frame (in the batch: `validate` adds the batch's first position).
    """
    columns = row_checks.ge_columns(contract, set(checked.columns))
    return checked.select(columns).to_pandas()  # via Arrow


def batches(
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared, contract: Contract, batch_rows: int
) -> Iterator[pl.DataFrame]:
    """The GE columns of `source` in consecutive batches of at most `batch_rows` rows, in row
    order, without the whole in memory (a `Prepared` source: its columns as they are, the
    gate's flags included).

    A LazyFrame is run ONCE, by the streaming engine (`LazyFrame.collect_batches`), projected to
    the columns GE reads first (so the gate's flag columns are not computed again); the engine
    holds a few chunks ahead of the consumer and waits for it, so memory stays bounded by the
    batch size, not by the extract. A CSV scan cannot seek to a row: repeated `slice(offset, n)`
    would re-read the file up to each batch. A DataFrame is cut into zero-copy slices.
    """
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
    prepared = isinstance(source, row_checks.Prepared)
    frame = source.frame if prepared else source
    if isinstance(frame, pl.DataFrame):
        columns = None if prepared else row_checks.ge_columns(contract, set(frame.columns))
        for part in frame.iter_slices(batch_rows):
            yield part if columns is None else part.select(columns)
        return
    if not prepared:
        frame = frame.select(row_checks.ge_columns(contract, set(frame.collect_schema().names())))
    stream = frame.collect_batches(chunk_size=batch_rows, maintain_order=True, engine="streaming")
    yield from _rebatch(stream, batch_rows)


def _rebatch(frames: Iterable[pl.DataFrame], n: int) -> Iterator[pl.DataFrame]:
    """Batches of exactly `n` rows (the last one shorter), whatever sizes the engine hands out:
    `chunk_size` is what the engine buffers before it gives a chunk, not a promise."""
    pending: list[pl.DataFrame] = []
    rows = 0
    for f in frames:
        if not f.height:
            continue
        pending.append(f)
        rows += f.height
        while rows >= n:
            whole = pl.concat(pending) if len(pending) > 1 else pending[0]
            yield whole.slice(0, n)
            rest = whole.slice(n)
            pending, rows = ([rest] if rest.height else []), rest.height
    if rows:
        yield pl.concat(pending) if len(pending) > 1 else pending[0]


def _routed_keys_token(keys: frozenset[str] | None) -> str | None:
    """A short, stable name for a set of routed warning keys (the set itself can be large and
    does not belong in a suite): the same keys give the same name, so a re-run leaves the suite
    unchanged."""
    if keys is None:
        return None
    digest = hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:16]
    return f"keys-{len(keys)}-{digest}"


def settled(ctx: CheckContext, contract: Contract, present: Iterable[str] | None = None) -> bool:
    """Whether the context carries what `checks.cross_row_context` settled for every
    row-comparing check of the contract that the present columns allow."""
    if ctx.settled is None:
        return False
    have = {c.name for c in contract.columns} if present is None else set(present)
    return all(
        c.reason in ctx.settled
        for c in row_checks.compile_checks(contract, ctx)
        if kind_of(c).compares_rows and set(c.columns) <= have
    )


# --- the suite --------------------------------------------------------------------------------


def suite_name(contract: Contract, department: str | None = None) -> str:
    return f"{department or contract.department}.{contract.extract}"


def expectation_for(
    check: Check, contract: Contract, ctx: CheckContext, *, cross_row: str | None = None
) -> gxe.Expectation:
    """The one expectation a check compiles to. With `cross_row` (the name of the sets settled
    over the whole extract) the two row-comparing checks are membership tests run by the
    gate's code, right in any batch; without it they compare the rows of the one frame."""
    meta = {"reason": check.reason, "expected": check.expected}
    columns = list(dict.fromkeys(check.columns))
    # Data Docs show the description instead of GE's own sentence: the contract rule (the
    # quarantine reason) and what was expected, in the words of the quality report.
    description = f"{', '.join(columns)}: {check.expected} (contract rule {check.reason})"
    common = {
        "meta": meta,
        "notes": f"Quarantine reason {check.reason}: expected {check.expected}.",
        "description": description.replace("$", "$$"),
    }
    kind = kind_of(check)
    native = kind.expectation(check, contract, settled=cross_row is not None)
    if native is not None:
        return getattr(gxe, native.expectation)(**native.arguments, **common)
    rule = {
        "reason": check.reason,
        "contract": contract.name,
        "quarter": str(ctx.quarter),
        "routed_keys": _routed_keys_token(ctx.routed_warning_keys),
    }
    if kind.compares_rows and cross_row is not None:
        rule["cross_row"] = cross_row
    if len(columns) == 1:
        return custom_expectations.ExpectColumnValuesToPassContractRule(
            column=columns[0], **rule, **common
        )
    return custom_expectations.ExpectMulticolumnValuesToPassContractRule(
        column_list=columns, ignore_row_if="never", **rule, **common
    )


def build_suite(
    contract: Contract,
    ctx: CheckContext,
    checks: list[Check],
    *,
    present: Iterable[str] | None = None,
    department: str | None = None,
) -> gx.ExpectationSuite:
    """The suite `<dept>.<extract>`: one expectation per check whose columns are all `present`
    (default: every contract column), as the gate leaves out checks on missing columns.

    When `ctx` carries the cross-row sets (`settled`), the row-comparing checks are membership
    tests of them, named `<quarter>.<dept>.<extract>` (batch by batch validation); otherwise
    those checks compare the rows of the one frame validated."""
    have = {c.name for c in contract.columns} if present is None else set(present)
    cross_row = (
        f"{ctx.quarter}.{suite_name(contract, department)}"
        if settled(ctx, contract, have)
        else None
    )
    wanted = [
        expectation_for(c, contract, ctx, cross_row=cross_row)
        for c in checks
        if set(c.columns) <= have
    ]
    # Passed to the constructor, not `add_expectation` (which looks the suite up in the current
    # context's store once per expectation).
    suite = gx.ExpectationSuite(
        name=suite_name(contract, department),
        expectations=wanted,
        meta={"contract": contract.name, "contract_version": contract.version},
    )
    if len(suite.expectations) != len(wanted):  # GE logs and drops an invalid expectation
        raise ValueError(
            f"{suite.name}: GE refused {len(wanted) - len(suite.expectations)} "
            "of the expectations compiled from the contract"
        )
    return suite


def _custom_reasons(suite: gx.ExpectationSuite) -> set[str]:
    custom = custom_expectations.CUSTOM
    return {e.meta["reason"] for e in suite.expectations if isinstance(e, custom)}


# --- validation -------------------------------------------------------------------------------


def validate(
    out: Path,
    contract: Contract,
    quarter: Quarter | str,
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared | None,
    ctx: CheckContext,
    checks: list[Check],
    *,
    batch_rows: int = 1_000_000,
    result_format: dict | str | None = None,
    department: str | None = None,
    update_data_docs: bool = True,
    raise_errors: bool = False,
    gx_context=None,
) -> dict:
    """One GE validation of one extract for one quarter, stored (counts only) and rendered in
    Data Docs; a re-run replaces the quarter's earlier result for the extract. `gx_context`: the
    run's `gx_store.RunContext` (a context opened once per run: opening one takes ≈ 0.15 s);
    without it one is opened here.

    `source` is the gate's checked extract (`gate.Checked.source`: `checks.evaluate` of the
    read rows, a LazyFrame, or a DataFrame of the same columns). It is validated in batches of
    at most `batch_rows` rows from one streaming pass, and the batches' results are merged into
    one result whose counts are the whole extract's. `ctx` should carry the cross-row sets
    (`checks.cross_row_context`); if it does not and the extract may not fit in one batch, they
    are settled here first, at the cost of one more pass over the source.

    Returns {"name", "suite", "success", "error", "expectations": [{"reason", "expectation",
    "success", "unexpected_count", "element_count", "missing_count", "exception"}],
    "statistics"} (statistics: GE's, over the merged expectations, plus "rows", "batches",
    "batch_rows", "seconds"). With `result_format` (tests use COMPLETE) each expectation also
    carries its `unexpected_index_list` (row positions in the whole extract); the stored result
    is scrubbed of it all the same.

    `update_data_docs=False` stores the result without rendering it (a caller validating many
    extracts can call `datadocs.build_data_docs` once at the end).

    A GE problem never raises: it is logged and returned in `error` (success False), unless
    `raise_errors` (tests), which also raises when an expectation raised inside GE.
    """
    dept = department or contract.department
    contract = as_sent_by(contract, dept)  # as the gate read it (a department's date habit)
    name = f"{Quarter.parse(str(quarter))}.{dept}.{contract.extract}"
    summary: dict[str, Any] = {
        "name": name,
        "suite": suite_name(contract, dept),
        "success": False,
        "error": None,
        "expectations": [],
        "statistics": {},
    }
    if source is None:
        summary["error"] = "nothing to validate: the file is missing or could not be read"
        return summary
    try:
        with gx_store.one_writer(Path(out)):
            _validate(
                summary,
                Path(out),
                contract,
                source,
                ctx,
                checks,
                batch_rows,
                result_format,
                dept,
                update_data_docs,
                gx_context,
            )
    except Exception as e:
        if raise_errors:
            raise
        summary["success"] = False
        summary["error"] = f"{type(e).__name__}: {idnumbers.scrub(str(e))}"
        logger.error(
            "Great Expectations validation %s failed: %s\n%s",
            name,
            summary["error"],
            "".join(traceback.format_tb(e.__traceback__)),
        )
    raised = [x for x in summary["expectations"] if x["exception"]]
    for x in raised:
        logger.error("%s: expectation for %s raised: %s", name, x["reason"], x["exception"])
    if raised:
        reasons = ", ".join(x["reason"] for x in raised)
        summary["error"] = summary["error"] or f"expectations raised inside GE: {reasons}"
        if raise_errors:
            raise RuntimeError(f"{name}: {summary['error']}")
    return summary


def _validate(
    summary: dict,
    out: Path,
    contract: Contract,
    source: pl.LazyFrame | pl.DataFrame | row_checks.Prepared,
    ctx: CheckContext,
    checks: list[Check],
    batch_rows: int,
    result_format: dict | str | None,
    dept: str,
    update_data_docs: bool,
    gx_context,
) -> None:
    started = time.perf_counter()
    given: tuple[str, ...] = ()
    if isinstance(source, row_checks.Prepared):
        given, prepared = source.flags, source.frame
        present = [n for n in prepared.collect_schema().names() if n not in set(given)]
        if not settled(ctx, contract, present):
            raise ValueError(
                f"{summary['name']}: rows prepared by the gate come with the context that "
                "settled their row-comparing checks"
            )
    else:
        present = source.collect_schema().names()
    if not settled(ctx, contract, present) and (
        isinstance(source, pl.LazyFrame) or source.height > batch_rows
    ):
        # GE's own uniqueness would see one batch: settle the row-comparing checks first
        ctx, _ = row_checks.cross_row_context(source.lazy(), contract, ctx)
    ge_names = [c.name for c in contract.columns if c.name in present]
    run_context, gx_context = gx_context, gx_store.context_of(out, gx_context)
    suite = build_suite(contract, ctx, checks, present=ge_names, department=dept)
    suite = gx_store.stored_suite(gx_context, suite)
    batch = gx_store.batch_definition(gx_context, suite.name)
    definition = gx_store.validation_definition(gx_context, summary["name"], batch, suite)
    want_indexes = result_format is not None
    current = custom_expectations.Validation(contract, ctx, {c.reason: c for c in checks})
    custom = [c for c in checks if c.reason in _custom_reasons(suite)]
    merged: gx_store.MergedResult | None = None
    rows = n_batches = 0
    parts = batches(source, contract, batch_rows)
    part = next(parts, None)
    if part is None:  # no rows: validate the empty frame once, so the quarter has its result
        if isinstance(source, row_checks.Prepared):
            part = source.frame.lazy().head(0).collect()
        else:
            columns = row_checks.ge_columns(contract, set(present))
            part = source.lazy().select(columns).head(0).collect()
    # the validation's flags and sets for the custom metrics; GE's bookkeeping made faster (no
    # fingerprint of the batch, configurations and metric ids built once) for GE's validation of
    # the batches only, not while storing
    with custom_expectations.running(current), gx_patches.patched(validating=True):
        while part is not None:
            height = part.height
            frame = part.select(ge_names).to_pandas()  # via Arrow; RangeIndex
            current.evaluate_batch(part, custom, given)
            part = None  # only GE's pandas copy of the batch stays in memory meanwhile
            # ValidationDefinition.run would store the result as GE made it; the Validator it
            # runs is used directly so that only a scrubbed result (counts, no values) is ever
            # written.
            validator = Validator(
                batch_definition=batch,
                result_format=result_format or DEFAULT_RESULT_FORMAT,
                batch_parameters={"dataframe": frame},
            )
            results = validator.validate_expectation_suite(suite)
            crash_point("expectations")
            if merged is None:
                merged = gx_store.MergedResult(results, validator.active_batch_id)
            merged.add(results, offset=rows, indexes=want_indexes)
            rows += height
            n_batches += 1
            del validator, results, frame
            part = next(parts, None)
    if merged is None:  # pragma: no cover - the loop runs at least once
        raise RuntimeError(f"{summary['name']}: no batch was validated")
    results = merged.result()
    for r, indexes in zip(results.results, merged.indexes, strict=True):
        meta = r.expectation_config.meta or {}
        res = r.result or {}
        entry = {
            "reason": meta.get("reason"),
            "expectation": r.expectation_config.type,
            "success": bool(r.success),
            "unexpected_count": res.get("unexpected_count"),
            "element_count": res.get("element_count"),
            "missing_count": res.get("missing_count"),
            "exception": gx_store.exception_summary(r.exception_info),
        }
        if want_indexes and indexes is not None:
            entry["unexpected_index_list"] = indexes
        summary["expectations"].append(entry)
    summary["success"] = bool(results.success)
    summary["statistics"] = {
        **dict(results.statistics),
        "rows": rows,
        "batches": n_batches,
        "batch_rows": batch_rows,
        "seconds": round(time.perf_counter() - started, 3),
    }

    key = gx_store.store_result(
        gx_context,
        results,
        merged.batch_id,
        suite=suite.name,
        name=summary["name"],
        definition=definition,
        batches=n_batches,
        batch_rows=batch_rows,
    )
    if update_data_docs:  # what a Checkpoint's UpdateDataDocsAction does, for this result only
        datadocs.render(gx_context, out, [key.expectation_suite_identifier, key])
    if run_context is not None:
        run_context.written()


__all__ = [
    "DEFAULT_RESULT_FORMAT",
    "batches",
    "build_suite",
    "expectation_for",
    "ge_frame",
    "settled",
    "suite_name",
    "validate",
]
