"""The cluster path's application: the policy or publishing step as a Spark application of its
own, the file `spark-submit` runs (`spark_submission` builds the command; docs/scale.md, "On a
cluster").

`main` opens the Dagster Pipes connection, takes the session `spark-submit` made (its master,
executors and memory are the command's), runs the stage's step exactly as the in-process path
does (`policy.stage.evaluate_quarter`, `publish.stage.publish_quarter` with engine `spark`), and
reports the same metadata and checks back (`results.policy_result`, `results.published_result`).

The application runs SQL only (no Python on the executors): the executors need Spark alone; the
driver (the Dagster host in client mode) needs this package, and `--out` must be a folder the
driver and every executor read at the same path (a shared mount), as the staging Parquet is read
by the executors.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from dagster import MetadataValue
from dagster_pipes import open_dagster_pipes
from pyspark.sql import SparkSession

from pipelines.core import idnumbers
from pipelines.core.pseudonym import is_demo
from pipelines.core.quarters import Quarter
from pipelines.orchestration.resources import Settings, key_from_environment
from pipelines.orchestration.results import policy_result, published_result
from pipelines.policy.stage import evaluate_quarter
from pipelines.publish.stage import publish_quarter

STEPS = ("policy", "publish")


def _pipes_value(value: Any) -> Any:
    """A Dagster metadata value as Pipes carries it."""
    if isinstance(value, MetadataValue):
        kind = {"MarkdownMetadataValue": "md", "PathMetadataValue": "path"}.get(
            type(value).__name__, "text"
        )
        return {"raw_value": str(value.value), "type": kind}
    return value


def _pipes_metadata(metadata: Any) -> dict[str, Any]:
    return {k: _pipes_value(v) for k, v in dict(metadata or {}).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a safetynet step as a Spark application")
    parser.add_argument("--step", choices=STEPS, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--quarter", required=True)
    args = parser.parse_args(argv)

    with open_dagster_pipes() as pipes:
        try:
            session = SparkSession.builder.getOrCreate()  # as spark-submit configured it
            key = key_from_environment()
            memory = Settings.from_environment().duckdb_memory
            quarter = Quarter.parse(args.quarter)
            # the step exactly as the in-process path runs it, on the session spark-submit made
            options = {"engine": "spark", "memory_limit": memory, "spark_session": session}
            if args.step == "policy":
                done = evaluate_quarter(args.out, quarter, key, **options)
                result = policy_result(done, demo_key=is_demo(key))
            else:
                published = publish_quarter(args.out, quarter, key, **options)
                result = published_result(args.out, quarter, published)
        except Exception as e:  # noqa: BLE001 - one scrubbed line, no traceback with values
            message = f"{args.step} {args.quarter}: {type(e).__name__}: {idnumbers.scrub(str(e))}"
            pipes.log.error(message)
            print(f"safetynet: {message}", file=sys.stderr)
            return 1
        pipes.report_asset_materialization(metadata=_pipes_metadata(result.metadata))
        for check in result.check_results or []:
            pipes.report_asset_check(
                check_name=check.check_name,
                passed=check.passed,
                severity=check.severity.value,
                metadata=_pipes_metadata(check.metadata),
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
