"""Quarterly operations in Dagster: the schedule, the landing sensor, and the order of backfills.

**`quarterly_schedule`** runs the quarter just ended on day `SAFETYNET_SCHEDULE_DAY` (default 15)
of the month after it, at 02:00 Asia/Shanghai: cron `0 2 15 1,4,7,10 *`. A tick on 2026-10-15
requests partition `2026Q3` (`Quarter.containing(tick).previous()`) with run key `2026Q3`, so a
quarter is scheduled once.

**`landing_sensor`** (stopped by default; start it in the UI) starts a quarter's run once every
department of extracts.md §3 has delivered. A quarter folder `<landing>/<quarter>/` has *arrived*
when every department has a folder holding at least one extract file (`<extract>.<ext>` for one
of its extracts) and, where the folder has a `manifest.json`, every file it lists is present with
the listed sha256 (row counts are the gate's business). The run key is the quarter plus a digest
of the department folders (every file's name, size and modification time): a department that
re-sends its folder changes the digest and the quarter runs again; an unchanged folder does not.
The cursor (JSON) keeps, per quarter, the digest last requested, and the sha256 of files already
verified against a manifest (by name, size and mtime), so a province-scale file is hashed once,
not at every evaluation. Quarters that have not ended yet, that lie outside the job's partitions,
or that are more than `SAFETYNET_SENSOR_MAX_AGE` quarters (default 8) before the current one are
ignored. Requests are emitted oldest quarter first.

**Backfills run in quarter order** — the twelve-month window needs earlier quarters first:

- `safetynet run --quarters 2025Q4..2026Q3` (and `make demo`) runs the quarters one after the
  other, in order, in one process (`cli.run`).
- In the UI, a backfill of the asset job `quarterly` is an *asset* backfill. Dagster 1.13 builds
  its run requests in `build_run_requests_with_backfill_policies` →
  `_build_run_requests_from_partitions_def_mapping`, which sorts them by partition key ("we don't
  make public guarantees about sort order, but make an effort to provide a consistent ordering
  that puts earlier time partitions before later", dagster/_core/definitions/
  automation_tick_evaluation_context.py); our keys `2025Q4` < `2026Q1` sort chronologically as
  strings. (A legacy job backfill submits `partition_names` in the order given, job_backfill.py.)
  Runs are submitted in that order, but submission order alone does not make them serial: with
  the default of 10 concurrent runs they would overlap.
- `QueuedRunCoordinator` (the default run coordinator) dequeues FIFO, stable-sorted by the
  `dagster/priority` tag (queued_run_coordinator_daemon.py: "sorted is stable, so fifo is
  maintained"), and with `concurrency: runs: max_concurrent_runs: 1` launches a run only when none
  is in progress. Together: one quarter at a time, oldest first. `write_instance_config` writes
  that `dagster.yaml` into the Dagster home (`<out>/.dagster`); it also keeps DuckDB to one
  writer (ENGINEERING.md). Since Dagster makes no public promise about the order, a quarter's run
  whose previous quarter has not yet been processed is something the policy stage should refuse
  or flag, rather than trust the ordering alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import (
    DefaultSensorStatus,
    PartitionsDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    schedule,
    sensor,
)

from pipelines.contracts import extract_contracts
from pipelines.ingest import MANIFEST, read_manifest, sha256_of
from pipelines.quarters import Quarter

TIMEZONE = "Asia/Shanghai"
SCHEDULE_NAME = "quarterly_schedule"
SENSOR_NAME = "landing_sensor"
TRIGGER_TAG = "safetynet/trigger"
DIGEST_TAG = "safetynet/landing_digest"
DEFAULT_SCHEDULE_DAY = 15
DEFAULT_MAX_AGE = 8  # quarters
INSTANCE_YAML = """\
# Written by safetynet (pipelines/operations.py): one run at a time, so a backfill of several
# quarters runs them one after the other in the order submitted (oldest first), and DuckDB keeps
# one writer. QueuedRunCoordinator is Dagster's default run coordinator.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 1
"""


def _int_setting(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ValueError(f"{name}={value} is out of range {low}..{high}")
    return value


def schedule_day() -> int:
    # 28 at most: every month after a quarter (Jan, Apr, Jul, Oct) has that day
    return _int_setting("SAFETYNET_SCHEDULE_DAY", DEFAULT_SCHEDULE_DAY, 1, 28)


def sensor_max_age() -> int:
    return _int_setting("SAFETYNET_SENSOR_MAX_AGE", DEFAULT_MAX_AGE, 0, 400)


def departments() -> dict[str, frozenset[str]]:
    """Department code → its extract names (extracts.md §3)."""
    out: dict[str, set[str]] = {}
    for c in extract_contracts():
        out.setdefault(c.department, set()).add(c.extract)
    return {d: frozenset(e) for d, e in sorted(out.items())}


def _today() -> dt.date:
    return dt.datetime.now(ZoneInfo(TIMEZONE)).date()


# -- schedule ----------------------------------------------------------------------------------


def quarter_for_tick(tick: dt.datetime | dt.date) -> Quarter:
    """The quarter just ended at a tick: the one before the quarter containing its date
    (in Asia/Shanghai)."""
    if isinstance(tick, dt.datetime):
        if tick.tzinfo is not None:
            tick = tick.astimezone(ZoneInfo(TIMEZONE))
        tick = tick.date()
    return Quarter.containing(tick).previous()


def build_quarterly_schedule(job_name: str, day: int | None = None) -> ScheduleDefinition:
    day = schedule_day() if day is None else day
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


# -- sensor ------------------------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


def quarter_status(
    folder: Path, quarter: str, depts: dict[str, frozenset[str]], verified: dict[str, list]
) -> tuple[str | None, list[str]]:
    """(digest, []) when every department of the quarter folder has arrived, else (None, what is
    still missing). `verified` maps `<quarter>/<dept>/<file>` to [size, mtime_ns, sha256] of files
    already hashed; it is updated in place."""
    waiting: list[str] = []
    entries: list[str] = []
    for dept, extracts in depts.items():
        dfolder = folder / dept
        files = _files(dfolder)
        if not any(p.stem in extracts for p in files):
            waiting.append(f"{dept}: no extract file")
            continue
        for p in files:
            st = p.stat()
            entries.append(f"{dept}/{p.name}\t{st.st_size}\t{st.st_mtime_ns}")
        if not (dfolder / MANIFEST).is_file():
            continue
        manifest = read_manifest(dfolder, dept, quarter)
        if manifest is None or manifest.files is None:
            waiting.append(f"{dept}: {MANIFEST} unreadable or for another folder")
            continue
        names = {p.name: p for p in files}
        for name, listed in sorted(manifest.files.items()):
            path = names.get(name)
            if path is None:
                waiting.append(f"{dept}: {name} listed in {MANIFEST} but absent")
                continue
            st = path.stat()
            key = f"{quarter}/{dept}/{name}"
            seen = verified.get(key)
            if seen and seen[0] == st.st_size and seen[1] == st.st_mtime_ns:
                sha = seen[2]
            else:
                sha = sha256_of(path)
                verified[key] = [st.st_size, st.st_mtime_ns, sha]
            if sha.lower() != str(listed.get("sha256", "")).strip().lower():
                waiting.append(f"{dept}: {name} does not match its sha256 in {MANIFEST}")
    if waiting:
        return None, waiting
    return hashlib.sha256("\n".join(entries).encode()).hexdigest()[:16], []


def _load_cursor(text: str | None) -> dict:
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        doc = {}
    if not isinstance(doc, dict):
        doc = {}
    return {
        "requested": dict(doc.get("requested") or {}),
        "verified": dict(doc.get("verified") or {}),
    }


def build_landing_sensor(
    job_name: str,
    partitions_def: PartitionsDefinition | None = None,
    *,
    max_age: int | None = None,
    today=_today,
    minimum_interval_seconds: int = 300,
) -> SensorDefinition:
    """The landing sensor. `max_age` (quarters) defaults to `SAFETYNET_SENSOR_MAX_AGE`;
    `today` returns the current date in Asia/Shanghai (a parameter for tests)."""
    max_age = sensor_max_age() if max_age is None else max_age
    depts = departments()
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
        cursor = _load_cursor(context.cursor)
        current = Quarter.containing(today())
        oldest = current
        for _ in range(max_age):
            oldest = oldest.previous()
        quarters = []
        if landing.is_dir():
            for folder in landing.iterdir():
                try:
                    q = Quarter.parse(folder.name)
                except ValueError:
                    continue
                if folder.is_dir() and oldest <= q < current and (known is None or str(q) in known):
                    quarters.append(q)
        quarters.sort()
        present = {str(q) for q in quarters}
        requested = {k: v for k, v in cursor["requested"].items() if k in present}
        verified = {k: v for k, v in cursor["verified"].items() if k.split("/", 1)[0] in present}
        runs, waiting = [], []
        for q in quarters:
            quarter = str(q)
            digest, missing = quarter_status(landing / quarter, quarter, depts, verified)
            if digest is None:
                waiting.append(f"{quarter} waits for " + "; ".join(missing))
                continue
            if requested.get(quarter) == digest:
                continue
            requested[quarter] = digest
            runs.append(
                RunRequest(
                    run_key=f"{quarter}:{digest}",
                    partition_key=quarter,
                    tags={TRIGGER_TAG: SENSOR_NAME, DIGEST_TAG: digest},
                )
            )
        for line in waiting:
            context.log.info(line)
        new_cursor = json.dumps({"requested": requested, "verified": verified}, sort_keys=True)
        if runs:
            return SensorResult(run_requests=runs, cursor=new_cursor)
        span = f"{oldest}..{current.previous()}"
        reason = "; ".join(waiting) or f"no new or changed quarter folder under {landing} ({span})"
        return SensorResult(skip_reason=SkipReason(reason), cursor=new_cursor)

    return landing_sensor


# -- instance ----------------------------------------------------------------------------------


def write_instance_config(home: str | os.PathLike) -> Path:
    """Write `dagster.yaml` (one run at a time) into the Dagster home unless one is there."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    if not path.exists():
        path.write_text(INSTANCE_YAML, encoding="utf-8")
    return path


if __name__ == "__main__":  # `python -m pipelines.operations <dagster home>` (make ui)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pipelines.operations <dagster home>")
    print(write_instance_config(sys.argv[1]))
