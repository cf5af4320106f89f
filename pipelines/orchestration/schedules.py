"""The quarterly schedule.

`quarterly_schedule` runs the quarter just ended on day `SAFETYNET_SCHEDULE_DAY` (default 15) of
the month after it, at 02:00 Asia/Shanghai: cron `0 2 15 1,4,7,10 *`. A tick on 2026-10-15
requests partition `2026Q3` (`Quarter.containing(tick).previous()`) with run key `2026Q3`, so a
quarter is scheduled once.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, schedule

from pipelines.core.quarters import Quarter
from pipelines.orchestration.resources import DEFAULT_SCHEDULE_DAY

TIMEZONE = "Asia/Shanghai"
SCHEDULE_NAME = "quarterly_schedule"
TRIGGER_TAG = "safetynet/trigger"


def today_in_shanghai() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


def quarter_for_tick(tick: dt.datetime | dt.date) -> Quarter:
    """The quarter just ended at a tick: the one before the quarter containing its date
    (in Asia/Shanghai)."""
    if isinstance(tick, dt.datetime):
        if tick.tzinfo is not None:
            tick = tick.astimezone(ZoneInfo(TIMEZONE))
        tick = tick.date()
    return Quarter.containing(tick).previous()


def build_quarterly_schedule(job_name: str, day: int = DEFAULT_SCHEDULE_DAY) -> ScheduleDefinition:
    if not 1 <= day <= 28:
        raise ValueError(f"schedule day {day} is out of range 1..28")

    @schedule(
        name=SCHEDULE_NAME,
        job_name=job_name,
        cron_schedule=f"0 2 {day} 1,4,7,10 *",
        execution_timezone=TIMEZONE,
        description=f"The quarter just ended, on day {day} of the following month at 02:00 "
        f"{TIMEZONE} (SAFETYNET_SCHEDULE_DAY).",
    )
    def quarterly_schedule(context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time or dt.datetime.now(ZoneInfo(TIMEZONE))
        quarter = str(quarter_for_tick(tick))
        return RunRequest(
            run_key=quarter,
            partition_key=quarter,
            tags={TRIGGER_TAG: SCHEDULE_NAME},
        )

    return quarterly_schedule
