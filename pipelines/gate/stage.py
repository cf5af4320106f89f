"""The gate's steps as the quarterly job runs them: one extract, the feedback files, the
quarter's accounting. The Dagster assets call these and only turn their results into metadata.
"""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from pipelines.core import idnumbers
from pipelines.core.contracts import Contract, feedback_contract
from pipelines.core.departments import ROUTES
from pipelines.core.layout import Landing, Outputs
from pipelines.core.quarters import Quarter
from pipelines.gate import accounting
from pipelines.gate.extract import FAILED, ExtractResult, run_extract

logger = logging.getLogger(__name__)


@dataclass
class Gated:
    """An extract through the gate: its accounting row and Great Expectations' summary (None
    when there was nothing to validate)."""

    result: ExtractResult
    validation: dict | None


def gate_extract(
    landing: Path,
    out: Path,
    contract: Contract,
    quarter: Quarter,
    *,
    department: str | None = None,
    routed_warning_keys: frozenset[str] | None = None,
    render_data_docs: bool = True,
    log: logging.Logger | logging.LoggerAdapter,
    gx_context=None,
) -> Gated:
    """Gate one extract, validate it with Great Expectations and save its result for the
    accounting. An unexpected error in our own code fails this extract (with the error named,
    scrubbed of identity numbers, in `log`), never the quarter. `render_data_docs=False` stores
    the validation without rendering its Data Docs pages: for a caller that has `account`
    build the quarter's pages afterwards. `gx_context`: the run's Great Expectations context
    (opened once per run), else one of its own."""
    dept = department or contract.department
    previous = accounting.previous_accepted(out, str(quarter.previous()), dept, contract.extract)
    try:
        checked = run_extract(
            contract,
            landing,
            out,
            quarter,
            department=dept,
            previous_accepted=previous,
            routed_warning_keys=routed_warning_keys,
        )
        result, validation = checked.result, None
        try:
            source = checked.for_validation()
            if source is not None and result.rows_received:
                # imported here: Great Expectations takes seconds to import, and only a step
                # that validates needs it
                from pipelines.gate import expectations

                validation = expectations.validate(
                    out,
                    contract,
                    quarter,
                    source,
                    checked.ctx,
                    checked.checks,
                    department=dept,
                    update_data_docs=render_data_docs,
                    gx_context=gx_context,
                )
        finally:
            checked.close()
    except Exception as e:  # noqa: BLE001 - one extract must never stop the quarter
        # one line in the run's log (the Dagster event log); the traceback, scrubbed, only in
        # the Python log at DEBUG, for a developer who turns it on
        first = (idnumbers.scrub(str(e)).strip().splitlines() or ["no message"])[0]
        log.error(f"{dept}/{contract.extract}: internal error {type(e).__name__}: {first}")
        logger.debug("%s", idnumbers.scrub(traceback.format_exc(limit=5)))
        result = ExtractResult(
            quarter=str(quarter),
            department=dept,
            extract=contract.extract,
            contract_version=contract.version,
            status=FAILED,
            failure_reasons=[f"internal error while gating ({type(e).__name__}); see run log"],
        )
        validation = None
    accounting.save_result(out, result)
    log.info(
        f"{dept}/{contract.extract} {quarter}: {result.status}, "
        f"received {result.rows_received:,} = accepted {result.rows_accepted:,} "
        f"+ quarantined {result.rows_quarantined:,}"
    )
    return Gated(result, validation)


def routed_keys(out: Path, before: Quarter) -> dict[str, frozenset[str]]:
    """Every key routed to each department in the quarters before `before` (escalation copies
    included), from publishing's routing record of each: what that department's feedback may
    name (extracts.md §4)."""
    outputs = Outputs(out)
    keys: dict[str, set[str]] = {}
    for q in outputs.quarters():
        path = outputs.quarter(q).routing
        if Quarter.parse(q) < before and path.is_file():
            for dept, key in pl.read_parquet(path).select("routed_to", "warning_key").iter_rows():
                keys.setdefault(dept, set()).add(key)
    return {d: frozenset(k) for d, k in keys.items()}


def gate_feedback(
    landing: Path,
    out: Path,
    quarter: Quarter,
    *,
    render_data_docs: bool = True,
    log: logging.Logger | logging.LoggerAdapter,
    gx_context=None,
) -> list[ExtractResult]:
    """Each receiving department's feedback file (extracts.md §4) through the feedback contract,
    with the keys routed to that department in earlier quarters. A department that sent none
    has no row (the file is optional)."""
    contract = feedback_contract()
    history = routed_keys(out, quarter)
    results = []
    for dept in ROUTES:
        if not Landing(landing).any_file_named(quarter, dept, contract.extract):
            accounting.result_path(out, str(quarter), dept, contract.extract).unlink(
                missing_ok=True
            )
            continue
        gated = gate_extract(
            landing,
            out,
            contract,
            quarter,
            department=dept,
            routed_warning_keys=history.get(dept, frozenset()),
            render_data_docs=render_data_docs,
            log=log,
            gx_context=gx_context,
        )
        results.append(gated.result)
    return results


@dataclass
class Accounted:
    results: list[ExtractResult]
    tables: dict[str, Path]
    data_docs: Path | None


def account(out: Path, quarter: Quarter, *, gx_context=None) -> Accounted:
    """The quarter's `extract_quality` and `quarantine_reasons`, and the Data Docs (the quarter's
    pages and the index)."""
    from pipelines.gate import datadocs  # see gate_extract

    results = accounting.load_results(out, str(quarter))
    tables = accounting.write_tables(out, str(quarter), results)
    docs = datadocs.build_data_docs(out, quarter, gx_context=gx_context)
    return Accounted(results, tables, docs)
