"""The cluster path's client: the policy and publishing steps submitted as Spark applications
of their own, through Dagster Pipes (docs/scale.md, "On a cluster").

With `SAFETYNET_SPARK_SUBMIT` set (the `policy_engine` resource's `spark_submit`, e.g.
`spark-submit --master yarn --deploy-mode client --num-executors 40 …`), the `policy/warnings`
and `outputs/published` assets do not start Spark themselves: `submit` runs that command with
the application file (`spark_application`) and `--step policy|publish --out DIR --quarter Q`,
through Dagster's `PipesSubprocessClient`, which passes the run's context in and reads the
application's logs, materialisation and check back.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from dagster import AssetExecutionContext, MaterializeResult, PipesSubprocessClient

from pipelines.core.quarters import Quarter
from pipelines.orchestration import spark_application
from pipelines.orchestration.resources import KEY_ENV, PolicyEngine


def command(spark_submit: str, step: str, out: Path, quarter: Quarter) -> list[str]:
    """The `spark-submit` command line of one step (no secret in it: the key goes in the
    environment)."""
    application = Path(spark_application.__file__).resolve()
    arguments = [str(application), "--step", step, "--out", str(out)]
    return [*shlex.split(spark_submit), *arguments, "--quarter", str(quarter)]


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
