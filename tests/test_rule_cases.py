"""Every rule case of `tests/rule_cases/*.yaml` (cases named as sentences, a case on
each side of every boundary and effective date), run through the real facts and rules. A rule's
cases are in `<RULE_ID>.yaml`; cases across rules in lower-case files named for what they test
(`tests/rulecase.py`)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
import pytest
import sqlglot

from pipelines.core.valuetypes import VALUE_TYPES
from pipelines.policy import catalogue
from pipelines.policy.engine import DuckDBEngine
from tests import rulecase

CASE_FILES = rulecase.load_case_files(Path(__file__).parent / "rule_cases")
CASES = [case for cases in CASE_FILES.values() for case in cases]


@pytest.fixture(scope="session")
def duckdb_session():
    """One DuckDB session per test process (each pytest-xdist worker, one thread each: the
    workers share the cores), reset for every case."""
    with DuckDBEngine(threads=1) as engine:
        yield engine


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rule_case(case: rulecase.Case, tmp_path: Path, duckdb_session: DuckDBEngine):
    evaluation, ids = rulecase.run(case, tmp_path, duckdb_session)
    raised = rulecase.subjects(evaluation, ids)
    for rule_id, expected in case.expect.items():
        assert raised.get(rule_id, []) == sorted(expected), rule_id
    statuses = dict(evaluation.rule_runs.select("rule_id", "status").iter_rows())
    for rule_id in case.not_evaluated:
        assert statuses[rule_id] == "NOT_EVALUATED", rule_id
        assert rule_id not in raised
    for rule_id in case.expect:
        if rule_id not in case.not_evaluated:
            assert statuses[rule_id] == "EVALUATED", rule_id
    handles = {v: k for k, v in ids.items()}
    for rule_id in {**case.evidence, **case.reason}:
        assert rule_id in raised, f"{rule_id} raised nothing to look at"
    for row in evaluation.warnings.iter_rows(named=True):
        subject = (
            handles.get(row["id_number"], row["id_number"])
            if row["subject_type"] == "PERSON"
            else row["household_id"]
        )
        wanted = case.evidence.get(row["rule_id"], {}).get(subject, {})
        evidence = json.loads(row["evidence"])
        for k, v in wanted.items():
            assert evidence[k] == v, (row["rule_id"], subject, k)
        piece = case.reason.get(row["rule_id"], {}).get(subject)
        if piece is not None:
            assert piece in row["reason_zh"], (row["rule_id"], row["reason_zh"])


def test_every_rule_has_cases_on_both_sides():
    """Each rule has a case where it raises a warning and one where a subject escapes it."""
    raises = {r for c in CASES for r, subjects in c.expect.items() if subjects}
    quiet = {r for c in CASES for r, subjects in c.expect.items() if not subjects}
    every = {r.rule_id for r in catalogue.catalogue()}
    assert every - raises == set()
    assert every - quiet == set()


def test_every_rule_has_its_case_file_and_each_case_sits_with_a_rule_it_names():
    """`rule_cases/<RULE_ID>.yaml` for every rule of the catalogue, each of its cases naming that
    rule; a lower-case file holds cases across rules, each naming several."""
    every = {r.rule_id for r in catalogue.catalogue()}
    assert every - set(CASE_FILES) == set()
    for file, cases in CASE_FILES.items():
        assert cases, f"{file}.yaml holds no case"
        for case in cases:
            named = set(case.expect) | set(case.not_evaluated)
            if file == file.lower():
                assert len(named) > 1, f"{file}.yaml: {case.name!r} names one rule: its file"
            else:
                assert file in every, f"{file}.yaml: no rule {file} in the catalogue"
                assert file in named, f"{file}.yaml: {case.name!r} does not name {file}"


def test_the_staged_types_the_cases_are_written_in_are_the_engines_column_types(tmp_path: Path):
    """A staging table's column of each value type (`core/valuetypes.py`, as the gate and
    `rulecase` write them) reads in DuckDB as the engine's type of the value type
    (`DuckDBEngine.TYPES`, from which Spark's are translated)."""
    path = tmp_path / "staged.parquet"
    pl.DataFrame(
        [pl.Series(name, [None], dtype=vt.staged) for name, vt in VALUE_TYPES.items()]
    ).write_parquet(path)
    with duckdb.connect() as con:
        described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()

    def spelled(sql_type: str) -> str:
        return sqlglot.exp.DataType.build(sql_type, dialect="duckdb").sql("duckdb")

    read = {name: spelled(sql_type) for name, sql_type, *_ in described}
    assert read == {name: spelled(DuckDBEngine.TYPES[name]) for name in VALUE_TYPES}
