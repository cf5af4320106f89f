"""The quarterly job's assets, partitioned by quarter (`2026Q3`): each calls one stage's step
and turns its result into Dagster metadata and asset checks.

| asset | stage step | check |
| --- | --- | --- |
| `<dept>/<extract>` (each) | `gate.stage.gate_extract` | `contract` (ERROR: registry, roster) |
| `gate/feedback` | `gate.stage.gate_feedback` | — |
| `gate/extract_quality` | `gate.stage.account` | — |
| `policy/warnings` | `policy.stage.evaluate_quarter` | `every_rule_evaluated` |
| `outputs/published` | `publish.stage.publish_quarter` | — |
| `whatif/comparison` (unpartitioned; launched with its config) | `policy.whatif.run` | — |

A failed extract is a failed *check*, never a failed step: the other extracts and the quarter go
on (policy.md §4 decides which rules then cannot be evaluated).

(No `from __future__ import annotations` here: Dagster reads the parameters' annotations.)
"""

import functools
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    StaticPartitionsDefinition,
    asset,
)
from dagster_pyspark import LazyPySparkResource

from pipelines.core import idnumbers
from pipelines.core.contracts import Contract, extract_contracts
from pipelines.core.departments import CORE_EXTRACTS
from pipelines.core.pseudonym import KeyMissing, is_demo
from pipelines.core.quarters import Quarter, quarter_range
from pipelines.gate import stage as gate
from pipelines.gate.accounting import ExtractResult, reconciliation_text
from pipelines.orchestration import spark_submission
from pipelines.orchestration.resources import (
    GreatExpectations,
    PolicyEngine,
    PseudonymKey,
    SafetynetPaths,
)
from pipelines.orchestration.results import (
    ACCOUNTING,
    FEEDBACK,
    GATE,
    OUTPUTS,
    POLICY,
    PUBLISHED,
    WARNINGS,
    WHATIF,
    extract_key,
    policy_result,
    published_result,
)
from pipelines.policy import stage as policy
from pipelines.policy.evaluate import summary_text
from pipelines.publish import stage as publish

# Fixed up front: changing the partition set later breaks backfills (dagster issues #21584, #30058).
QUARTERS = StaticPartitionsDefinition(quarter_range("2020Q1", "2040Q4"))


def _site_rebuilt_later(context: AssetExecutionContext) -> bool:
    """Whether this run's accounting step (`gate/extract_quality`) runs after this one and
    builds the quarter's Data Docs pages: then a step need not render its own first (the site
    ends the same). A step materialised without it renders its own."""
    steps = context.run.step_keys_to_execute
    return steps is None or ACCOUNTING.to_python_identifier() in steps


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


def extract_asset(contract: Contract):
    key = extract_key(contract)
    core = (contract.department, contract.extract) in CORE_EXTRACTS

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
    def _asset(
        context: AssetExecutionContext,
        paths: SafetynetPaths,
        great_expectations: GreatExpectations,
    ) -> MaterializeResult:
        gated = gate.gate_extract(
            Path(paths.landing),
            Path(paths.out),
            contract,
            Quarter.parse(context.partition_key),
            render_data_docs=not _site_rebuilt_later(context),
            log=context.log,
            gx_context=great_expectations.context(),
        )
        md = _metadata(gated.result, gated.validation)
        return MaterializeResult(
            metadata=md,
            check_results=[
                AssetCheckResult(
                    check_name="contract",
                    asset_key=key,
                    passed=gated.result.status == "PASSED",
                    # the registry and the roster are read by every rule: without them the
                    # quarter cannot be processed, so their failure is an ERROR
                    severity=AssetCheckSeverity.ERROR if core else AssetCheckSeverity.WARN,
                    metadata=md,
                )
            ],
        )

    return _asset


@asset(
    key=FEEDBACK,
    partitions_def=QUARTERS,
    group_name=GATE,
    description="Feedback of the receiving departments about earlier warnings (extracts.md §4), "
    "one file per department folder, through the feedback contract.",
    kinds={"polars", "parquet"},
)
def feedback(
    context: AssetExecutionContext,
    paths: SafetynetPaths,
    great_expectations: GreatExpectations,
) -> MaterializeResult:
    results = gate.gate_feedback(
        Path(paths.landing),
        Path(paths.out),
        Quarter.parse(context.partition_key),
        render_data_docs=not _site_rebuilt_later(context),
        log=context.log,
        gx_context=great_expectations.context(),
    )
    seen = [f"{r.department}: {r.status} ({r.rows_received:,} rows)" for r in results]
    return MaterializeResult(metadata={"files": ", ".join(seen) or "none"})


def quality_asset(extract_keys: list[AssetKey]):
    @asset(
        key=ACCOUNTING,
        partitions_def=QUARTERS,
        group_name=GATE,
        deps=[*extract_keys, FEEDBACK],
        description="extract_quality and quarantine_reasons for the quarter (outputs.md §2), "
        "and the Great Expectations Data Docs (outputs.md §4).",
        kinds={"parquet"},
    )
    def extract_quality(
        context: AssetExecutionContext,
        paths: SafetynetPaths,
        great_expectations: GreatExpectations,
    ):
        done = gate.account(
            Path(paths.out),
            Quarter.parse(context.partition_key),
            gx_context=great_expectations.context(),
        )
        results = done.results
        failed = [f"{r.department}/{r.extract}" for r in results if r.status != "PASSED"]
        context.log.info("reconciliation\n" + reconciliation_text(results))
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
                "extract_quality": MetadataValue.path(str(done.tables["extract_quality"])),
                "data_docs": MetadataValue.path(str(done.data_docs))
                if done.data_docs
                else "not built",
            }
        )

    return extract_quality


def _scrubbed(fn):
    """An unexpected error of the policy or publishing step fails the step with its message
    scrubbed of identity numbers: a database error may quote a value, and the original would
    reach Dagster's event log."""

    @functools.wraps(fn)
    def step(context: AssetExecutionContext, **resources) -> MaterializeResult:
        try:
            return fn(context, **resources)
        except Failure:
            raise
        except KeyMissing as e:
            raise Failure(str(e)) from None
        except Exception as e:  # noqa: BLE001 - re-raised, scrubbed
            raise Failure(f"{type(e).__name__}: {idnumbers.scrub(str(e))}") from None

    return step


def policy_asset(extract_keys: list[AssetKey]):
    key = WARNINGS

    @asset(
        key=key,
        partitions_def=QUARTERS,
        group_name=POLICY,
        deps=extract_keys,
        description="The quarter's comparison (policy.md): derived facts in DuckDB (or Spark) "
        "over the accepted rows, every rule of rules/catalogue, warnings with evidence, "
        "rule_runs and data findings.",
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
    def warnings(
        context: AssetExecutionContext,
        paths: SafetynetPaths,
        pseudonym: PseudonymKey,
        policy_engine: PolicyEngine,
        pyspark: LazyPySparkResource,
    ) -> MaterializeResult:
        secret = pseudonym.value()
        quarter = Quarter.parse(context.partition_key)
        if policy_engine.spark_submit:  # a Spark application of its own, through Dagster Pipes
            return spark_submission.submit(
                context, "policy", Path(paths.out), quarter, policy_engine, secret
            )
        done = policy.evaluate_quarter(
            Path(paths.out),
            quarter,
            secret,
            engine=policy_engine.engine,
            memory_limit=policy_engine.memory_limit,
            spark_session=policy_engine.spark_session(pyspark),
        )
        context.log.info(
            "policy\n"
            + summary_text(
                done.evaluation.warnings, done.evaluation.rule_runs, done.evaluation.data_findings
            )
        )
        return policy_result(done, demo_key=is_demo(secret))

    return warnings


def publish_asset():
    @asset(
        key=PUBLISHED,
        partitions_def=QUARTERS,
        group_name=OUTPUTS,
        deps=[WARNINGS, FEEDBACK, ACCOUNTING],
        description="The quarter published (outputs.md): the lifecycle applied with the "
        "departments' feedback, the routed CSV files per department and county, the analyst "
        "tables, the quarter loaded into warehouse.duckdb, and quality_report.html.",
        kinds={"duckdb", "csv", "html"},
    )
    @_scrubbed
    def published(
        context: AssetExecutionContext,
        paths: SafetynetPaths,
        pseudonym: PseudonymKey,
        policy_engine: PolicyEngine,
        pyspark: LazyPySparkResource,
    ) -> MaterializeResult:
        quarter = Quarter.parse(context.partition_key)
        if policy_engine.spark_submit:  # the lifecycle's comparison in a Spark application
            return spark_submission.submit(
                context, "publish", Path(paths.out), quarter, policy_engine, pseudonym.value()
            )
        done = publish.publish_quarter(
            Path(paths.out),
            quarter,
            pseudonym.value(),
            engine=policy_engine.engine,
            memory_limit=policy_engine.memory_limit,
            spark_session=policy_engine.spark_session(pyspark),
        )
        return published_result(Path(paths.out), quarter, done)

    return published


class WhatIfConfig(Config):
    """What an analyst fills in the launchpad: the comparison's name (default: the reform's),
    the published quarter, the reform file, and the date its values are taken on (default: the
    quarter's end)."""

    quarter: str
    reform_file: str
    name: str = ""
    as_of: str = ""


@asset(
    key=WHATIF,
    group_name="whatif",
    description="A policy reform (a parameter file holding only what changes) evaluated on a "
    "published quarter against its baseline: changes per rule × county × category, the page "
    "and the warehouse's whatif_runs / whatif_changes (docs/policy.md, What if).",
    kinds={"duckdb"},
)
def whatif_comparison(
    context: AssetExecutionContext,
    config: WhatIfConfig,
    paths: SafetynetPaths,
    pseudonym: PseudonymKey,
) -> MaterializeResult:
    import datetime as dt

    from pipelines.policy import whatif
    from pipelines.publish import warehouse
    from pipelines.publish.whatif_page import write_whatif_page

    out = Path(paths.out)
    try:
        reform = whatif.load_reform(Path(config.reform_file))
        as_of = dt.date.fromisoformat(config.as_of) if config.as_of else None
        result = whatif.run(
            out,
            Quarter.parse(config.quarter),
            reform,
            pseudonym.value(),
            as_of=as_of,
            name=config.name or None,
        )
    except (whatif.ReformError, whatif.NotPublished, KeyMissing, ValueError) as e:
        raise Failure(str(e)) from None
    folder = whatif.write(out, result)
    page = write_whatif_page(out, result.name)
    warehouse.load_whatif(out, result.name)
    context.log.info(whatif.summary_text(result))
    c = result.changes
    return MaterializeResult(
        metadata={
            "whatif": result.name,
            "quarter": str(result.quarter),
            "as_of": result.as_of.isoformat(),
            "baseline": result.baseline_from,
            "baseline_warnings": int(c["baseline_warnings"].sum()),
            "reform_warnings": int(c["reform_warnings"].sum()),
            "newly_flagged": int(c["newly_flagged"].sum()),
            "no_longer_flagged": int(c["no_longer_flagged"].sum()),
            "folder": MetadataValue.path(str(folder)),
            "page": MetadataValue.path(str(page)),
        }
    )


def all_assets() -> list:
    keys = [extract_key(c) for c in extract_contracts()]
    return [
        *(extract_asset(c) for c in extract_contracts()),
        feedback,
        quality_asset(keys),
        policy_asset(keys),
        publish_asset(),
        whatif_comparison,
    ]
