"""The schedule and the landing sensor, with Dagster's test utilities; the whole Definitions."""

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    RunRequest,
    build_schedule_context,
    build_sensor_context,
    validate_run_config,
)
from dagster._utils.schedules import cron_string_iterator

from pipelines.core.quarters import Quarter
from pipelines.gate import arrival
from pipelines.gate.arrival import departments
from pipelines.orchestration.definitions import JOB_NAME, QUARTERS, build_definitions
from pipelines.orchestration.instance import (
    INSTANCE_YAML,
    PREVIOUS_YAML,
    EventLogStorage,
    write_instance_config,
)
from pipelines.orchestration.resources import Settings
from pipelines.orchestration.schedules import (
    SCHEDULE_NAME,
    TRIGGER_TAG,
    build_quarterly_schedule,
    today_in_shanghai,
)
from pipelines.orchestration.sensors import DIGEST_TAG, SENSOR_NAME, build_landing_sensor
from pipelines.policy.engine import DEFAULT_MEMORY
from pipelines.policy.spark import spark_memory

SHANGHAI = ZoneInfo("Asia/Shanghai")
TODAY = dt.date(2026, 11, 29)  # the sensor's "today" in these tests: 2026Q4 is not over


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("defs")
    return build_definitions(base / "landing", base / "out").get_repository_def()


def _tick(schedule, when: dt.datetime, instance, repo):
    ctx = build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=repo
    )
    data = schedule.evaluate_tick(ctx)
    assert not data.skip_message
    (request,) = data.run_requests
    return request


# -- schedule ----------------------------------------------------------------------------------


def test_schedule_cron_timezone_and_day_setting(monkeypatch):
    s = build_quarterly_schedule(JOB_NAME)
    assert s.name == SCHEDULE_NAME and s.job_name == JOB_NAME
    assert s.cron_schedule == "0 2 15 1,4,7,10 *"
    assert s.execution_timezone == "Asia/Shanghai"
    monkeypatch.setenv("SAFETYNET_SCHEDULE_DAY", "20")
    day = Settings.from_environment().schedule_day
    assert build_quarterly_schedule(JOB_NAME, day).cron_schedule == "0 2 20 1,4,7,10 *"
    monkeypatch.setenv("SAFETYNET_SCHEDULE_DAY", "31")
    with pytest.raises(ValueError, match="SAFETYNET_SCHEDULE_DAY"):
        build_quarterly_schedule(JOB_NAME, Settings.from_environment().schedule_day)


@pytest.mark.parametrize("month", range(1, 13))
def test_schedule_requests_the_quarter_before_the_tick_in_every_month(month, instance, repo):
    s = build_quarterly_schedule(JOB_NAME)
    request = _tick(s, dt.datetime(2026, month, 15, 2, tzinfo=SHANGHAI), instance, repo)
    expected = "2025Q4" if month <= 3 else f"2026Q{(month - 1) // 3}"
    assert request.partition_key == expected
    assert request.run_key == expected
    assert request.tags[TRIGGER_TAG] == SCHEDULE_NAME


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        # quarter boundaries in Shanghai time
        (dt.datetime(2026, 1, 1, 0, 0, tzinfo=SHANGHAI), "2025Q4"),
        (dt.datetime(2025, 12, 31, 23, 59, tzinfo=SHANGHAI), "2025Q3"),
        (dt.datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI), "2025Q4"),
        (dt.datetime(2026, 4, 1, 0, 0, tzinfo=SHANGHAI), "2026Q1"),
        (dt.datetime(2026, 6, 30, 12, 0, tzinfo=SHANGHAI), "2026Q1"),
        (dt.datetime(2026, 7, 1, 0, 0, tzinfo=SHANGHAI), "2026Q2"),
        (dt.datetime(2026, 9, 30, 12, 0, tzinfo=SHANGHAI), "2026Q2"),
        (dt.datetime(2026, 10, 1, 0, 0, tzinfo=SHANGHAI), "2026Q3"),
        # 2026-03-31 17:00 UTC is already 2026-04-01 01:00 in Shanghai
        (dt.datetime(2026, 3, 31, 17, 0, tzinfo=dt.UTC), "2026Q1"),
    ],
)
def test_schedule_on_quarter_boundaries(when, expected, instance, repo):
    s = build_quarterly_schedule(JOB_NAME)
    assert _tick(s, when, instance, repo).partition_key == expected


def test_schedule_ticks_fall_on_day_15_after_each_quarter():
    s = build_quarterly_schedule(JOB_NAME)
    start = dt.datetime(2026, 1, 1, tzinfo=SHANGHAI).timestamp()
    it = cron_string_iterator(start, s.cron_schedule, s.execution_timezone)
    ticks = [next(it) for _ in range(4)]
    assert [(t.month, t.day, t.hour) for t in ticks] == [
        (1, 15, 2),
        (4, 15, 2),
        (7, 15, 2),
        (10, 15, 2),
    ]


# -- sensor ------------------------------------------------------------------------------------


def _deliver(landing, quarter: str, dept: str, content: str = "a,b\n1,2\n", manifest=None):
    """One tiny file per department extract folder (the sensor does not parse contents)."""
    folder = landing / quarter / dept
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    extract = sorted(departments()[dept])[0]
    path = folder / f"{extract}.csv"
    path.write_text(content, encoding="utf-8")
    if manifest is not None:
        sha = (
            manifest if isinstance(manifest, str) else hashlib.sha256(path.read_bytes()).hexdigest()
        )
        doc = {
            "department": dept,
            "quarter": quarter,
            "files": {path.name: {"rows": 1, "sha256": sha}},
        }
        (folder / "manifest.json").write_text(json.dumps(doc), encoding="utf-8")
    return path


def _deliver_all(landing, quarter: str, skip: str | None = None):
    for dept in departments():
        if dept != skip:
            _deliver(landing, quarter, dept)


def _resources(defs):
    """The resources the daemon gives the sensor: the Definitions' own `paths`."""
    return defs.get_repository_def().get_top_level_resources()


@pytest.fixture
def setup(tmp_path, instance):
    landing = tmp_path / "landing"
    landing.mkdir()
    defs = build_definitions(landing, tmp_path / "out")
    sensor = build_landing_sensor(JOB_NAME, QUARTERS, max_age=8, today=lambda: TODAY)

    def evaluate(cursor=None):
        ctx = build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=_resources(defs)
        )
        return sensor.evaluate_tick(ctx)

    return landing, evaluate


def test_the_eleven_departments_of_the_spec():
    assert set(departments()) == set(
        ["mca", "mps", "hrss", "nhsa", "moe", "mohurd", "mnr", "samr", "cdpf", "mara", "mem"]
    )


def test_sensor_waits_while_a_department_folder_is_missing(setup):
    landing, evaluate = setup
    _deliver_all(landing, "2026Q3", skip="mnr")
    data = evaluate()
    assert data.run_requests == []
    assert "mnr: no extract file" in data.skip_message
    # a folder holding only a feedback file or a stray file has not arrived either
    (landing / "2026Q3" / "mnr").mkdir()
    (landing / "2026Q3" / "mnr" / "feedback.csv").write_text("x\n")
    (landing / "2026Q3" / "mnr" / "notes.txt").write_text("x\n")
    assert evaluate().run_requests == []


def test_sensor_waits_while_a_manifest_hash_does_not_match(setup):
    landing, evaluate = setup
    _deliver_all(landing, "2026Q3")
    _deliver(landing, "2026Q3", "nhsa", manifest="0" * 64)
    data = evaluate()
    assert data.run_requests == []
    assert "nhsa: enrollments.csv does not match its sha256" in data.skip_message
    # a listed file that has not arrived yet
    _deliver(landing, "2026Q3", "nhsa", manifest=True)
    doc = json.loads((landing / "2026Q3" / "nhsa" / "manifest.json").read_text())
    doc["files"]["settlements.csv"] = {"rows": 3, "sha256": "1" * 64}
    (landing / "2026Q3" / "nhsa" / "manifest.json").write_text(json.dumps(doc))
    data = evaluate()
    assert data.run_requests == []
    assert "settlements.csv listed in manifest.json but absent" in data.skip_message


def test_sensor_requests_a_complete_quarter_once_and_again_after_a_resend(setup):
    landing, evaluate = setup
    _deliver_all(landing, "2026Q3")
    _deliver(landing, "2026Q3", "nhsa", manifest=True)  # a manifest that checks out
    first = evaluate()
    (request,) = first.run_requests
    assert isinstance(request, RunRequest)
    assert request.partition_key == "2026Q3"
    assert request.run_key.startswith("2026Q3:")
    assert request.tags[TRIGGER_TAG] == SENSOR_NAME
    assert request.run_key == f"2026Q3:{request.tags[DIGEST_TAG]}"
    # the cursor remembers the requested digest and the verified hash
    cursor = json.loads(first.cursor)
    assert cursor["requested"] == {"2026Q3": request.tags[DIGEST_TAG]}
    assert list(cursor["verified"]) == ["2026Q3/nhsa/enrollments.csv"]

    second = evaluate(first.cursor)
    assert second.run_requests == []
    assert second.cursor == first.cursor

    # the department re-sends its folder: new contents, a new run of that quarter
    path = _deliver(landing, "2026Q3", "mohurd", content="a,b\n1,2\n3,4\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    third = evaluate(second.cursor)
    (again,) = third.run_requests
    assert again.partition_key == "2026Q3"
    assert again.run_key != request.run_key
    assert evaluate(third.cursor).run_requests == []


def test_sensor_does_not_rehash_a_verified_file(setup, monkeypatch):
    landing, evaluate = setup
    _deliver_all(landing, "2026Q3")
    _deliver(landing, "2026Q3", "nhsa", manifest=True)
    first = evaluate()
    calls = []
    monkeypatch.setattr(arrival, "sha256_of", lambda p: calls.append(p) or "x")
    assert evaluate(first.cursor).run_requests == []
    assert calls == []


def test_sensor_requests_complete_quarters_oldest_first(setup):
    landing, evaluate = setup
    for quarter in ("2026Q2", "2025Q4", "2026Q1"):
        _deliver_all(landing, quarter)
    _deliver_all(landing, "2026Q3", skip="mem")  # incomplete: waits
    data = evaluate()
    assert [r.partition_key for r in data.run_requests] == ["2025Q4", "2026Q1", "2026Q2"]


def test_sensor_ignores_old_unended_and_foreign_folders(setup, tmp_path, instance):
    landing, evaluate = setup
    for quarter in ("2024Q3", "2024Q4", "2026Q4", "2019Q4"):  # too old, oldest kept, not ended
        _deliver_all(landing, quarter)
    (landing / "scratch").mkdir()
    data = evaluate()
    assert [r.partition_key for r in data.run_requests] == ["2024Q4"]
    # the age is a setting
    defs = build_definitions(landing, tmp_path / "out")
    wider = build_landing_sensor(JOB_NAME, QUARTERS, max_age=12, today=lambda: TODAY)
    ctx = build_sensor_context(instance=instance, definitions=defs, resources=_resources(defs))
    assert [r.partition_key for r in wider.evaluate_tick(ctx).run_requests] == [
        "2024Q3",
        "2024Q4",
    ]


def test_sensor_without_landing_folder_skips(tmp_path, instance):
    defs = build_definitions(tmp_path / "nowhere", tmp_path / "out")
    ctx = build_sensor_context(instance=instance, definitions=defs, resources=_resources(defs))
    data = defs.resolve_sensor_def(SENSOR_NAME).evaluate_tick(ctx)
    assert data.run_requests == [] and data.skip_message


# -- the whole Definitions ---------------------------------------------------------------------


def test_whole_definitions_with_schedule_and_sensor_load_and_validate(tmp_path, instance):
    landing = tmp_path / "landing"
    defs = build_definitions(landing, tmp_path / "out")
    Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    assert {s.name for s in repo.schedule_defs} == {SCHEDULE_NAME}
    assert {s.name for s in repo.sensor_defs} == {SENSOR_NAME}
    job = defs.resolve_job_def(JOB_NAME)
    validate_run_config(job, {"loggers": {"console": {"config": {"log_level": "WARNING"}}}})
    schedule = defs.resolve_schedule_def(SCHEDULE_NAME)
    sensor = defs.resolve_sensor_def(SENSOR_NAME)
    assert schedule.job_name == sensor.job_name == JOB_NAME
    # the schedule's request is a valid partition of the job, resolved through the repository
    ctx = build_schedule_context(
        instance=instance,
        scheduled_execution_time=dt.datetime(2026, 10, 15, 2, tzinfo=SHANGHAI),
        repository_def=repo,
    )
    (request,) = schedule.evaluate_tick(ctx).run_requests
    assert request.partition_key in QUARTERS.get_partition_keys()
    # the sensor in Definitions reads the landing folder of the `paths` resource
    previous = Quarter.containing(today_in_shanghai()).previous()
    _deliver_all(landing, str(previous))
    ctx = build_sensor_context(instance=instance, definitions=defs, resources=_resources(defs))
    (request,) = sensor.evaluate_tick(ctx).run_requests
    assert request.partition_key == str(previous)


def test_instance_config_makes_runs_serial(tmp_path):
    home = tmp_path / ".dagster"
    path = write_instance_config(home)
    assert path == home / "dagster.yaml"
    inst = DagsterInstance.from_config(str(home))
    try:
        assert type(inst.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert inst.get_concurrency_config().run_queue_config.max_concurrent_runs == 1
        # the event log: Dagster's consolidated SQLite database, its connections pooled
        storage = inst.event_log_storage
        assert isinstance(storage, EventLogStorage)
        assert storage.get_db_path().startswith(str(home / "history"))
        with storage.index_connection() as conn:
            first = conn.connection.dbapi_connection
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        with storage.run_connection(None) as conn:
            assert conn.connection.dbapi_connection is first  # pooled, not opened again
    finally:
        inst.dispose()
    # an existing dagster.yaml is left alone
    path.write_text("# mine\n")
    write_instance_config(home)
    assert path.read_text() == "# mine\n"
    # unless an earlier safetynet wrote it: then it gets the pooled event log
    path.write_text(PREVIOUS_YAML.format(base_dir=home / "history"))
    write_instance_config(home)
    assert path.read_text() == INSTANCE_YAML.format(base_dir=home / "history")
    assert "class: EventLogStorage" in path.read_text()
    # and one written for the folder this one was copied from names this folder's history
    path.write_text(INSTANCE_YAML.format(base_dir=tmp_path / "elsewhere" / "history"))
    write_instance_config(home)
    assert path.read_text() == INSTANCE_YAML.format(base_dir=home / "history")


def test_the_memory_cap_reaches_both_engines_and_its_default_is_the_one_the_readme_states(tmp_path):
    """An engineer reads the default cap in the README, sets SAFETYNET_DUCKDB_MEMORY to change
    it, and finds the value on DuckDB's resource and as the local Spark driver's memory."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert Settings.from_environment({}).duckdb_memory == DEFAULT_MEMORY
    assert f"`SAFETYNET_DUCKDB_MEMORY` (default `{DEFAULT_MEMORY}`)" in readme
    assert f"a local Spark driver's, `{spark_memory(DEFAULT_MEMORY)}`" in readme
    for value, driver in [("", spark_memory(DEFAULT_MEMORY)), ("12GB", "12g")]:
        settings = Settings.from_environment(
            {"SAFETYNET_DUCKDB_MEMORY": value, "SAFETYNET_OUT": str(tmp_path / "out")}
        )
        defs = build_definitions(settings.landing, settings.out, settings=settings)
        resources = defs.resources  # as given to Definitions
        assert resources["policy_engine"].memory_limit == (value or DEFAULT_MEMORY)
        assert resources["pyspark"].spark_config["spark.driver.memory"] == driver
