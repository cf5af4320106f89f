"""The Dagster definitions: the assets, the `quarterly` job, the schedule, the sensor and the
resources, wired. `defs` is what `workspace.yaml` and `make ui` load (lazily, configured from the
environment: `resources.Settings`); `safetynet run` builds its own with the folders it is given.
"""

from __future__ import annotations

import os
from pathlib import Path

from dagster import (
    AssetSelection,
    Definitions,
    define_asset_job,
    definitions,
    in_process_executor,
    multiprocess_executor,
)

from pipelines.core import parameters
from pipelines.core.contracts import all_contracts
from pipelines.core.layout import restrict_new_files
from pipelines.core.quarters import Quarter
from pipelines.gate.checks import CheckContext, compile_checks
from pipelines.orchestration.assets import QUARTERS, all_assets
from pipelines.orchestration.resources import (
    GreatExpectations,
    PolicyEngine,
    SafetynetPaths,
    Settings,
    pseudonym_resource,
    pyspark_resource,
)
from pipelines.orchestration.results import WHATIF
from pipelines.orchestration.schedules import build_quarterly_schedule
from pipelines.orchestration.sensors import build_landing_sensor
from pipelines.policy.catalogue import catalogue

JOB_NAME = "quarterly"
__all__ = ["JOB_NAME", "QUARTERS", "build_definitions", "defs"]


def check_packaged_data() -> None:
    """The contracts (every check kind they name), the parameters and the rule catalogue a run
    will read, checked before any run starts: a broken file stops the definitions from loading
    (and `safetynet run` from starting), with a message naming the file."""
    for contract in all_contracts().values():
        compile_checks(contract, CheckContext(Quarter(2026, 3)))
    parameters.parameters()
    catalogue()


def build_definitions(
    landing: str | os.PathLike,
    out: str | os.PathLike,
    settings: Settings | None = None,
) -> Definitions:
    """The definitions for these folders. `settings` (the schedule's day, the sensor's reach,
    DuckDB's memory) default to `Settings`' defaults: the environment is read by the callers,
    `safetynet run` and `defs`."""
    check_packaged_data()
    restrict_new_files()  # before any step writes personal data (and in each step process)
    settings = settings or Settings(landing=landing, out=out)
    if settings.spark_submit and settings.engine != "spark":
        raise ValueError(
            "SAFETYNET_SPARK_SUBMIT submits Spark applications: choose the Spark engine "
            "(--engine spark or SAFETYNET_ENGINE=spark)"
        )
    job = define_asset_job(
        JOB_NAME,
        selection=AssetSelection.all() - AssetSelection.assets(WHATIF),
        executor_def=job_executor(settings.max_concurrent),
        description="The quarterly comparison: every extract through its contract, the "
        "quarter's accounting, then the policy's rules.",
    )
    return Definitions(
        assets=all_assets(),
        jobs=[job],
        schedules=[build_quarterly_schedule(JOB_NAME, settings.schedule_day)],
        sensors=[build_landing_sensor(JOB_NAME, QUARTERS, max_age=settings.sensor_max_age)],
        resources={
            "paths": SafetynetPaths(landing=str(landing), out=str(out)),
            "great_expectations": GreatExpectations(out=str(out)),
            "pseudonym": pseudonym_resource(),
            "policy_engine": PolicyEngine(
                engine=settings.engine,
                memory_limit=settings.duckdb_memory,
                spark_submit=settings.spark_submit,
            ),
            "pyspark": pyspark_resource(Path(out), settings.duckdb_memory),
        },
    )


# what each step's process needs, imported once in the forkserver and inherited by every step
PRELOAD = (
    "pipelines.orchestration.definitions",
    "pipelines.gate.expectations",
    "great_expectations",
)


def job_executor(max_concurrent: int):
    """One step at a time in the run's process (`max_concurrent` 1, the default: Polars uses
    every core within a step), or Dagster's multiprocess executor: up to `max_concurrent` steps
    at once, each in a process forked from a server that has imported safetynet and Great
    Expectations already, so the extracts, independent until the policy step, are gated in
    parallel (Great Expectations' writes stay one at a time: `gate.gx_store.one_writer`).
    On a 2-core machine the multiprocess executor is the slower (bench/README.md, "Both
    engines, and the executors")."""
    if max_concurrent <= 1:
        return in_process_executor
    return multiprocess_executor.configured(
        {
            "max_concurrent": max_concurrent,
            "start_method": {"forkserver": {"preload_modules": list(PRELOAD)}},
        },
        name="multiprocess",
    )


def quarterly_job(**settings):
    """The quarterly job as each step's process rebuilds it (`dagster.build_reconstructable_job`
    with the run's `Settings` as keyword arguments: a step process is forked from a server
    started once per process, whose environment may be an earlier run's). The pseudonym key is
    read from the environment (a Dagster `EnvVar`), so one process runs with one key."""
    chosen = Settings(
        **{**settings, "landing": Path(settings["landing"]), "out": Path(settings["out"])}
    )
    return build_definitions(chosen.landing, chosen.out, chosen).resolve_job_def(JOB_NAME)


@definitions
def defs() -> Definitions:
    """Loaded lazily by Dagster's tools (`workspace.yaml`), configured from the environment."""
    settings = Settings.from_environment()
    return build_definitions(settings.landing, settings.out, settings)
