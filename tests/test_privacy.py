"""No full identity number or name leaves the files meant to hold them.

Identity numbers and names may appear only in the staging tables (the policy engine's input), the
quarantine files (which go back to the sending department), the routing stage's own files
(`policy/`) and the routed files (each for its receiving department). Everything else a quarter
writes — logs, exceptions, Dagster's event log and metadata, the quality and analyst tables, the
warehouse, the quality report, the gate's JSON, the Great Expectations stores and Data Docs — is
scanned for every identity number and name of the landing data.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance

from pipelines.core import idnumbers
from pipelines.core.quarters import Quarter
from pipelines.gate import checks
from pipelines.generate.samples import contract_named, make_rows, plant, write_extract
from pipelines.orchestration import cli

QUARTER = Quarter(2026, 3)
ALLOWED = ("staging", "quarantine", "policy")  # where personal data is meant to be


def _landing(landing: Path) -> tuple[set[str], set[str]]:
    """A quarter with clean and broken extracts; returns (identity numbers, names) sent."""
    ids: set[str] = set()
    names: set[str] = set()
    residents = contract_named("mps.residents")
    rows = make_rows(residents, 80, seed=3)
    plant(rows, residents, "gender.codes", 5)
    plant(rows, residents, "id_number.check_character", 9)
    plant(rows, residents, "duplicate_key", 20)
    rows[30]["id_number"] = rows[30]["id_number"][:6] + rows[30]["id_number"][8:17]  # 15 digits
    write_extract(landing, residents, rows, fmt="csv")
    roster = contract_named("mca.assistance_roster")
    roster_rows = make_rows(roster, 40, seed=4)
    plant(roster_rows, roster, "county_code.invalid_county", 3)
    write_extract(landing, roster, roster_rows, fmt="xlsx")
    vehicles = contract_named("mps.vehicles")
    vehicle_rows = make_rows(vehicles, 30, seed=5)
    for i in range(0, 30, 3):  # a third bad: the extract fails at file level
        plant(vehicle_rows, vehicles, "id_number.address_code", i)
    write_extract(landing, vehicles, vehicle_rows, fmt="parquet")
    for table in (rows, roster_rows, vehicle_rows):
        for row in table:
            ids.add(row["id_number"].strip())
            if "name" in row:
                names.add(row["name"].strip())
    ids |= {idnumbers.normalise_text(x) for x in ids}
    return {x for x in ids if len(x) >= 15}, {n for n in names if n}


def _dagster_text(out: Path) -> str:
    """Every message and metadata entry of every run in the instance kept under `<out>`."""
    instance = DagsterInstance.from_config(str(out / ".dagster"))
    try:
        parts = []
        for run in instance.get_runs():
            for entry in instance.all_logs(run.run_id):
                parts.append(entry.message or "")
                event = entry.dagster_event
                if event is not None:
                    parts.append(repr(event.event_specific_data))
        return "\n".join(parts)
    finally:
        instance.dispose()


def _files_text(out: Path, allowed: tuple[str, ...] = ALLOWED) -> str:
    parts = []
    for path in sorted(out.rglob("*")):
        if not path.is_file() or set(path.relative_to(out).parts) & set(allowed):
            continue
        if path.suffix == ".duckdb":
            parts.append(_duckdb_text(path))
            continue
        if path.suffix == ".parquet":
            frame = pl.read_parquet(path)
            parts.append(frame.select(pl.all().cast(pl.String)).write_csv())
        else:
            parts.append(path.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _duckdb_text(path: Path) -> str:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()]
        return "\n".join(
            con.sql(f"select * from {t}").pl().select(pl.all().cast(pl.String)).write_csv()
            for t in tables
        )
    finally:
        con.close()


def _leaks(text: str, ids: set[str], names: set[str]) -> list[str]:
    found = [f"identity number {idnumbers.mask(x)}" for x in ids if x in text]
    found += [f"name of {len(n)} characters" for n in names if n in text]
    return found


def test_a_quarter_leaks_no_identity_number_or_name(tmp_path, capsys, caplog, monkeypatch):
    landing, out = tmp_path / "landing", tmp_path / "out"
    ids, names = _landing(landing)
    assert len(ids) > 100 and len(names) > 50

    # an unexpected error inside the gate whose message quotes a full identity number
    leaked_id = sorted(ids)[0]
    real_evaluate = checks.evaluate

    def evaluate(frame, contract, ctx, checks_=None):
        if contract.extract == "care_assessments":
            raise ValueError(f"cannot evaluate row with {leaked_id}")
        return real_evaluate(frame, contract, ctx, checks_)

    monkeypatch.setattr("pipelines.gate.extract.evaluate", evaluate)
    care = contract_named("mca.care_assessments")
    write_extract(landing, care, make_rows(care, 10, seed=6), fmt="csv")

    caplog.set_level(logging.DEBUG)
    cli.run(landing, out, [QUARTER], log_level="DEBUG")
    printed = capsys.readouterr()
    logged = "\n".join(r.getMessage() for r in caplog.records)

    quality = pl.read_parquet(out / "2026Q3" / "tables" / "extract_quality.parquet")
    status = dict(zip(quality["extract"], quality["status"], strict=True))
    assert status["residents"] == "PASSED"
    assert status["vehicles"] == "FAILED"
    assert status["care_assessments"] == "FAILED"  # the internal error, not the quarter

    for where, text in (
        ("stdout", printed.out),
        ("stderr", printed.err),
        ("log records", logged),
        ("Dagster event log", _dagster_text(out)),
        ("output files", _files_text(out)),
    ):
        assert text, where
        assert _leaks(text, ids, names) == [], where

    # the masked form is what auditors see instead
    reasons = pl.read_parquet(out / "2026Q3" / "tables" / "quarantine_reasons.parquet")
    examples = " ".join(reasons["examples"].to_list())
    assert re.search(r"\d{6}\*{8}\d{3}[\dX]", examples)
    assert idnumbers.mask(leaked_id) in printed.err + logged + _dagster_text(out)
    # and the internal error is one line in the event log, not a traceback (issue 13)
    assert "internal error ValueError" in _dagster_text(out)
    assert "Traceback" not in _dagster_text(out)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("row 350102199001011234 failed", "row 350102********1234 failed"),
        ("15 digits 350102900101123.", "15 digits 350102*****1123."),
    ],
)
def test_scrub_masks_numbers_in_messages(text, masked):
    assert idnumbers.scrub(text) == masked


def test_a_quarter_with_warnings_leaks_nothing_outside_the_routed_files(tmp_path, capsys, caplog):
    """The whole job on a generated quarter that raises warnings: stdout, logs, the Dagster event
    log and every output but staging, quarantine, the routing stage's own files and the routed
    files themselves hold no identity number or name of the landing data."""
    from pipelines.generate import generate

    landing, out = tmp_path / "landing", tmp_path / "out"
    generate(landing, "test", [QUARTER], 3)
    residents = pl.read_csv(
        next((landing / str(QUARTER) / "mps").glob("residents.*")),
        infer_schema=False,
        encoding="utf8-lossy",
    )
    caplog.set_level(logging.DEBUG)
    assert cli.run(landing, out, [QUARTER], log_level="DEBUG") == 0
    printed = capsys.readouterr()
    warnings = pl.read_parquet(out / str(QUARTER) / "policy" / "warnings.parquet")
    assert warnings.height > 50  # the scan below means something
    ids = set(warnings["id_number"]) | set(
        residents.select(idnumbers.normalise(pl.col(residents.columns[0])).drop_nulls()).to_series()
    )
    names = set(warnings["name"].drop_nulls())
    routed = list((out / str(QUARTER) / "routed").rglob("*.csv"))
    assert routed and any(x in routed[0].read_text(encoding="utf-8-sig") for x in ids)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for where, text in (
        ("stdout", printed.out),
        ("log records", logged),
        ("Dagster event log", _dagster_text(out)),
        ("output files", _files_text(out, allowed=(*ALLOWED, "routed"))),
    ):
        assert text, where
        assert _leaks(text, {x for x in ids if x and len(x) == 18}, names) == [], where


def test_an_error_in_the_policy_step_reaches_dagster_scrubbed(tmp_path, monkeypatch, capsys):
    """A database error quoting an identity number fails the step; the event log has it masked."""
    from pipelines.policy import evaluate as rules

    landing, out = tmp_path / "landing", tmp_path / "out"
    ids, _ = _landing(landing)
    leaked = sorted(ids)[1]

    def evaluate(*args, **kwargs):
        raise ValueError(f"Conversion Error: could not convert '{leaked}'")

    monkeypatch.setattr(rules, "evaluate_sources", evaluate)
    cli.run(landing, out, [QUARTER])
    logs = _dagster_text(out)
    assert idnumbers.mask(leaked) in logs  # the error is reported, masked
    assert leaked not in logs + capsys.readouterr().out
