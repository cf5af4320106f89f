"""The landing sensor: a quarter's run starts once every department has delivered.

`landing_sensor` (stopped by default; start it in the UI) asks the gate whether a quarter's
landing folder has arrived (`gate/arrival.py`: every department's folder, manifests checked) and
requests a run per arrived quarter whose folder changed since it was last requested, oldest
first, with run key `<quarter>:<digest>`: a department that re-sends its folder starts that
quarter again. Quarters that have not ended, lie outside the job's partitions, or are more than
`SAFETYNET_SENSOR_MAX_AGE` quarters (default 8) before the current one are ignored.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from dagster import (
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from pipelines.gate.arrival import arrivals
from pipelines.orchestration.resources import DEFAULT_MAX_AGE
from pipelines.orchestration.schedules import TRIGGER_TAG, today_in_shanghai

SENSOR_NAME = "landing_sensor"
DIGEST_TAG = "safetynet/landing_digest"


def build_landing_sensor(
    job_name: str,
    partitions_def: PartitionsDefinition | None = None,
    *,
    max_age: int = DEFAULT_MAX_AGE,
    today: Callable[[], dt.date] = today_in_shanghai,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """The landing sensor. `today` returns the current date in Asia/Shanghai (a parameter for
    tests)."""
    known = set(partitions_def.get_partition_keys()) if partitions_def is not None else None

    @sensor(
        name=SENSOR_NAME,
        job_name=job_name,
        minimum_interval_seconds=minimum_interval_seconds,
        required_resource_keys={"paths"},
        default_status=DefaultSensorStatus.STOPPED,
        description="Runs a quarter once every department's folder has arrived and its manifest "
        "checks out; again when a department re-sends its folder. Oldest quarter first.",
    )
    def landing_sensor(context: SensorEvaluationContext):
        landing = Path(context.resources.paths.landing)
        found = arrivals(landing, context.cursor, today=today(), max_age=max_age, known=known)
        if found.problem:
            context.log.warning(found.problem)
        for line in found.waiting:
            context.log.info(line)
        runs = [
            RunRequest(
                run_key=f"{quarter}:{digest}",
                partition_key=quarter,
                tags={TRIGGER_TAG: SENSOR_NAME, DIGEST_TAG: digest},
            )
            for quarter, digest in found.runs
        ]
        if runs:
            return SensorResult(run_requests=runs, cursor=found.cursor)
        reason = "; ".join(found.waiting) or (
            f"no new or changed quarter folder under {landing} ({found.span})"
        )
        return SensorResult(skip_reason=SkipReason(reason), cursor=found.cursor)

    return landing_sensor
