"""The quarterly job's asset keys, and what the policy and publishing steps report when they are
materialised: their metadata and the `every_rule_evaluated` check.

Both are read by the assets (`assets`), which run the steps in the Dagster process, and by the
Spark application (`spark_application`), which runs them under `spark-submit` and reports the same
materialisation back through Dagster Pipes; this module imports neither.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from dagster import AssetCheckResult, AssetCheckSeverity, AssetKey, MaterializeResult, MetadataValue

from pipelines.core.contracts import Contract
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy.catalogue import CATEGORIES
from pipelines.policy.stage import Evaluated
from pipelines.publish.stage import Published

# the groups, and the first part of every key
GATE = "gate"
POLICY = "policy"
OUTPUTS = "outputs"
FEEDBACK = AssetKey([GATE, "feedback"])
ACCOUNTING = AssetKey([GATE, "extract_quality"])
WARNINGS = AssetKey([POLICY, "warnings"])
PUBLISHED = AssetKey([OUTPUTS, "published"])
WHATIF = AssetKey(["whatif", "comparison"])


def extract_key(contract: Contract) -> AssetKey:
    return AssetKey([contract.department, contract.extract])


def policy_result(done: Evaluated, *, demo_key: bool) -> MaterializeResult:
    """The `policy/warnings` materialisation of an evaluated quarter: counts, the rules not
    evaluated, and the `every_rule_evaluated` check."""
    evaluation = done.evaluation
    runs = evaluation.rule_runs
    skipped = runs.filter(pl.col("status") == "NOT_EVALUATED")
    by_category = dict(evaluation.warnings.group_by("category").len().iter_rows())
    md = {
        "warnings": evaluation.warnings.height,
        **{f"warnings_{c.lower()}": by_category.get(c, 0) for c in CATEGORIES},
        "rules_evaluated": runs.height - skipped.height,
        "rules_not_evaluated": ", ".join(skipped["rule_id"].to_list()) or "none",
        "window_quarters_loaded": len(done.sources.loaded),
        "data_findings": int(evaluation.data_findings["count"].sum() or 0),
        "demo_key": demo_key,
        "rule_runs": MetadataValue.path(str(done.written["rule_runs"])),
    }
    return MaterializeResult(
        metadata=md,
        check_results=[
            AssetCheckResult(
                check_name="every_rule_evaluated",
                asset_key=WARNINGS,
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


def published_result(out: Path, quarter: Quarter, done: Published) -> MaterializeResult:
    """The `outputs/published` materialisation of a published quarter."""
    statuses = dict(done.routed.lifecycle.group_by("status").len().iter_rows())
    outputs = Outputs(out)
    return MaterializeResult(
        metadata={
            "warnings": done.routed.warnings.height,
            **{f"lifecycle_{s.lower()}": n for s, n in sorted(statuses.items())},
            "feedback_rows_applied": done.routed.feedback_rows,
            "routed_files": len(done.routed.routed_files),
            "warehouse_rows": sum(done.warehouse_rows.values()),
            "routed": MetadataValue.path(str(outputs.quarter(quarter).routed)),
            "warehouse": MetadataValue.path(str(outputs.warehouse)),
            "quality_report": MetadataValue.path(str(done.report)),
        }
    )
