"""Policy reforms on a published quarter (`pipelines/policy/whatif.py`, `safetynet whatif`).

A generated `test` quarter (2026Q3) is published once; each test evaluates a reform on it.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.core import parameters
from pipelines.core.pseudonym import DEMO_KEY
from pipelines.core.quarters import Quarter
from pipelines.generate import generate
from pipelines.orchestration import cli
from pipelines.policy import facts, whatif

Q3 = Quarter(2026, 3)
AFTER = dt.date(2026, 10, 1)  # the day after the quarter ends
EXAMPLE = Path(__file__).resolve().parent.parent / "rules" / "reforms" / "dibao_plus_5pct.yaml"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("whatif")
    generate(root / "landing", "test", [Q3], seed=2)
    with pytest.MonkeyPatch.context() as env:  # the module's fixture runs before conftest's key
        env.setenv("SAFETYNET_PSEUDONYM_KEY", DEMO_KEY)
        assert cli.run(root / "landing", root / "out", [Q3], echo=lambda *_: None) == 0
    return root / "out"


def reform_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "reform.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def dibao(change: str, start: str = "2026-07-01") -> str:
    return f"""name: dibao_test
description: a test
reference: tests
parameters:
  - name: dibao_standard
    unit: yuan per person per month
    values:
      - from: {start}
        value: "{change}"
"""


def run(published: Path, path: Path, **kwargs) -> whatif.WhatIf:
    return whatif.run(published, Q3, whatif.load_reform(path), DEMO_KEY.encode(), **kwargs)


def test_the_baseline_reproduces_the_quarters_published_warnings_exactly(published, tmp_path):
    result = run(published, reform_file(tmp_path, dibao("+5%")))
    shown = pl.read_parquet(published / str(Q3) / "policy" / "warnings.parquet")
    assert shown.height > 20
    assert result.baseline_from == "the quarter's saved evaluation"
    assert result.baseline.warnings.sort("warning_key").equals(shown.sort("warning_key"))
    # and the quarter evaluated again from its staging tables gives the same warnings
    evaluated = evaluate(published)
    assert evaluated.warnings.equals(shown)
    assert evaluated.rule_runs.equals(
        pl.read_parquet(published / str(Q3) / "tables" / "rule_runs.parquet")
    )


def evaluate(published: Path, every=None):
    """The published quarter's facts and rules evaluated again, whole, from its staging tables
    (with the parameters `every`, the files' unless given)."""
    from pipelines.policy import facts
    from pipelines.policy.engine import DuckDBEngine
    from pipelines.policy.evaluate import evaluate_loaded_sources

    sources = facts.Sources.from_out(published, Q3)
    with DuckDBEngine(threads=1) as session:
        session.reset()
        facts.load(session, sources)
        return evaluate_loaded_sources(session, sources, DEMO_KEY.encode(), every)


def one_parameter(name: str, unit: str, value: str) -> str:
    return f"""name: {name}_test
description: a test
reference: tests
parameters:
  - name: {name}
    unit: {unit}
    values:
      - from: 2026-01-01
        value: {value}
"""


# one reform per kind of parameter and per fact model it reaches
REFORMS = {
    "dibao standard +5 %": dibao("+5%"),
    "dibao standard -10 %": dibao("-10%"),
    "tekun elderly age 50": one_parameter("tekun_elderly_age", "years", "50"),
    "edge multiplier 1.8": one_parameter(
        "dibao_edge_multiplier", "multiple of the dibao standard", "1.8"
    ),
    "business capital 20,000": one_parameter(
        "business_capital_limit", "yuan (registered capital)", "20000"
    ),
    "medical hardship at 2,000": one_parameter(
        "hardship_oop_12m", "yuan over twelve months", "2000"
    ),
    "working age 18-62": one_parameter("working_age", "years", "{min: 18, max: 62}"),
    "no car for the edge": one_parameter(
        "vehicle_value_limit", "yuan (assessed value)", "{DIBAO_EDGE: 0, RIGID_EXPENDITURE: 0}"
    ),
}


@pytest.mark.parametrize("text", REFORMS.values(), ids=REFORMS.keys())
def test_a_reform_on_the_saved_facts_equals_the_whole_quarter_evaluated_again_with_it(
    published, tmp_path, text
):
    """Only the fact models and rules a changed parameter reaches are evaluated again over the
    quarter's saved facts; the result is what evaluating everything again gives."""
    path = reform_file(tmp_path, text)
    result = run(published, path)
    assert result.baseline_from == "the quarter's saved evaluation"
    whole = evaluate(published, whatif.reformed(whatif.load_reform(path), Q3.end))
    assert result.reformed.warnings.equals(whole.warnings)
    assert result.reformed.rule_runs.equals(whole.rule_runs)
    assert result.reformed.data_findings.sort(pl.all()).equals(whole.data_findings.sort(pl.all()))
    if "business" not in text and "working_age" not in text:  # these change no warning here
        assert not result.reformed.warnings.equals(result.baseline.warnings)
    # some rule ran with the reform's value (and was evaluated again, not taken over)
    assert not result.reformed.rule_runs["parameters"].equals(
        result.baseline.rule_runs["parameters"]
    )


def test_the_saved_facts_serve_only_while_nothing_they_stand_on_has_changed(published, tmp_path):
    """A staging table written again after the quarter was evaluated, or the saved facts
    removed: the baseline is evaluated again from the staging tables, with the same result."""
    import os

    from pipelines.core.layout import Outputs

    path = reform_file(tmp_path, dibao("+5%"))
    first = run(published, path)
    q = Outputs(published).quarter(Q3)
    record = json.loads(q.saved_facts_record.read_text(encoding="utf-8"))
    assert {"raised", "int_persons"} <= set(record["saved"])
    assert f"{Q3}/staging/mps/residents.parquet" in record["files"]
    staging = q.staging("mps", "residents")
    st = staging.stat()
    os.utime(staging, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    try:
        again = run(published, path)
    finally:
        os.utime(staging, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (
        again.baseline_from
        == f"evaluated again: {Q3}/staging/mps/residents.parquet has changed since"
    )
    assert again.changes.equals(first.changes)
    assert run(published, path).baseline_from == "the quarter's saved evaluation"


def test_an_output_folder_moved_elsewhere_runs_the_next_quarter_and_a_reform_on_its_own_files(
    published, tmp_path
):
    """A province restores `<out>` from a backup on another machine (another path): the next
    quarter reads the moved quarter's staging tables as part of W, and a reform on the moved
    quarter uses its saved evaluation, because every path recorded inside `<out>` is relative
    to it. Nothing left in the folder names the one it came from, but the Dagster event log's
    history of the runs made there."""
    import shutil

    original, moved = tmp_path / "original", tmp_path / "restored" / "out"
    shutil.copytree(published, original)  # the module's folder stays for the other tests
    shutil.copytree(original, moved)
    shutil.rmtree(original)
    q4 = Q3.next()
    generate(tmp_path / "landing", "test", [q4], seed=2)
    assert cli.run(tmp_path / "landing", moved, [q4], echo=lambda *_: None) == 0

    sources = facts.Sources.from_out(moved, q4)
    assert str(Q3) in {q for q, _, _ in sources.staging}  # W reached the moved quarter
    assert all(p.is_relative_to(moved) and p.is_file() for p in sources.staging.values())
    result = run(moved, reform_file(tmp_path, dibao("+5%")))
    assert result.baseline_from == "the quarter's saved evaluation"
    shown = pl.read_parquet(moved / str(Q3) / "policy" / "warnings.parquet")
    assert result.baseline.warnings.sort("warning_key").equals(shown.sort("warning_key"))

    history = moved / ".dagster" / "history"
    naming_the_original = [
        p.relative_to(moved).as_posix()
        for p in moved.rglob("*")
        if p.is_file()
        and not p.is_relative_to(history)
        and str(original).encode() in p.read_bytes()
    ]
    assert naming_the_original == []


@pytest.mark.parametrize("change", ["+0%", "-0%"])
def test_a_reform_that_changes_nothing_reports_zero_changes(published, tmp_path, change):
    result = run(published, reform_file(tmp_path, dibao(change)))
    c = result.changes
    assert c["baseline_warnings"].sum() == c["reform_warnings"].sum() > 0
    assert c["newly_flagged"].sum() == c["no_longer_flagged"].sum() == 0
    assert c["monthly_cost_change_yuan"].drop_nulls().sum() == 0


def test_raising_the_standard_5pct_flags_households_between_the_old_and_the_new_line(
    published, tmp_path
):
    """Every household NE_DIBAO newly flags has an income at or above the old dibao line
    (standard × members) and below the new one; every household it flagged before it still
    flags; the cost change is the gaps' growth, from the evidence."""
    result = run(published, reform_file(tmp_path, dibao("+5%")))
    old = parameters.parameters()["dibao_standard"]
    before = result.baseline.warnings.filter(pl.col("rule_id") == "NE_DIBAO")
    after = result.reformed.warnings.filter(pl.col("rule_id") == "NE_DIBAO")
    new = after.filter(~pl.col("warning_key").is_in(before["warning_key"].implode()))
    assert new.height > 0, "the generated quarter has households just above the line"
    for county, evidence in new.select("county_code", "evidence").iter_rows():
        e = json.loads(evidence)
        income, size = Decimal(str(e["household_income"])), int(e["size"])
        standard = old.for_area(county, Q3.end)
        assert Decimal(str(e["dibao_standard"])) == (standard * Decimal("1.05")).quantize(
            Decimal("0.01")
        )
        assert standard * size <= income < Decimal(str(e["dibao_standard"])) * size
    assert set(before["warning_key"]) <= set(after["warning_key"])  # nobody drops out of it
    gap = sum(
        Decimal(str(json.loads(x)["dibao_standard"])) * int(json.loads(x)["size"])
        - Decimal(str(json.loads(x)["household_income"]))
        for x in after["evidence"]
    ) - sum(
        Decimal(str(json.loads(x)["dibao_standard"])) * int(json.loads(x)["size"])
        - Decimal(str(json.loads(x)["household_income"]))
        for x in before["evidence"]
    )
    dibao_cost = result.changes.filter(pl.col("rule_id") == "NE_DIBAO")
    assert dibao_cost["monthly_cost_change_yuan"].drop_nulls().sum() == gap > 0


def test_a_reform_dated_after_the_quarter_changes_nothing_unless_as_of_says_so(published):
    without = run(published, EXAMPLE)
    assert without.as_of == Q3.end
    assert without.changes["newly_flagged"].sum() == 0
    assert without.changes["no_longer_flagged"].sum() == 0
    with_as_of = run(published, EXAMPLE, as_of=AFTER)
    assert with_as_of.changes["newly_flagged"].sum() > 0
    the_day_before = run(published, EXAMPLE, as_of=AFTER - dt.timedelta(days=1))
    assert the_day_before.changes["newly_flagged"].sum() == 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (dibao("+5%").replace("dibao_standard", "dibao_standrd"), ":5: parameter 'dibao_standrd'"),
        (dibao("+5%").replace("yuan per person per month", "yuan"), ":5: unit 'yuan'"),
        (dibao("+5%").replace("- from: 2026-07-01\n        value", "- value"), ":8: dibao"),
        (dibao("5 percent"), ":8: dibao_standard: '5 percent' is neither"),
        (dibao("+5%").replace("dibao_standard", "max_quarantine_share"), "gate or the lifecycle"),
    ],
    ids=["unknown parameter", "wrong unit", "value without a date", "bad change", "not a rule's"],
)
def test_a_reform_that_cannot_apply_is_refused_naming_file_and_line(tmp_path, text, says):
    path = reform_file(tmp_path, text)
    with pytest.raises(whatif.ReformError) as refused:
        whatif.load_reform(path)
    assert str(refused.value).startswith("reform.yaml:") and says in str(refused.value)


def test_an_absolute_value_replaces_the_parameter(published, tmp_path):
    """tekun_elderly_age from 60 to 58: a person of 58 or 59 may be newly tekun-eligible, and
    nobody the baseline flagged drops out."""
    text = """name: tekun_58
description: a test
reference: tests
parameters:
  - name: tekun_elderly_age
    unit: years
    values:
      - from: 2026-01-01
        value: 58
"""
    result = run(published, reform_file(tmp_path, text))
    assert parameters.value("tekun_elderly_age", Q3.end) == 60
    c = result.changes.filter(pl.col("rule_id") == "NE_TEKUN")
    assert c["no_longer_flagged"].sum() == 0
    assert c["reform_warnings"].sum() >= c["baseline_warnings"].sum()


def test_safetynet_whatif_writes_its_folder_and_says_what_changed(published, capsys):
    code = cli.main(
        [
            "whatif",
            "--out",
            str(published),
            "--quarter",
            "2026Q3",
            "--reform",
            str(EXAMPLE),
            "--as-of",
            "2026-10-01",
        ]
    )
    said = capsys.readouterr().out
    assert code == 0
    assert "what if: dibao_plus_5pct on 2026Q3" in said and "newly flagged" in said
    folder = published / "whatif" / "dibao_plus_5pct"
    changes = pl.read_parquet(folder / "changes.parquet")
    assert set(changes.columns) == set(whatif.CHANGE_SCHEMA)
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert record["as_of"] == "2026-10-01" and record["newly_flagged"] > 0
    assert "id_number" not in changes.columns and "warning_key" not in changes.columns
    assert (
        cli.main(
            ["whatif", "--out", str(published), "--quarter", "2025Q1", "--reform", str(EXAMPLE)]
        )
        == 2
    )


def test_the_warehouse_holds_the_comparison_with_comments_and_no_person(published, capsys):
    import duckdb

    assert (
        cli.main(
            ["whatif", "--out", str(published), "--quarter", "2026Q3", "--reform", str(EXAMPLE)]
            + ["--as-of", "2026-10-01", "--name", "in_warehouse"]
        )
        == 0
    )
    capsys.readouterr()
    with duckdb.connect(str(published / "warehouse.duckdb"), read_only=True) as con:
        runs = con.sql("select * from whatif_runs where whatif = 'in_warehouse'").pl()
        changes = con.sql("select * from whatif_changes where whatif = 'in_warehouse'").pl()
        comments = con.sql(
            "select table_name, column_name, comment from duckdb_columns() "
            "where table_name like 'whatif%'"
        ).fetchall()
        tables = con.sql(
            "select table_name, comment from duckdb_tables() where table_name like 'whatif%'"
        ).fetchall()
    assert runs.height == 1 and runs["newly_flagged"][0] == changes["newly_flagged"].sum() > 0
    assert {t for t, _ in tables} == {"whatif_runs", "whatif_changes"}
    for *where, comment in [*comments, *tables]:
        assert comment, where
        assert " / " in comment and any("\u4e00" <= ch <= "\u9fff" for ch in comment)
    for column in ("id_number", "name", "warning_key", "person_key"):
        assert column not in runs.columns and column not in changes.columns


def test_the_page_is_self_contained_and_shows_the_totals(published, capsys):
    assert (
        cli.main(
            ["whatif", "--out", str(published), "--quarter", "2026Q3", "--reform", str(EXAMPLE)]
            + ["--as-of", "2026-10-01", "--name", "on_a_page"]
        )
        == 0
    )
    capsys.readouterr()
    page = (published / "whatif" / "on_a_page" / "whatif.html").read_text(encoding="utf-8")
    record = json.loads(
        (published / "whatif" / "on_a_page" / "run.json").read_text(encoding="utf-8")
    )
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert f">{record['newly_flagged']:,}<" in page and f">{record['reform_warnings']:,}<" in page
    assert "<svg" in page and "NE_DIBAO" in page


def test_an_analyst_launches_the_comparison_as_a_dagster_asset_with_its_config(published):
    from dagster import materialize

    from pipelines.orchestration.assets import whatif_comparison
    from pipelines.orchestration.resources import PseudonymKey, SafetynetPaths

    config = {"quarter": "2026Q3", "reform_file": str(EXAMPLE), "as_of": "2026-10-01"}
    config["name"] = "from_dagster"
    result = materialize(
        [whatif_comparison],
        resources={
            "paths": SafetynetPaths(landing=str(published), out=str(published)),
            "pseudonym": PseudonymKey(key=DEMO_KEY),
        },
        run_config={"ops": {"whatif__comparison": {"config": config}}},
    )
    assert result.success
    (event,) = result.get_asset_materialization_events()
    md = event.materialization.metadata
    assert md["whatif"].value == "from_dagster" and md["newly_flagged"].value > 0
    assert (published / "whatif" / "from_dagster" / "changes.parquet").is_file()


# --- each side of the changed boundary, on households built by hand (tests/rulecase.py) -------

# Fuzhou's standard in 2026Q3 is 1,000 a person: a household of three has a dibao line of 3,000;
# +5 % makes it 1,050 and 3,150.
BOUNDARY = {"H1": 2999, "H2": 3000, "H3": 3149, "H4": 3150}


def _boundary_case():
    from tests import rulecase

    people, wages, unemployed = [], [], []
    for hukou, wage in BOUNDARY.items():
        n = hukou[1:]
        people += [
            {"id": f"A{n}", "born": "1980-03-01", "hukou": hukou},
            {"id": f"B{n}", "born": "1982-03-01", "hukou": hukou, "relation": "SPOUSE"},
            {"id": f"C{n}", "born": "2012-03-01", "hukou": hukou, "relation": "CHILD"},
        ]
        wages.append({"id": f"A{n}", "monthly_wage": wage})
        unemployed.append({"id": f"B{n}"})
    doc = {
        "name": "households of three on each side of the old and the new dibao line",
        "quarter": "2026Q3",
        "people": people,
        "rows": {"hrss/employment": wages, "hrss/unemployment_registrations": unemployed},
        "expect": {},
    }
    return rulecase.Case.from_doc(doc)


@pytest.mark.parametrize(
    ("hukou", "before", "after"),
    [("H1", True, True), ("H2", False, True), ("H3", False, True), ("H4", False, False)],
    ids=[
        "2,999 is below the old line and the new",
        "3,000 is at the old line, below the new",
        "3,149 is just below the new line",
        "3,150 is at the new line",
    ],
)
def test_raising_the_standard_5pct_flags_a_household_on_each_side_of_each_line_as_it_should(
    tmp_path, hukou, before, after
):
    from pipelines.policy import facts
    from pipelines.policy.engine import DuckDBEngine
    from pipelines.policy.evaluate import evaluate_loaded_sources
    from tests import rulecase

    built = rulecase.build(_boundary_case(), tmp_path)
    reform = whatif.load_reform(reform_file(tmp_path, dibao("+5%")))
    with DuckDBEngine(threads=1) as session:
        session.reset()
        facts.load(session, built.sources)
        key = DEMO_KEY.encode()
        baseline = evaluate_loaded_sources(session, built.sources, key)
        reformed = evaluate_loaded_sources(
            session, built.sources, key, whatif.reformed(reform, Q3.end)
        )
    flagged = [rulecase.subjects(e, built.ids).get("NE_DIBAO", []) for e in (baseline, reformed)]
    assert (hukou in flagged[0], hukou in flagged[1]) == (before, after)
    changes = whatif.compare("t", str(Q3), baseline.warnings, reformed.warnings)
    dibao_row = changes.filter(pl.col("rule_id") == "NE_DIBAO").row(0, named=True)
    assert (dibao_row["newly_flagged"], dibao_row["no_longer_flagged"]) == (2, 0)


def test_a_comparison_waits_for_no_run_it_is_refused_while_one_writes_the_folder(published, capsys):
    """`safetynet whatif` writes the warehouse: while a run holds `<out>/.run.lock` it is
    refused at once (exit 2), and goes through once the lock is free."""
    import fcntl

    from pipelines.core.layout import Outputs

    lock = Outputs(published).run_lock.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lock.write("pid 1 since now\n")
        lock.flush()
        args = ["whatif", "--out", str(published), "--quarter", "2026Q3", "--reform", str(EXAMPLE)]
        assert cli.main(args) == 2
        assert "in use by another run" in capsys.readouterr().out
    finally:
        lock.close()
    assert cli.main(args) == 0


# --- what a change reaches, column by column (pipelines/policy/lineage.py) --------------------


def _reached_rules(changed: list[str]) -> set[str]:
    from pipelines.policy.catalogue import catalogue
    from pipelines.policy.lineage import Reach

    reach = Reach(changed)
    return {r.rule_id for r in catalogue() if reach.sql(r.rule_id, r.sql).anything}


def test_the_dibao_standard_reaches_the_standard_of_each_person_and_household_not_their_rows():
    from pipelines.policy.lineage import Reach

    reach = Reach(["dibao_standard"])
    assert (
        reach.model("fct_persons").columns == {"standard"} and not reach.model("fct_persons").rows
    )
    assert not reach.model("int_persons").anything  # the person join is not built again
    assert {"below_dibao", "dibao_line"} <= reach.model("fct_candidate_households").columns
    assert "size" not in reach.model("fct_candidate_households").columns
    assert {"NE_DIBAO", "NLE_INCOME"} <= _reached_rules(["dibao_standard"])
    assert "PNI_MEDICAL_ENROLMENT" not in _reached_rules(["dibao_standard"])


def test_a_medical_spending_threshold_reaches_which_people_are_looked_at_so_every_rule():
    from pipelines.policy.catalogue import catalogue
    from pipelines.policy.lineage import Reach

    assert Reach(["hardship_oop_12m"]).model("int_persons").rows
    assert _reached_rules(["hardship_oop_12m"]) == {r.rule_id for r in catalogue()}


def test_the_working_age_reaches_the_employment_rule_alone_and_no_fact():
    from pipelines.policy import facts
    from pipelines.policy.lineage import Reach

    reach = Reach(["working_age"])
    assert not any(reach.model(m).anything for m in facts.MODELS)
    assert _reached_rules(["working_age"]) == {"PNI_EMPLOYMENT_ASSISTANCE"}


# tekun_elderly_age 60 -> 58 on persons of 57 to 60 living alone with no income (Fuzhou, E =
# 2026-09-30), through the same path as `safetynet whatif`: the reform evaluated on the baseline's
# facts and raised warnings (`evaluate_from_baseline`)
TEKUN_AGES = {"A57": "1968-10-01", "A58": "1968-09-30", "A59": "1967-03-01", "A60": "1966-09-30"}


def _on_the_baseline(built, reform_text: str, tmp_path: Path):
    from pipelines.policy import facts
    from pipelines.policy.engine import DuckDBEngine
    from pipelines.policy.evaluate import (
        BASELINE_RAISED,
        evaluate_from_baseline,
        evaluate_loaded_sources,
    )

    reform = whatif.load_reform(reform_file(tmp_path, reform_text))
    with DuckDBEngine(threads=1) as session:
        session.reset()
        facts.load(session, built.sources)
        key = DEMO_KEY.encode()
        baseline = evaluate_loaded_sources(session, built.sources, key)
        session.create_table_as(BASELINE_RAISED, "select * from raised", {})
        changed = evaluate_from_baseline(
            session, built.sources, key, whatif.reformed(reform, Q3.end), baseline
        )
    return baseline, changed


@pytest.mark.parametrize(
    ("person", "before", "after"),
    [("A57", False, False), ("A58", False, True), ("A59", False, True), ("A60", True, True)],
    ids=[
        "born 1968-10-01, still 57 on the quarter end, is tekun-elderly under neither age",
        "born 1968-09-30, 58 on the quarter end, is tekun-elderly only from 58",
        "59 is tekun-elderly only from 58",
        "60 is tekun-elderly under both ages",
    ],
)
def test_lowering_the_tekun_age_to_58_refers_a_person_on_each_side_of_each_age_as_it_should(
    tmp_path, person, before, after
):
    from tests import rulecase

    people = [{"id": p, "born": born, "hukou": f"H{p}"} for p, born in TEKUN_AGES.items()]
    case = rulecase.Case.from_doc(
        {
            "name": "people of 57 to 60 living alone with no income",
            "quarter": "2026Q3",
            "people": people,
            "rows": {"hrss/unemployment_registrations": [{"id": p} for p in TEKUN_AGES]},
            "expect": {},
        }
    )
    built = rulecase.build(case, tmp_path)
    text = one_parameter("tekun_elderly_age", "years", "58")
    baseline, changed = _on_the_baseline(built, text, tmp_path)
    flagged = [rulecase.subjects(e, built.ids).get("NE_TEKUN", []) for e in (baseline, changed)]
    assert (person in flagged[0], person in flagged[1]) == (before, after)
    changes = whatif.compare("t", str(Q3), baseline.warnings, changed.warnings)
    tekun = changes.filter(pl.col("rule_id") == "NE_TEKUN").row(0, named=True)
    assert (tekun["newly_flagged"], tekun["no_longer_flagged"]) == (2, 0)
    # two more people each 1,000 a month below Fuzhou's standard
    assert tekun["monthly_cost_change_yuan"] == Decimal("2000.00")


def test_a_quarter_keyed_with_another_key_is_compared_from_its_staging_tables(published, tmp_path):
    """The saved warnings carry the key they were keyed with: a comparison keyed otherwise
    evaluates its baseline again, so both sides are keyed alike."""
    reform = whatif.load_reform(reform_file(tmp_path, dibao("+5%")))
    other = whatif.run(published, Q3, reform, b"another key of at least 32 bytes, for tests")
    assert (
        other.baseline_from == "evaluated again: the quarter was keyed with another pseudonym key"
    )
    same = run(published, reform_file(tmp_path, dibao("+5%")))
    assert other.changes.drop("whatif").equals(same.changes.drop("whatif"))


def test_every_model_and_rule_is_within_what_the_lineage_follows_and_the_rest_is_reached():
    import sqlglot
    from sqlglot.optimizer.scope import build_scope

    from pipelines.policy import lineage

    assert lineage.unfollowed_in_catalogue() == {}
    reach = lineage.Reach(["working_age"])
    text = "select p.id_number from fct_persons as p, unnest([1, 2]) as u(x)"
    tree = sqlglot.parse_one(text, read="duckdb")
    assert lineage.unfollowed(tree) and build_scope(tree) is not None
    assert reach.sql("unnest_probe", text).rows  # not followed: reached whole
