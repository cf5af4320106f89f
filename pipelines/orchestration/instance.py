"""The Dagster instance under `<out>/.dagster`: one run at a time, oldest quarter first.

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

The event log is one SQLite database for every run (`ConsolidatedSqliteEventLogStorage` under
`<home>/history/`), made when the instance is first opened: with Dagster's default of one database
per run, steps that start together in processes of their own (`safetynet run --max-concurrent`)
race to create it ("UNIQUE constraint failed: alembic_version"). An instance whose `dagster.yaml`
was written before keeps its own settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pipelines.core.layout import DAGSTER_HISTORY, DAGSTER_YAML

INSTANCE_YAML = """\
# Written by safetynet (pipelines/orchestration/instance.py): one run at a time, so a backfill
# of several quarters runs them one after the other in the order submitted (oldest first), and
# DuckDB keeps one writer. QueuedRunCoordinator is Dagster's default run coordinator.
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
concurrency:
  runs:
    max_concurrent_runs: 1
# one event-log database for every run, made when the instance is first opened: with per-run
# databases, steps starting together in processes of their own (SAFETYNET_MAX_CONCURRENT > 1)
# race to create a run's database
event_log_storage:
  module: dagster.core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


def write_instance_config(home: str | os.PathLike) -> Path:
    """Write `dagster.yaml` (one run at a time) into the Dagster home unless one is there."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / DAGSTER_YAML
    if not path.exists():
        path.write_text(INSTANCE_YAML.format(base_dir=home / DAGSTER_HISTORY), encoding="utf-8")
    return path


if __name__ == "__main__":  # `python -m pipelines.orchestration.instance <dagster home>` (make ui)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pipelines.orchestration.instance <dagster home>")
    print(write_instance_config(sys.argv[1]))
