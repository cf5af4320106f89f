"""The Dagster graph loads, and one quarter runs end to end through `safetynet run`."""

import os
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage
from stdnum.cn import ric

from pipelines.core.contracts import extract_contracts
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.orchestration import cli
from pipelines.orchestration.definitions import JOB_NAME, QUARTERS, build_definitions
from pipelines.policy.catalogue import catalogue


def _id(prefix: str, birth: str, seq: int) -> str:
    body = f"{prefix}{birth}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def _residents(n: int) -> str:
    lines = [
        "id_number,name,gender,birth_date,hukou_no,relation,county_code,residence_type,status,status_date"
    ]
    for i in range(n):
        number = _id("350102", f"19{50 + i % 40:02d}0101", 100 + i)
        gender = "M" if int(number[16]) % 2 else "F"
        birth = f"19{50 + i % 40:02d}-01-01"
        relation = "HEAD" if i % 3 == 0 else "CHILD"
        lines.append(f"{number},测试{i},{gender},{birth},H{i // 3},{relation},350102,URBAN,ACTIVE,")
    return "\n".join(lines) + "\n"


def test_definitions_load_with_every_extract_and_its_check(tmp_path):
    defs = build_definitions(tmp_path / "landing", tmp_path / "out")
    job = defs.resolve_job_def(JOB_NAME)
    assert job.partitions_def == QUARTERS
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    for c in extract_contracts():
        assert f"{c.department}/{c.extract}" in keys
    assert {"gate/feedback", "gate/extract_quality", "policy/warnings"} <= keys
    checks = {(k.asset_key, k.name) for k in graph.asset_check_keys}
    # each extract's `contract` check, and the policy's `every_rule_evaluated`
    assert len(checks) == len(extract_contracts()) + 1
    assert (AssetKey(["mps", "residents"]), "contract") in checks
    assert (AssetKey(["policy", "warnings"]), "every_rule_evaluated") in checks
    assert "2026Q3" in QUARTERS.get_partition_keys()


def test_a_broken_secondary_extract_fails_its_check_but_not_the_quarter(tmp_path, capsys):
    landing, out = tmp_path / "landing", tmp_path / "out"
    mps = landing / "2026Q3" / "mps"
    mps.mkdir(parents=True)
    (mps / "residents.csv").write_text(_residents(30), encoding="utf-8")
    # vehicles lacks a column: a file-level failure of a secondary extract
    (mps / "vehicles.csv").write_text("vehicle_id,id_number\nV1,x\n", encoding="utf-8")

    code = cli.run(landing, out, [Quarter.parse("2026Q3")])

    quality = pl.read_parquet(out / "2026Q3" / "tables" / "extract_quality.parquet")
    status = {(r["department"], r["extract"]): r for r in quality.iter_rows(named=True)}
    assert status[("mps", "residents")]["status"] == "PASSED"
    assert status[("mps", "residents")]["rows_accepted"] == 30
    assert status[("mps", "vehicles")]["status"] == "FAILED"
    assert "vehicle_class is missing" in status[("mps", "vehicles")]["failure_reasons"]
    assert status[("moe", "students")]["status"] == "MISSING"
    assert len(quality) == len(extract_contracts())
    # the roster is missing, so the quarter cannot be processed: non-zero exit
    assert code == 1
    printed = capsys.readouterr().out
    assert "mca/assistance_roster did not pass" in printed

    # the failed contract is a failed asset check, and the asset is still materialised
    instance = DagsterInstance.from_config(str(out / ".dagster"))
    try:
        vehicles = AssetKey(["mps", "vehicles"])
        assert instance.get_latest_materialization_event(vehicles) is not None
        executions = instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [AssetCheckKey(vehicles, "contract")]
        )
        (execution,) = executions.values()
        assert execution.status.value == "FAILED"
    finally:
        instance.dispose()

    # without the roster no rule can be evaluated: every rule says so, none raises anything
    runs = pl.read_parquet(out / "2026Q3" / "tables" / "rule_runs.parquet")
    assert runs.height == len(catalogue())
    assert set(runs["status"]) == {"NOT_EVALUATED"}
    assert all("mca/assistance_roster MISSING" in r for r in runs["reason"])
    assert pl.read_parquet(out / "2026Q3" / "tables" / "warnings.parquet").is_empty()


def test_the_job_refuses_to_start_without_the_pseudonym_key(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SAFETYNET_PSEUDONYM_KEY")
    (tmp_path / "landing" / "2026Q3").mkdir(parents=True)
    code = cli.run(tmp_path / "landing", tmp_path / "out", [Quarter.parse("2026Q3")])
    assert code == 2
    assert "SAFETYNET_PSEUDONYM_KEY is not set" in capsys.readouterr().out
    assert not (tmp_path / "out" / "2026Q3").exists()


@pytest.mark.parametrize("length", [1, 16, 31])
def test_a_key_shorter_than_32_bytes_is_refused_and_not_shown(
    tmp_path, monkeypatch, capsys, length
):
    short = "k" * (length - 1) + "Z"
    monkeypatch.setenv("SAFETYNET_PSEUDONYM_KEY", short)
    (tmp_path / "landing" / "2026Q3").mkdir(parents=True)
    code = cli.run(tmp_path / "landing", tmp_path / "out", [Quarter.parse("2026Q3")])
    said = capsys.readouterr().out
    assert code == 2
    assert f"SAFETYNET_PSEUDONYM_KEY is {length} bytes" in said and "at least 32" in said
    assert "secrets.token_urlsafe(32)" in said  # how to make a good one
    assert short not in said
    assert not (tmp_path / "out" / "2026Q3").exists()


def test_a_key_of_32_bytes_and_the_marked_demo_key_are_taken():
    from pipelines.core import pseudonym
    from pipelines.orchestration.resources import PseudonymKey, key_from_environment

    good = "x" * 32
    assert key_from_environment({"SAFETYNET_PSEUDONYM_KEY": good}) == good.encode()
    assert PseudonymKey(key=good).value() == good.encode()
    demo = pseudonym.DEMO_KEY
    assert key_from_environment({"SAFETYNET_PSEUDONYM_KEY": demo}) == demo.encode()
    with pytest.raises(pseudonym.KeyTooShort, match="31 bytes"):
        PseudonymKey(key="x" * 31).value()  # a Dagster run is refused the same way
    # bytes, not characters: 11 Chinese characters are 33 bytes of UTF-8
    assert key_from_environment({"SAFETYNET_PSEUDONYM_KEY": "密" * 11}) == ("密" * 11).encode()


def test_rerunning_a_quarter_gives_the_same_tables(tmp_path):
    landing, out = tmp_path / "landing", tmp_path / "out"
    mps = landing / "2026Q3" / "mps"
    mps.mkdir(parents=True)
    (mps / "residents.csv").write_text(_residents(12), encoding="utf-8")
    quarter = Quarter.parse("2026Q3")
    cli.run(landing, out, [quarter])
    first = pl.read_parquet(out / "2026Q3" / "tables" / "extract_quality.parquet")
    staged = pl.read_parquet(out / "2026Q3" / "staging" / "mps" / "residents.parquet")
    warnings = pl.read_parquet(out / "2026Q3" / "tables" / "rule_runs.parquet")
    cli.run(landing, out, [quarter])
    assert pl.read_parquet(out / "2026Q3" / "tables" / "rule_runs.parquet").equals(warnings)
    assert pl.read_parquet(out / "2026Q3" / "tables" / "extract_quality.parquet").equals(first)
    assert pl.read_parquet(out / "2026Q3" / "staging" / "mps" / "residents.parquet").equals(staged)
    assert Path(out / "2026Q3" / "staging" / "mps" / "residents.parquet").exists()


def test_steps_in_parallel_processes_give_the_same_outputs_as_one_after_another(
    tmp_path, monkeypatch
):
    """`SAFETYNET_MAX_CONCURRENT=2`: Dagster's multiprocess executor gates the extracts two at a
    time, each step in a process of its own, and the quarter's tables are the same."""
    landing = tmp_path / "landing"
    mps = landing / "2026Q3" / "mps"
    mps.mkdir(parents=True)
    (mps / "residents.csv").write_text(_residents(12), encoding="utf-8")
    quarter = Quarter.parse("2026Q3")
    serial_code = cli.run(landing, tmp_path / "serial", [quarter])
    monkeypatch.setenv("SAFETYNET_MAX_CONCURRENT", "2")
    assert cli.run(landing, tmp_path / "parallel", [quarter]) == serial_code
    for table in ("extract_quality", "quarantine_reasons", "rule_runs", "warnings"):
        serial, parallel = (
            pl.read_parquet(tmp_path / run / "2026Q3" / "tables" / f"{table}.parquet")
            for run in ("serial", "parallel")
        )
        assert serial.equals(parallel), table
    runs = DagsterInstance.from_config(str(Outputs(tmp_path / "parallel").dagster_home))
    try:
        (record,) = runs.get_run_records()
        events = runs.all_logs(record.dagster_run.run_id)
        pids = {
            e.dagster_event.pid
            for e in events
            if e.dagster_event and e.dagster_event.event_type_value == "STEP_START"
        }
        # every step ran in a process of its own
        assert len(pids) > 20 and os.getpid() not in pids
        # what the step processes wrote through the pooled connections is Dagster's event log,
        # as its own storage class reads it
        stock = ConsolidatedSqliteEventLogStorage(runs.event_log_storage._base_dir)
        try:
            as_stock = stock.get_records_for_run(record.dagster_run.run_id, limit=10_000)
        finally:
            stock.dispose()
        assert [r.event_log_entry for r in as_stock.records] == events
    finally:
        runs.dispose()


def test_the_definitions_dagster_loads_are_configured_from_the_environment(tmp_path, monkeypatch):
    """`workspace.yaml` (and `make ui`) load `defs` lazily, configured by the environment."""
    from pipelines.orchestration.definitions import defs
    from pipelines.orchestration.schedules import SCHEDULE_NAME

    monkeypatch.setenv("SAFETYNET_OUT", str(tmp_path / "out"))
    monkeypatch.setenv("SAFETYNET_SCHEDULE_DAY", "20")
    loaded = defs()
    assert loaded.resolve_job_def(JOB_NAME).partitions_def == QUARTERS
    assert loaded.resolve_schedule_def(SCHEDULE_NAME).cron_schedule == "0 2 20 1,4,7,10 *"
    keys = {k.to_user_string() for k in loaded.resolve_asset_graph().get_all_asset_keys()}
    assert {"mps/residents", "policy/warnings", "outputs/published"} <= keys


def test_a_broken_packaged_file_stops_the_run_before_it_starts_naming_the_file(
    tmp_path, monkeypatch, capsys
):
    """The contracts, parameters and rules are checked when the definitions load: a broken one
    (here a parameter file) refuses the run with one line naming it, exit 2, nothing written."""
    from pipelines.core import parameters

    def broken(*args, **kwargs):
        raise parameters.ParameterError("dibao_standard.yaml: parameter dibao_standard: unit ''")

    monkeypatch.setattr(parameters, "parameters", broken)
    (tmp_path / "landing" / "2026Q3").mkdir(parents=True)
    code = cli.run(tmp_path / "landing", tmp_path / "out", [Quarter.parse("2026Q3")])
    printed = capsys.readouterr().out
    assert code == 2
    assert "safetynet: dibao_standard.yaml: parameter dibao_standard" in printed
    assert "Traceback" not in printed
    assert not (tmp_path / "out" / "2026Q3").exists()


def test_the_cluster_path_submits_each_spark_step_with_the_platform_command(tmp_path):
    """`SAFETYNET_SPARK_SUBMIT`: the policy and publishing steps become `spark-submit` of
    `orchestration/spark_application.py` (`orchestration/spark_submission.py` builds the command),
    with the platform's own options first and no secret on the command line; the metadata the
    application reports back keeps its Markdown and paths."""
    from dagster import MetadataValue

    from pipelines.orchestration import spark_application, spark_submission

    line = spark_submission.command(
        "spark-submit --master yarn --deploy-mode client --num-executors 40",
        "policy",
        tmp_path,
        Quarter.parse("2026Q3"),
    )
    assert line[:6] == [
        "spark-submit",
        "--master",
        "yarn",
        "--deploy-mode",
        "client",
        "--num-executors",
    ]
    assert line[7].endswith("pipelines/orchestration/spark_application.py")
    assert line[8:] == ["--step", "policy", "--out", str(tmp_path), "--quarter", "2026Q3"]
    assert not any("KEY" in part for part in line)
    carried = spark_application._pipes_metadata(
        {"n": 3, "table": MetadataValue.md("| a |"), "at": MetadataValue.path("/x")}
    )
    assert carried == {
        "n": 3,
        "table": {"raw_value": "| a |", "type": "md"},
        "at": {"raw_value": "/x", "type": "path"},
    }


def test_spark_submit_without_the_spark_engine_is_refused(tmp_path):
    from pipelines.orchestration.resources import Settings

    settings = Settings(landing=tmp_path, out=tmp_path, spark_submit="spark-submit")
    with pytest.raises(ValueError, match="choose the Spark engine"):
        build_definitions(tmp_path, tmp_path, settings)


def test_every_packaged_yaml_file_reads_as_pyyamls_safe_load_reads_it():
    """The contracts, parameters and rules are read with libyaml's parser (`read_yaml`); each
    file gives what PyYAML's own safe loader gives, and a broken one raises its YAMLError."""
    import yaml

    from pipelines.core.resources import CONTRACTS_DIR, RULES_DIR, read_yaml

    files = sorted([*CONTRACTS_DIR.rglob("*.yaml"), *RULES_DIR.rglob("*.yaml")])
    assert len(files) > 40
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert read_yaml(text) == yaml.safe_load(text), path.name
    with pytest.raises(yaml.YAMLError):
        read_yaml("name: [unclosed")
    with pytest.raises(yaml.YAMLError):  # safe: no Python objects
        read_yaml("x: !!python/object/apply:os.system ['true']")
