"""The cluster path: the policy and publishing steps as Spark applications of their own, started
by `spark-submit` through Dagster Pipes (docs/scale.md, "On a cluster").

With `SAFETYNET_SPARK_SUBMIT` set (the `policy_engine` resource's `spark_submit`, e.g.
`spark-submit --master yarn --deploy-mode client --num-executors 40 …`), the `policy/warnings`
and `outputs/published` assets do not start Spark themselves: `submit` runs that command with
this file as the application, `--step policy|publish --out DIR --quarter Q`, through Dagster's
`PipesSubprocessClient`, which passes the run's context in and reads the application's logs,
materialisation and check back. `main` is the application: it opens the Pipes connection, takes
the session `spark-submit` made (its master, executors and memory are the command's), runs the
stage's step exactly as the in-process path does (`policy.stage.evaluate_quarter`,
`publish.stage.publish_quarter` with engine `spark`), and reports the same metadata and checks
(`assets.policy_result`, `assets.published_result`).

The application runs SQL only (no Python on the executors): the executors need Spark alone; the
driver (the Dagster host in client mode) needs this package, and `--out` must be a folder the
driver and every executor read at the same path (a shared mount), as the staging Parquet is read
by the executors.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import Any

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, PipesSubprocessClient

from pipelines.core import idnumbers
from pipelines.core.quarters import Quarter
from pipelines.orchestration.resources import KEY_ENV, PolicyEngine

STEPS = ("policy", "publish")


def command(spark_submit: str, step: str, out: Path, quarter: Quarter) -> list[str]:
    """The `spark-submit` command line of one step (no secret in it: the key goes in the
    environment)."""
    application = [str(Path(__file__).resolve()), "--step", step, "--out", str(out)]
    return [*shlex.split(spark_submit), *application, "--quarter", str(quarter)]


def submit(
    context: AssetExecutionContext,
    step: str,
    out: Path,
    quarter: Quarter,
    engine: PolicyEngine,
    key: bytes,
) -> MaterializeResult:
    """Run one step as a Spark application and return what it reported."""
    return (
        PipesSubprocessClient()
        .run(
            context=context,
            command=command(engine.spark_submit, step, out, quarter),
            env={
                KEY_ENV: key.decode("utf-8"),
                "SAFETYNET_DUCKDB_MEMORY": engine.memory_limit,
                # the driver runs this package's Python (the executors run SQL only)
                "PYSPARK_DRIVER_PYTHON": sys.executable,
                "PYSPARK_PYTHON": sys.executable,
            },
        )
        .get_materialize_result()
    )


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

    from dagster_pipes import open_dagster_pipes
    from pyspark.sql import SparkSession

    from pipelines.core.pseudonym import is_demo
    from pipelines.orchestration import assets
    from pipelines.orchestration.resources import Settings, key_from_environment
    from pipelines.policy import stage as policy
    from pipelines.publish import stage as publish

    with open_dagster_pipes() as pipes:
        try:
            session = SparkSession.builder.getOrCreate()  # as spark-submit configured it
            key = key_from_environment()
            memory = Settings.from_environment().duckdb_memory
            quarter = Quarter.parse(args.quarter)
            # the step exactly as the in-process path runs it, on the session spark-submit made
            options = {"engine": "spark", "memory_limit": memory, "spark_session": session}
            if args.step == "policy":
                done = policy.evaluate_quarter(args.out, quarter, key, **options)
                result = assets.policy_result(done, demo_key=is_demo(key))
            else:
                published = publish.publish_quarter(args.out, quarter, key, **options)
                result = assets.published_result(args.out, quarter, published)
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
