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
  writer (DuckDB allows one writer per file: dagster issues #16248, #18746). Since Dagster makes
  no public promise about the order, a quarter's run whose previous quarter has not yet been
  processed is something the policy stage should refuse or flag, rather than trust the ordering
  alone.

The event log is one SQLite database for every run (Dagster's `ConsolidatedSqliteEventLogStorage`
under `<home>/history/`), made when the instance is first opened: with Dagster's default of one
database per run, steps that start together in processes of their own (`safetynet run
--max-concurrent`) race to create it ("UNIQUE constraint failed: alembic_version").

**Event log writes.** Dagster's SQLite storage opens a new engine and connection for every
write: a quarter writes about 260 events (the steps', the planned materialisations', the checks'),
each paying for a connection, a synced commit and, when the connection closes as the only one, a
WAL checkpoint. `EventLogStorage` keeps one engine per process with its connections pooled, and
sets `synchronous=NORMAL`, SQLite's own advice for a database in WAL mode: a commit is no longer
synced to disk one at a time; a power loss may lose the last events, never the database's
consistency, and a killed process loses nothing committed (figures: bench/README.md, "Issue 12,
third pass"). The tables and the file are Dagster's, unchanged, so the UI and `dagster`
commands read them as before.

An instance whose `dagster.yaml` was written by an earlier safetynet (`PREVIOUS_YAML`, exactly) is
brought up to this one, and one written in another folder (the output folder was copied, moved or
restored) is written again for this one; any other existing `dagster.yaml` keeps its own settings.
"""

from __future__ import annotations

import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

# Dagster's own storage class, public (`@public`, named in dagster.yaml as
# `dagster.core.storage.event_log`) but importable only from its private module: the one private
# Dagster import of the package (tests/test_architecture.py names it)
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from sqlalchemy import create_engine, event

from pipelines.core.layout import DAGSTER_HISTORY, DAGSTER_YAML

PREVIOUS_YAML = """\
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
# the same event log, its connections pooled (EventLogStorage below)
INSTANCE_YAML = PREVIOUS_YAML.replace(
    "  module: dagster.core.storage.event_log\n  class: ConsolidatedSqliteEventLogStorage\n",
    "  module: pipelines.orchestration.instance\n  class: EventLogStorage\n",
)
_BASE_DIR = re.compile(r"^    base_dir: (.*)$", re.MULTILINE)
BUSY_TIMEOUT_SECONDS = 30  # as Dagster's own SQLite storages wait for a lock


def write_instance_config(home: str | os.PathLike) -> Path:
    """Write `dagster.yaml` (one run at a time) into the Dagster home unless one is there; one
    safetynet wrote is brought up to date: an earlier safetynet's, or one written for the folder
    this home was copied, moved or restored from (Dagster takes the event log's folder only as
    a whole path, so the file names the folder it was written in)."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    path = home / DAGSTER_YAML
    wanted = INSTANCE_YAML.format(base_dir=home / DAGSTER_HISTORY)
    text = path.read_text(encoding="utf-8") if path.exists() else None
    if text is None or (text != wanted and _written_by_safetynet(text)):
        path.write_text(wanted, encoding="utf-8")
    return path


def _written_by_safetynet(text: str) -> bool:
    """Whether `text` is a `dagster.yaml` safetynet wrote, for whatever Dagster home."""
    found = _BASE_DIR.search(text)
    if found is None:
        return False
    return text in (
        PREVIOUS_YAML.format(base_dir=found[1]),
        INSTANCE_YAML.format(base_dir=found[1]),
    )


class EventLogStorage(ConsolidatedSqliteEventLogStorage):
    """Dagster's consolidated SQLite event log with one engine per process, its connections
    pooled, and `synchronous=NORMAL` (the module's docstring says why). Dagster opens every read
    and write through `_connect`, each one transaction, as in its own class."""

    @contextmanager
    def _connect(self):
        # made on first use (Dagster's __init__ connects before it returns), and again in a
        # process forked from this one: a child must not use its parent's connections
        pooled = getattr(self, "_pooled", None)
        if pooled is None or pooled[0] != os.getpid():
            engine = create_engine(
                self._conn_string, connect_args={"timeout": BUSY_TIMEOUT_SECONDS}
            )
            event.listen(engine, "connect", _synchronous_normal)
            self._pooled = pooled = (os.getpid(), engine)
        with pooled[1].connect() as conn, conn.begin():
            yield conn

    def dispose(self):
        super().dispose()
        pooled, self._pooled = getattr(self, "_pooled", None), None
        if pooled is not None and pooled[0] == os.getpid():
            pooled[1].dispose()


def _synchronous_normal(dbapi_connection, _record) -> None:
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


if __name__ == "__main__":  # `python -m pipelines.orchestration.instance <dagster home>` (make ui)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m pipelines.orchestration.instance <dagster home>")
    print(write_instance_config(sys.argv[1]))
