"""The generated county over four quarters (issues 3, 4 and 5): every planted case is found, every
near-miss is not, no planted subject gets a warning it was not planted for; the departments'
feedback drives the lifecycle; a rule whose extract is missing carries its warnings over; the
analyst tables and the warehouse hold no identity number or name from the landing data.

One change to the generated data: `moe/student_aid` is withdrawn from the last quarter, as if the
department had not sent it, so `PNI_EDUCATION_AID` is NOT_EVALUATED there (policy.md §4)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines.core import parameters
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter, quarter_range
from pipelines.gate import accounting as quality
from pipelines.gate import extract as gate
from pipelines.generate import feedback, generate, households
from pipelines.generate.plants import PLANTED_CASES
from pipelines.policy import catalogue as rule_catalogue
from pipelines.policy import evaluate as rules
from pipelines.policy import facts
from pipelines.publish import routed as outputs
from pipelines.publish import warehouse
from tests.gating import gate_quarter

QUARTERS = [Quarter.parse(q) for q in quarter_range("2025Q4", "2026Q3")]
SEED = 7
WITHDRAWN = (QUARTERS[-1], "moe", "student_aid")  # not sent in the last quarter
NOT_EVALUATED = "PNI_EDUCATION_AID"  # the rule that reads it


@pytest.fixture(scope="module")
def processed(tmp_path_factory, pseudonym_key_module) -> tuple[Path, Path, dict]:
    """The county for four quarters, gated (without Dagster: `test_definitions` runs the job)
    and evaluated quarter by quarter, as the job does."""
    root = tmp_path_factory.mktemp("county")
    landing, out = root / "landing", root / "out"
    generate(landing, "county", QUARTERS, SEED)
    q, dept, extract = WITHDRAWN
    for path in (landing / str(q) / dept).glob(f"{extract}.*"):
        path.unlink()
    manifest = landing / str(q) / dept / "manifest.json"
    if manifest.is_file():  # the department's manifest no longer lists it either
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        doc["files"] = {k: v for k, v in doc["files"].items() if not k.startswith(extract)}
        manifest.write_text(json.dumps(doc), encoding="utf-8")
    evaluations = {}
    for q in QUARTERS:
        gate_quarter(landing, out, q)
        evaluation = rules.evaluate_sources(facts.Sources.from_out(out, q), pseudonym_key_module)
        rules.write(out, evaluation)
        outputs.publish(out, q, pseudonym_key_module)
        warehouse.load_quarter(out, str(q))
        evaluations[q] = evaluation
    return landing, out, evaluations


@pytest.fixture(scope="module")
def pseudonym_key_module():
    from pipelines.core import pseudonym

    return pseudonym.DEMO_KEY.encode()


def _raised(evaluation: rules.Evaluation) -> dict[tuple[str, str], set[str]]:
    """(rule, subject) pairs: persons by identity number, households by id."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule_id, kind, id_number, household in evaluation.warnings.select(
        "rule_id", "subject_type", "id_number", "household_id"
    ).iter_rows():
        subject = id_number if kind == "PERSON" else household
        out.setdefault((subject, kind), set()).add(rule_id)
    return out


@pytest.mark.parametrize("quarter", QUARTERS, ids=str)
def test_every_planted_case_is_found_and_no_near_miss_raised(processed, quarter):
    landing, _, evaluations = processed
    evaluation = evaluations[quarter]
    runs = evaluation.rule_runs
    skipped = set(runs.filter(pl.col("status") == "NOT_EVALUATED")["rule_id"])
    assert skipped == ({NOT_EVALUATED} if quarter == WITHDRAWN[0] else set())
    cases = json.loads((landing / str(quarter) / PLANTED_CASES).read_text(encoding="utf-8"))
    raised = _raised(evaluation)
    planted: dict[tuple[str, str], set[str]] = {}
    roles: dict[tuple[str, str], set[str]] = {}  # for the messages: the cases' names, not numbers
    for case in cases:
        if case["rule_id"] in skipped:
            continue  # raises nothing: checked below
        kind = "HOUSEHOLD" if "household_source" in case else "PERSON"
        subject = (case["subject"], kind)
        planted.setdefault(subject, set())
        roles.setdefault(subject, set()).add(case["role"])
        found = case["rule_id"] in raised.get(subject, set())
        assert found == (case["expect"] == "warning"), case
        if case["expect"] == "warning":
            planted[subject].add(case["rule_id"])
    # no unplanted warning on a planted subject: what it raises is exactly what was planted
    for subject, rule_ids in planted.items():
        assert raised.get(subject, set()) == rule_ids, f"planted {sorted(roles[subject])}"
    assert not set(evaluation.warnings["rule_id"]) & skipped
    rules_planted = {c["rule_id"] for c in cases if c["expect"] == "warning"}
    if quarter == QUARTERS[-1]:
        assert rules_planted == {r.rule_id for r in rule_catalogue.catalogue()}


def test_window_quarters_grow_with_the_quarters_loaded(processed):
    _, _, evaluations = processed
    for i, q in enumerate(QUARTERS, start=1):
        runs = evaluations[q].rule_runs.filter(pl.col("rule_id") == "PNI_DISABILITY_CARE_SUBSIDY")
        assert runs["window_quarters"].to_list() == [i]


def test_a_rule_not_evaluated_carries_its_open_warnings_over(processed):
    _, out, evaluations = processed
    last, before = QUARTERS[-1], QUARTERS[-2]
    run = evaluations[last].rule_runs.filter(pl.col("rule_id") == NOT_EVALUATED)
    assert run["status"].to_list() == ["NOT_EVALUATED"]
    assert "moe/student_aid MISSING" in run["reason"][0]
    cycle = {
        q: pl.read_parquet(out / str(q) / "tables" / "warning_lifecycle.parquet").filter(
            pl.col("rule_id") == NOT_EVALUATED
        )
        for q in (before, last)
    }
    was_open = cycle[before].filter(pl.col("status").is_in(["NEW", "RECURRING", "ESCALATED"]))
    assert was_open.height > 0
    now = cycle[last]
    assert set(now["status"]) == {"CARRIED_OVER"}  # neither resolved nor aged
    assert (
        now.select("warning_key", "quarters_open")
        .sort("warning_key")
        .equals(was_open.select("warning_key", "quarters_open").sort("warning_key"))
    )
    routed = pl.read_parquet(out / str(last) / "policy" / "routed.parquet")
    assert not set(routed["warning_key"]) & set(now["warning_key"])


def test_the_warehouse_holds_no_identity_number_or_name(processed):
    import duckdb

    _, out, _ = processed
    staged = pl.concat(
        [pl.read_parquet(out / str(q) / "staging" / "mps" / "residents.parquet") for q in QUARTERS]
    )
    ids, names = set(staged["id_number"]), set(staged["name"])
    con = duckdb.connect(str(out / "warehouse.duckdb"), read_only=True)
    try:
        tables = [t for (t,) in con.execute("select table_name from duckdb_tables()").fetchall()]
        assert set(warehouse.TABLES) <= set(tables)
        for table in tables:
            text = con.sql(f"select * from {table}").pl().select(pl.all().cast(pl.String))
            csv = text.write_csv()
            assert not set(re.findall(r"\d{17}[\dX]", csv)) & ids, table
            assert not _cjk_pieces(csv) & names, table
        counts = dict(con.execute("select quarter, count(*) from warnings group by all").fetchall())
    finally:
        con.close()
    assert sorted(counts) == [str(q) for q in QUARTERS]


def test_every_rule_has_planted_cases_on_both_sides(processed):
    landing, _, _ = processed
    cases = json.loads((landing / str(QUARTERS[-1]) / PLANTED_CASES).read_text(encoding="utf-8"))
    catalogue = {r.rule_id: r for r in rule_catalogue.catalogue()}
    for rule_id in catalogue:
        expects = {c["expect"] for c in cases if c["rule_id"] == rule_id}
        assert expects == {"warning", "no_warning"}, rule_id
    for c in cases:
        assert ("household_source" in c) == (catalogue[c["rule_id"]].subject == "HOUSEHOLD"), c
    # one household or person per role, never shared between roles
    owner = {}
    for c in cases:
        assert owner.setdefault(c["subject"], c["role"]) == c["role"], c
    # before the first dibao standard (2024-07-01) the income cases are not recorded
    assert households.dibao_standard("350102", Quarter(2024, 2).end) is None
    assert households.dibao_standard("350128", QUARTERS[-1].end) == 103_000
    assert households.dibao_standard("350102", QUARTERS[-2].end) == 95_000


def test_a_new_dated_value_of_the_parameters_moves_the_planted_cases_with_it(
    tmp_path, monkeypatch, pseudonym_key_module
):
    """The planted cases read their figures from the parameters (`generate/plants.py`,
    `households.py`), never copies: with new values from 2026-08-01 of the standard, the edge
    multiplier, the deductibles and the asset limits, every case of 2026Q3 still holds."""
    shipped = parameters.parameters()
    new = dt.date(2026, 8, 1)

    def later(name: str, value) -> parameters.Parameter:
        p = shipped[name]
        return dataclasses.replace(p, values=(*p.values, (new, value)))

    def per_programme(**values: int) -> dict[str, Decimal]:
        return {k: Decimal(v) for k, v in values.items()}

    standard = shipped["dibao_standard"].values[-1][1]
    changed = dict(shipped) | {
        "dibao_standard": later("dibao_standard", {k: v + 75 for k, v in standard.items()}),
        "dibao_edge_multiplier": later("dibao_edge_multiplier", Decimal("1.55")),
        "medical_assistance_deductible": later(
            "medical_assistance_deductible",
            per_programme(DIBAO=200, TEKUN=0, DIBAO_EDGE=1800, RIGID_EXPENDITURE=1000),
        ),
        "vehicle_value_limit": later(
            "vehicle_value_limit",
            per_programme(DIBAO=0, TEKUN=0, DIBAO_EDGE=180_000, RIGID_EXPENDITURE=170_000),
        ),
        "business_capital_limit": later("business_capital_limit", Decimal(120_000)),
    }
    monkeypatch.setattr(parameters, "parameters", lambda directory=None: changed)
    q = QUARTERS[-1]
    landing, out = tmp_path / "landing", tmp_path / "out"
    generate(landing, "county", [q], SEED)
    gate_quarter(landing, out, q)
    raised = _raised(rules.evaluate_sources(facts.Sources.from_out(out, q), pseudonym_key_module))
    cases = json.loads((landing / str(q) / PLANTED_CASES).read_text(encoding="utf-8"))
    assert {c["rule_id"] for c in cases} == {r.rule_id for r in rule_catalogue.catalogue()}
    for case in cases:
        subject = (case["subject"], "HOUSEHOLD" if "household_source" in case else "PERSON")
        found = case["rule_id"] in raised.get(subject, set())
        assert found == (case["expect"] == "warning"), case
    medical = next(c for c in cases if c["role"] == "medical_near")
    assert medical["note"].endswith("oop 1700 below the deductible 1800")


def _cjk_pieces(text: str) -> set[str]:
    pieces = set()
    for run in re.findall(r"[\u4e00-\u9fff]+", text):
        for size in (2, 3, 4):
            pieces |= {run[i : i + size] for i in range(len(run) - size + 1)}
    return pieces


def test_analyst_tables_hold_no_identity_number_or_name(processed):
    landing, out, _ = processed
    staged = pl.concat(
        [pl.read_parquet(out / str(q) / "staging" / "mps" / "residents.parquet") for q in QUARTERS]
    )
    ids = set(staged["id_number"])
    names = set(staged["name"])
    for q in QUARTERS:
        for name in ("warnings", "warning_lifecycle", "rule_runs", "data_findings"):
            frame = pl.read_parquet(out / str(q) / "tables" / f"{name}.parquet")
            text = frame.select(pl.all().cast(pl.String)).write_csv()
            assert not set(re.findall(r"\d{17}[\dX]", text)) & ids, (q, name)
            assert not _cjk_pieces(text) & names, (q, name)
    warnings = pl.read_parquet(out / str(QUARTERS[-1]) / "tables" / "warnings.parquet")
    assert {"id_number", "name"}.isdisjoint(warnings.columns)
    assert warnings["person_key"].str.len_chars().unique().to_list() == [32]
    assert warnings["id_masked"].str.contains(r"^\d{6}\*{8}\d{3}[\dX]$").all()
    # the personal copy, for the routed files only, has them
    personal = pl.read_parquet(out / str(QUARTERS[-1]) / "policy" / "warnings.parquet")
    assert set(personal["id_number"]) <= ids


def test_every_warning_explains_itself(processed):
    _, _, evaluations = processed
    warnings = evaluations[QUARTERS[-1]].warnings
    assert warnings.height > 0
    catalogue = {r.rule_id: r for r in rule_catalogue.catalogue()}
    for row in warnings.iter_rows(named=True):
        evidence = json.loads(row["evidence"])
        rule = catalogue[row["rule_id"]]
        assert ("window_quarters" in evidence) == rule.window
        if row["subject_type"] == "HOUSEHOLD" and row["rule_id"] != "NLE_DECEASED":
            assert evidence["members"], row["rule_id"]
        assert re.search(r"[\u4e00-\u9fff]", row["reason_zh"])
        assert row["policy_clause"] == rule.policy_clause
        assert row["routed_to"] == rule.routed_to
        assert row["county_code"] and row["id_number"] and row["name"]
    # the same subject and rule give the same key every quarter
    keys = [set(evaluations[q].warnings["warning_key"]) for q in QUARTERS[-2:]]
    assert len(keys[0] & keys[1]) > 0.5 * min(map(len, keys))


def test_feedback_drives_the_lifecycle(processed):
    """Every expectation of `_planted_feedback.json`: the answers accepted or quarantined by the
    gate, and the lifecycle status, quarters open and deciding action they produce."""
    landing, out, _ = processed
    slots, statuses, escalated_copies = set(), set(), 0
    for q in QUARTERS:
        planted = feedback.planted_feedback(landing, q)
        if q == QUARTERS[0]:
            assert not list(landing.glob(f"{q}/*/feedback.*"))  # nothing routed before it
        else:
            assert planted and list(landing.glob(f"{q}/*/feedback.*"))
        cycle = pl.read_parquet(out / str(q) / "tables" / "warning_lifecycle.parquet")
        assert cycle["warning_key"].is_unique().all()
        state = {r["warning_key"]: r for r in cycle.iter_rows(named=True)}
        for e in planted:
            slots.add(e["slot"])
            key = e["warning_key"]
            if e["action"] is not None:
                published = Outputs(out).quarter(q)
                staged = published.staging(e["department"], "feedback")
                quarantined = published.quarantine(e["department"], "feedback")
                result = json.loads(
                    quality.result_path(out, str(q), e["department"], "feedback").read_text(
                        encoding="utf-8"
                    )
                )
                reasons = (
                    {
                        k: set(r)
                        for k, r in pl.read_parquet(quarantined)
                        .select("warning_key", "reasons")
                        .iter_rows()
                    }
                    if quarantined.is_file()
                    else {}
                )
                accepted = (
                    set(pl.read_parquet(staged)["warning_key"]) if staged.is_file() else set()
                )
                if "expect_quarantined" in e:
                    assert e["expect_quarantined"] in reasons.get(key, set()), e
                    assert key not in accepted, e
                    assert result["reason_rows"][e["expect_quarantined"]] >= 1, e
                else:
                    assert result["status"] == gate.PASSED, (e, result["failure_reasons"])
                    assert key in accepted and key not in reasons, e
            if e["expect_status"] is None:
                assert key not in state, e
                continue
            row = state.get(key)
            assert row is not None, e
            assert row["status"] == e["expect_status"], (str(q), e, row)
            statuses.add(e["expect_status"])
            if "expect_quarters_open" in e:
                assert row["quarters_open"] == e["expect_quarters_open"], (str(q), e, row)
            if "expect_feedback_action" in e:
                assert row["feedback_action"] == e["expect_feedback_action"], (str(q), e, row)
            if e["expect_status"] == "ESCALATED":
                # the escalation copy goes to the county coordination mechanism
                copies = [
                    pl.read_csv(p, infer_schema=False)
                    for p in (out / str(q) / "routed" / feedback.COORDINATION).glob("*.csv")
                ]
                copied = pl.concat(copies).filter(pl.col("warning_key") == key)
                assert copied["status"].to_list() == ["ESCALATED"], (str(q), e)
                escalated_copies += 1
    assert slots == {s.name for s in feedback.SCHEDULE}
    assert {"NEW", "RECURRING", "ESCALATED", "RESOLVED", "SUPPRESSED"} <= statuses
    assert escalated_copies > 0
