"""Dagster definitions: the quarterly job.

Every department extract is an asset partitioned by quarter (`2026Q3`) with a `contract` asset
check; the feedback files are one asset; `extract_quality` gathers the quarter's accounting and
builds the Data Docs. A failed extract is a failed *check*, never a failed step: the other
extracts and the quarter go on (policy.md §4 decides which rules then cannot be evaluated).
"""

import functools
import os
import traceback
from pathlib import Path

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    ConfigurableResource,
    Definitions,
    Failure,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    in_process_executor,
)

from pipelines import idnumbers, quality
from pipelines.contracts import Contract, extract_contracts, feedback_contract
from pipelines.gate import FAILED, ExtractResult, run_extract
from pipelines.operations import build_landing_sensor, build_quarterly_schedule
from pipelines.outputs import FEEDBACK_DEPARTMENTS, routed_keys
from pipelines.quarters import Quarter, quarter_range

# Fixed up front: changing the partition set later breaks backfills (ENGINEERING.md).
QUARTERS = StaticPartitionsDefinition(quarter_range("2020Q1", "2040Q4"))
GATE = "gate"
POLICY = "policy"
OUTPUTS = "outputs"
JOB_NAME = "quarterly"


class SafetynetPaths(ConfigurableResource):
    """Where the landing folders are read and the outputs written."""

    landing: str
    out: str


def extract_key(contract: Contract) -> AssetKey:
    return AssetKey([contract.department, contract.extract])


def _gate_one(
    context: AssetExecutionContext,
    paths: SafetynetPaths,
    contract: Contract,
    department: str,
    **kwargs,
) -> tuple[ExtractResult, dict | None]:
    """Gate one extract and validate it with Great Expectations. An unexpected error in our own
    code fails this extract (with the error named, scrubbed of identity numbers), not the run."""
    quarter = Quarter.parse(context.partition_key)
    landing, out = Path(paths.landing), Path(paths.out)
    previous = quality.previous_accepted(out, str(quarter.previous()), department, contract.extract)
    try:
        checked = run_extract(
            contract,
            landing,
            out,
            quarter,
            department=department,
            previous_accepted=previous,
            **kwargs,
        )
        result, ge = checked.result, None
        try:
            if checked.source is not None and result.rows_received:
                from pipelines import expectations

                ge = expectations.validate(
                    out,
                    contract,
                    quarter,
                    checked.source,
                    checked.ctx,
                    checked.checks,
                    department=department,
                )
        finally:
            checked.close()
    except Exception as e:  # noqa: BLE001 - one extract must never stop the quarter
        context.log.error(
            f"{department}/{contract.extract}: internal error {type(e).__name__}: "
            + idnumbers.scrub(traceback.format_exc(limit=3))
        )
        result = ExtractResult(
            quarter=str(quarter),
            department=department,
            extract=contract.extract,
            contract_version=contract.version,
            status=FAILED,
            failure_reasons=[f"internal error while gating ({type(e).__name__}); see run log"],
        )
        ge = None
    quality.save_result(out, result)
    context.log.info(
        f"{department}/{contract.extract} {quarter}: {result.status}, "
        f"received {result.rows_received:,} = accepted {result.rows_accepted:,} "
        f"+ quarantined {result.rows_quarantined:,}"
    )
    return result, ge


def _metadata(result: ExtractResult, ge: dict | None = None) -> dict:
    """Counts, hashes and reasons only: no value from the file besides masked examples."""
    md = {
        "status": result.status,
        "rows_received": result.rows_received,
        "rows_accepted": result.rows_accepted,
        "rows_quarantined": result.rows_quarantined,
        "file_name": result.file_name or "",
        "encoding": result.encoding or "",
        "sha256": result.sha256 or "",
        "contract_version": result.contract_version,
    }
    if result.failure_reasons:
        md["failure_reasons"] = MetadataValue.md(
            "\n".join(f"- {idnumbers.scrub(m)}" for m in result.failure_reasons)
        )
    if result.reason_rows:
        md["quarantine_reasons"] = MetadataValue.md(
            "| reason | rows |\n| --- | ---: |\n"
            + "\n".join(f"| {k} | {v:,} |" for k, v in sorted(result.reason_rows.items()))
        )
    if result.extra_columns:
        md["extra_columns"] = ", ".join(result.extra_columns)
    if ge is not None:
        md["great_expectations"] = "success" if ge["success"] else "failed expectations"
        failing = [e for e in ge["expectations"] if not e["success"]]
        if failing:
            md["failed_expectations"] = MetadataValue.md(
                "| expectation | reason | unexpected |\n| --- | --- | ---: |\n"
                + "\n".join(
                    f"| {e['expectation']} | {e['reason']} | {e.get('unexpected_count') or 0:,} |"
                    for e in failing
                )
            )
    return md


def _extract_asset(contract: Contract):
    key = extract_key(contract)
    core = (contract.department, contract.extract) in quality.CORE_EXTRACTS

    @asset(
        key=key,
        partitions_def=QUARTERS,
        group_name=GATE,
        description=f"{contract.business_name} — {contract.name} through its data contract "
        f"v{contract.version}: accepted rows as a typed staging table, rejected rows quarantined.",
        check_specs=[
            AssetCheckSpec(
                "contract",
                asset=key,
                description="the extract passed its data contract (extracts.md §2)",
            )
        ],
        kinds={"polars", "parquet"},
    )
    def _asset(context: AssetExecutionContext, paths: SafetynetPaths) -> MaterializeResult:
        result, ge = _gate_one(context, paths, contract, contract.department)
        md = _metadata(result, ge)
        return MaterializeResult(
            metadata=md,
            check_results=[
                AssetCheckResult(
                    check_name="contract",
                    asset_key=key,
                    passed=result.status == "PASSED",
                    # the registry and the roster are read by every rule: without them the
                    # quarter cannot be processed, so their failure is an ERROR
                    severity=AssetCheckSeverity.ERROR if core else AssetCheckSeverity.WARN,
                    metadata=md,
                )
            ],
        )

    return _asset


@asset(
    key=AssetKey([GATE, "feedback"]),
    partitions_def=QUARTERS,
    group_name=GATE,
    description="Feedback of the receiving departments about earlier warnings (extracts.md §4), "
    "one file per department folder, through the feedback contract.",
    kinds={"polars", "parquet"},
)
def feedback(context: AssetExecutionContext, paths: SafetynetPaths) -> MaterializeResult:
    contract = feedback_contract()
    quarter = context.partition_key
    # what each department may answer about: the keys routed to it in earlier quarters
    history = routed_keys(Path(paths.out), Quarter.parse(quarter))
    seen = []
    for dept in FEEDBACK_DEPARTMENTS:
        folder = Path(paths.landing) / quarter / dept
        if not any(folder.glob(f"{contract.extract}.*")):
            quality.result_path(Path(paths.out), quarter, dept, contract.extract).unlink(
                missing_ok=True
            )
            continue  # optional: no file, no row (extracts.md §2)
        result, _ = _gate_one(
            context, paths, contract, dept, routed_warning_keys=history.get(dept, frozenset())
        )
        seen.append(f"{dept}: {result.status} ({result.rows_received:,} rows)")
    return MaterializeResult(metadata={"files": ", ".join(seen) or "none"})


def _quality_asset(extract_keys: list[AssetKey]):
    @asset(
        key=AssetKey([GATE, "extract_quality"]),
        partitions_def=QUARTERS,
        group_name=GATE,
        deps=[*extract_keys, AssetKey([GATE, "feedback"])],
        description="extract_quality and quarantine_reasons for the quarter (outputs.md §2), "
        "and the Great Expectations Data Docs (outputs.md §4).",
        kinds={"parquet"},
    )
    def extract_quality(context: AssetExecutionContext, paths: SafetynetPaths):
        out = Path(paths.out)
        quarter = context.partition_key
        results = quality.load_results(out, quarter)
        written = quality.write_tables(out, quarter, results)
        docs = _build_docs(out)
        failed = [f"{r.department}/{r.extract}" for r in results if r.status != "PASSED"]
        context.log.info("reconciliation\n" + quality.reconciliation_text(results))
        return MaterializeResult(
            metadata={
                "extracts": len(results),
                "passed": sum(r.status == "PASSED" for r in results),
                "failed": sum(r.status == "FAILED" for r in results),
                "missing": sum(r.status == "MISSING" for r in results),
                "not_passed": ", ".join(failed) or "none",
                "rows_received": sum(r.rows_received for r in results),
                "rows_accepted": sum(r.rows_accepted for r in results),
                "rows_quarantined": sum(r.rows_quarantined for r in results),
                "extract_quality": MetadataValue.path(str(written["extract_quality"])),
                "data_docs": MetadataValue.path(str(docs)) if docs else "not built",
            }
        )

    return extract_quality


def _scrubbed(fn):
    """An unexpected error of the policy or publishing step fails the step with its message
    scrubbed of identity numbers: a database error may quote a value, and the original would
    reach Dagster's event log."""

    @functools.wraps(fn)
    def step(context: AssetExecutionContext, paths: SafetynetPaths) -> MaterializeResult:
        try:
            return fn(context, paths)
        except Failure:
            raise
        except Exception as e:  # noqa: BLE001 - re-raised, scrubbed
            raise Failure(f"{type(e).__name__}: {idnumbers.scrub(str(e))}") from None

    return step


def _pseudonym_key() -> bytes:
    """The province's key, or a failed step saying it is missing (never a run without it)."""
    from pipelines import pseudonym

    try:
        return pseudonym.key_from_environment()
    except pseudonym.KeyMissing as e:
        raise Failure(str(e)) from None


def _policy_asset(extract_keys: list[AssetKey]):
    key = AssetKey([POLICY, "warnings"])

    @asset(
        key=key,
        partitions_def=QUARTERS,
        group_name=POLICY,
        deps=extract_keys,
        description="The quarter's comparison (policy.md): derived facts in DuckDB over the "
        "accepted rows, the 19 rules of rules/catalogue, warnings with evidence, rule_runs and "
        "data findings.",
        check_specs=[
            AssetCheckSpec(
                "every_rule_evaluated",
                asset=key,
                description="no rule was NOT_EVALUATED for missing data or parameters "
                "(policy.md §3–4)",
            )
        ],
        kinds={"duckdb", "parquet"},
    )
    @_scrubbed
    def warnings(context: AssetExecutionContext, paths: SafetynetPaths) -> MaterializeResult:
        from pipelines import facts, pseudonym, rules

        secret = _pseudonym_key()
        out = Path(paths.out)
        quarter = Quarter.parse(context.partition_key)
        sources = facts.Sources.from_out(out, quarter)
        evaluation = rules.evaluate(sources, secret, temp_directory=out / ".duckdb")
        written = rules.write(out, evaluation)
        context.log.info(
            "policy\n"
            + rules.summary_text(
                evaluation.warnings, evaluation.rule_runs, evaluation.data_findings
            )
        )
        runs = evaluation.rule_runs
        skipped = runs.filter(pl.col("status") == "NOT_EVALUATED")
        by_category = dict(evaluation.warnings.group_by("category").len().iter_rows())
        md = {
            "warnings": evaluation.warnings.height,
            **{f"warnings_{c.lower()}": by_category.get(c, 0) for c in rules.CATEGORIES},
            "rules_evaluated": runs.height - skipped.height,
            "rules_not_evaluated": ", ".join(skipped["rule_id"].to_list()) or "none",
            "window_quarters_loaded": len(sources.loaded),
            "data_findings": int(evaluation.data_findings["count"].sum() or 0),
            "demo_key": pseudonym.is_demo(secret),
            "rule_runs": MetadataValue.path(str(written["rule_runs"])),
        }
        return MaterializeResult(
            metadata=md,
            check_results=[
                AssetCheckResult(
                    check_name="every_rule_evaluated",
                    asset_key=key,
                    passed=skipped.height == 0,
                    severity=AssetCheckSeverity.ERROR
                    if not evaluation.processed
                    else AssetCheckSeverity.WARN,
                    metadata={
                        "not_evaluated": MetadataValue.md(
                            "| rule | reason |\n| --- | --- |\n"
                            + "\n".join(
                                f"| {r} | {why} |"
                                for r, why in skipped.select("rule_id", "reason").iter_rows()
                            )
                        )
                        if skipped.height
                        else "none"
                    },
                )
            ],
        )

    return warnings


def _publish_asset():
    key = AssetKey([OUTPUTS, "published"])

    @asset(
        key=key,
        partitions_def=QUARTERS,
        group_name=OUTPUTS,
        deps=[
            AssetKey([POLICY, "warnings"]),
            AssetKey([GATE, "feedback"]),
            AssetKey([GATE, "extract_quality"]),
        ],
        description="The quarter published (outputs.md): the lifecycle applied with the "
        "departments' feedback, the routed CSV files per department and county, the analyst "
        "tables, the quarter loaded into warehouse.duckdb, and quality_report.html.",
        kinds={"duckdb", "csv", "html"},
    )
    @_scrubbed
    def published(context: AssetExecutionContext, paths: SafetynetPaths) -> MaterializeResult:
        from pipelines import outputs, reports, warehouse

        secret = _pseudonym_key()
        out = Path(paths.out)
        quarter = Quarter.parse(context.partition_key)
        done = outputs.publish(out, quarter, secret)
        loaded = warehouse.load_quarter(out, str(quarter))
        report = reports.write_quality_report(out, str(quarter))
        statuses = dict(done.lifecycle.group_by("status").len().iter_rows())
        return MaterializeResult(
            metadata={
                "warnings": done.warnings.height,
                **{f"lifecycle_{s.lower()}": n for s, n in sorted(statuses.items())},
                "feedback_rows_applied": done.feedback_rows,
                "routed_files": len(done.routed_files),
                "warehouse_rows": sum(loaded.values()),
                "routed": MetadataValue.path(str(out / str(quarter) / "routed")),
                "warehouse": MetadataValue.path(str(out / "warehouse.duckdb")),
                "quality_report": MetadataValue.path(str(report)),
            }
        )

    return published


def _build_docs(out: Path) -> Path | None:
    from pipelines import expectations

    return expectations.build_data_docs(out)


def build_definitions(landing: str | os.PathLike, out: str | os.PathLike) -> Definitions:
    extract_assets = [_extract_asset(c) for c in extract_contracts()]
    keys = [extract_key(c) for c in extract_contracts()]
    job = define_asset_job(
        JOB_NAME,
        executor_def=in_process_executor,  # one writer; Polars uses both cores itself
        description="The quarterly comparison: every extract through its contract, the "
        "quarter's accounting, then the policy's rules.",
    )
    return Definitions(
        assets=[
            *extract_assets,
            feedback,
            _quality_asset(keys),
            _policy_asset(keys),
            _publish_asset(),
        ],
        jobs=[job],
        schedules=[build_quarterly_schedule(JOB_NAME)],
        sensors=[build_landing_sensor(JOB_NAME, QUARTERS)],
        resources={"paths": SafetynetPaths(landing=str(landing), out=str(out))},
    )


def _from_environment() -> Definitions:
    out = os.environ.get("SAFETYNET_OUT", "out/demo")
    landing = os.environ.get("SAFETYNET_LANDING", os.path.join(out, "landing"))
    return build_definitions(os.path.abspath(landing), os.path.abspath(out))


defs = _from_environment()
