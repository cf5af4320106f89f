"""Configuration, read once at the top and passed down as Dagster resources.

The environment is read here and by the command line only (`Settings.from_environment`); the
stages get what they need as arguments from the assets, which get it from these resources:

- `paths`: the landing folder and the output folder (`safetynet run --landing --out`;
  `SAFETYNET_LANDING` and `SAFETYNET_OUT` for `make ui`);
- `great_expectations`: the run's Great Expectations context, opened once per run;
- `pseudonym`: the province's pseudonym key, `SAFETYNET_PSEUDONYM_KEY` as a Dagster `EnvVar`:
  its value is never written to Dagster's storage, and a run without it does not start;
- `policy_engine`: the engine of the policy stage and of the lifecycle's comparison
  (`safetynet run --engine`, `SAFETYNET_ENGINE`: `duckdb`, the default, or `spark`) and its
  memory, `SAFETYNET_DUCKDB_MEMORY` (default 7GB; past it DuckDB spills to `<out>/.duckdb/`,
  Spark to `<out>/.spark/`);
  `SAFETYNET_SPARK_SUBMIT` (or the resource's `spark_submit`) sends the policy and publishing
  steps to a cluster as Spark applications of their own, through Dagster Pipes
  (`orchestration/spark_submission.py`, `orchestration/spark_application.py`);
- `pyspark`: dagster-pyspark's `LazyPySparkResource`, the Spark session when the engine is
  Spark: one per run, started only when asked for, configured by `spark.local_config`
  (`local[*]`; a cluster's settings are in docs/scale.md);

and, for the definitions themselves, `SAFETYNET_SCHEDULE_DAY` (the schedule's day, 1–28),
`SAFETYNET_SENSOR_MAX_AGE` (how many quarters back the landing sensor looks) and
`SAFETYNET_MAX_CONCURRENT` (how many of the job's steps run at once: 1, the default, runs them
one after another in the run's process; more runs them on Dagster's multiprocess executor, each
step in a process of its own, the extracts gated in parallel).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from dagster_pyspark import LazyPySparkResource
from pydantic import PrivateAttr

from pipelines.core import pseudonym
from pipelines.core.layout import Outputs
from pipelines.policy import spark
from pipelines.policy.engine import DEFAULT_MEMORY, ENGINES

KEY_ENV = "SAFETYNET_PSEUDONYM_KEY"
DEFAULT_SCHEDULE_DAY = 15
DEFAULT_MAX_AGE = 8  # quarters


class SafetynetPaths(ConfigurableResource):
    """Where the landing folders are read and the outputs written."""

    landing: str
    out: str


class GreatExpectations(ConfigurableResource):
    """The run's Great Expectations context (`<out>/gx`, `gate.gx_store.RunContext`): opened
    once per run when a step first uses it, not once per extract (opening one reads and checks
    the configuration: ≈ 0.15 s), and again only if a parallel step changed the configuration."""

    out: str
    _context: Any = PrivateAttr(default=None)

    def context(self):
        if self._context is None:
            from pipelines.gate import gx_store  # Great Expectations: imported when used

            self._context = gx_store.RunContext(Path(self.out))
        return self._context


class PseudonymKey(ConfigurableResource):
    """The province's pseudonym key (it keys `person_key` and `warning_key`)."""

    key: str

    def value(self) -> bytes:
        if not self.key.strip():
            raise pseudonym.KeyMissing(missing_key_message())
        return pseudonym.checked(self.key.encode("utf-8"), KEY_ENV)


class PolicyEngine(ConfigurableResource):
    """The SQL engine of the policy stage and the lifecycle's comparison, and the memory it may
    use."""

    engine: str = "duckdb"  # one of policy.engine.ENGINES
    memory_limit: str = DEFAULT_MEMORY
    # the cluster path: the policy and publishing steps as Spark applications of their own,
    # started with this command (`spark-submit --master yarn …`, docs/scale.md) through Dagster
    # Pipes; empty: Spark runs in the step's process (`pyspark`)
    spark_submit: str = ""

    def spark_session(self, pyspark: LazyPySparkResource):
        """The run's Spark session when the engine is Spark (started here, once per run), else
        None (and no JVM)."""
        return pyspark.spark_session if self.engine == "spark" else None


def pyspark_resource(out: Path, memory_limit: str) -> LazyPySparkResource:
    """dagster-pyspark's resource with a local session's settings (`spark.local_config`)."""
    return LazyPySparkResource(
        spark_config=spark.local_config(Outputs(out).spark_spill, memory_limit)
    )


def missing_key_message() -> str:
    return (
        f"{KEY_ENV} is not set: safetynet needs the province's pseudonym key to write "
        "person_key and warning_key (set it from your secret store; `make demo` uses a "
        "demo key)"
    )


def key_from_environment(environ: Mapping[str, str] | None = None) -> bytes:
    """The key as the command line checks it before a run starts."""
    value = (os.environ if environ is None else environ).get(KEY_ENV, "")
    if not value.strip():
        raise pseudonym.KeyMissing(missing_key_message())
    return pseudonym.checked(value.encode("utf-8"), KEY_ENV)


def pseudonym_resource() -> PseudonymKey:
    return PseudonymKey(key=EnvVar(KEY_ENV))


def _int_setting(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range {low}..{high}")
    return value


@dataclass(frozen=True)
class Settings:
    """What the environment configures (the module docstring)."""

    landing: Path
    out: Path
    schedule_day: int = DEFAULT_SCHEDULE_DAY
    sensor_max_age: int = DEFAULT_MAX_AGE
    duckdb_memory: str = DEFAULT_MEMORY
    engine: str = "duckdb"
    spark_submit: str = ""
    max_concurrent: int = 1

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ValueError(f"engine {self.engine!r} is not one of {', '.join(sorted(ENGINES))}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        out = Path(env.get("SAFETYNET_OUT", "out/demo"))
        landing = Path(env.get("SAFETYNET_LANDING", "") or Outputs(out).demo_landing)
        return cls(
            landing=Path(landing).absolute(),
            out=Path(out).absolute(),
            # 28 at most: every month after a quarter (Jan, Apr, Jul, Oct) has that day
            schedule_day=_int_setting(env, "SAFETYNET_SCHEDULE_DAY", DEFAULT_SCHEDULE_DAY, 1, 28),
            sensor_max_age=_int_setting(env, "SAFETYNET_SENSOR_MAX_AGE", DEFAULT_MAX_AGE, 0, 400),
            duckdb_memory=env.get("SAFETYNET_DUCKDB_MEMORY", "").strip() or DEFAULT_MEMORY,
            engine=env.get("SAFETYNET_ENGINE", "").strip() or "duckdb",
            spark_submit=env.get("SAFETYNET_SPARK_SUBMIT", "").strip(),
            max_concurrent=_int_setting(env, "SAFETYNET_MAX_CONCURRENT", 1, 1, 256),
        )
