"""The synthetic province generator (issue 3): deterministic bytes, contracts passed except for
the planted bad rows, counted exactly, and a plausible population."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pytest

from pipelines.core import contracts, gbt2260
from pipelines.core.quarters import Quarter
from pipelines.gate import extract as gate
from pipelines.generate import (
    feedback,
    generate,
    planted_errors,
    plants,
    province,
)
from pipelines.generate.habits import PLANTED_ERRORS
from pipelines.generate.plants import PLANTED_CASES
from pipelines.orchestration import cli
from tests.gating import run_gate

Q2, Q3 = Quarter(2026, 2), Quarter(2026, 3)
SEED = 7


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def landed(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("generated") / "landing"
    generate(folder, "test", [Q2, Q3], SEED)
    return folder


def test_layout_and_habits(landed: Path):
    files = set(digests(landed))
    for q in (Q2, Q3):
        for c in contracts.extract_contracts():
            hits = [f for f in files if f.startswith(f"{q}/{c.department}/{c.extract}.")]
            assert len(hits) == 1, (q, c.name, hits)
        assert f"{q}/{PLANTED_ERRORS}" in files
    assert f"{Q3}/nhsa/settlements.parquet" in files
    assert f"{Q3}/cdpf/disability_certificates.xlsx" in files
    assert f"{Q3}/nhsa/manifest.json" in files
    raw = (landed / str(Q3) / "mps" / "residents.csv").read_bytes()
    assert raw.decode("gb18030").startswith("公民身份号码,")
    assert (landed / str(Q3) / "mca" / "assistance_roster.csv").read_bytes()[:3] == b"\xef\xbb\xbf"


def test_same_seed_same_bytes(landed: Path, tmp_path: Path):
    again = tmp_path / "again"
    generate(again, "test", [Q2, Q3], SEED)
    assert digests(again) == digests(landed)
    # a quarter generated alone is the same as within a range
    alone = tmp_path / "alone"
    generate(alone, "test", [Q3], SEED)
    assert _extracts(digests(alone)) == {
        k: v for k, v in _extracts(digests(landed)).items() if k.startswith(str(Q3))
    }
    # its feedback answers the quarters generated before it: none when alone
    assert not [k for k in digests(alone) if k.endswith(feedback.FEEDBACK_FILE)]
    assert [k for k in digests(landed) if k.startswith(f"{Q3}/") and k.endswith("feedback.csv")]
    other = tmp_path / "other"
    generate(other, "test", [Q3], SEED + 1)
    assert digests(other) != digests(alone)
    generate(other, "test", [Q3], SEED)  # regenerating replaces the departments' folders
    assert digests(other) == digests(alone)


def _extracts(files: dict[str, str]) -> dict[str, str]:
    """The files that depend on (scale, seed, quarter) alone: not the feedback, its sidecar, nor
    the manifests that list a feedback file."""
    return {
        k: v
        for k, v in files.items()
        if not k.endswith(("feedback.csv", feedback.PLANTED_FEEDBACK, "manifest.json"))
    }


def test_feedback_files(landed: Path, tmp_path: Path):
    """From the second quarter on, departments answer planted positives routed before; a
    manifest department lists its feedback; the gate accepts every answer but the two rows
    naming keys never routed to the department."""
    assert not list(landed.glob(f"{Q2}/*/feedback.*"))
    assert feedback.planted_feedback(landed, Q2) == []  # at test scale no slot runs from Q2
    planted = feedback.planted_feedback(landed, Q3)
    answers = [e for e in planted if e["action"] is not None]
    depts = {e["department"] for e in answers}
    assert {"nhsa", "hrss", "mohurd"} <= depts
    contract = contracts.feedback_contract()
    for dept in sorted(depts):
        path = landed / str(Q3) / dept / feedback.FEEDBACK_FILE
        raw = path.read_bytes()
        assert raw.decode("utf-8").startswith("warning_key,action,action_date,note\n")
        rows = [e for e in answers if e["department"] == dept]
        for e in rows:
            assert Q3.start.isoformat() <= e["action_date"] <= Q3.end.isoformat()
        if (landed / str(Q3) / dept / "manifest.json").is_file():
            doc = json.loads((landed / str(Q3) / dept / "manifest.json").read_text("utf-8"))
            assert doc["files"][feedback.FEEDBACK_FILE]["rows"] == len(rows)
        # what the pipeline would have routed to the department: the answered keys (demo key)
        routed = frozenset(e["warning_key"] for e in rows if "expect_quarantined" not in e)
        result = gate.run_extract(
            contract, landed, tmp_path / "out", Q3, department=dept, routed_warning_keys=routed
        ).result
        bad = [e for e in rows if "expect_quarantined" in e]
        assert result.rows_received == len(rows)
        assert result.rows_quarantined == len(bad), (dept, result.failure_reasons)
        if bad:  # mohurd's file holds only the two: it fails on its quarantine share too
            assert result.reason_rows[feedback.UNKNOWN_REASON] == len(bad) == 2
        else:
            assert result.status == gate.PASSED, (dept, result.failure_reasons)
    keys = {e["warning_key"] for e in answers}
    assert feedback.UNKNOWN_KEY in keys
    cases = json.loads((landed / str(Q3) / PLANTED_CASES).read_text(encoding="utf-8"))
    assert keys - {feedback.UNKNOWN_KEY} <= {
        feedback.key_of(c) for c in cases if c["expect"] == "warning"
    }


@pytest.mark.parametrize("quarter", [Q2, Q3], ids=str)
def test_gate_quarantines_exactly_the_planted_rows(landed: Path, tmp_path: Path, quarter):
    planted = planted_errors(landed, quarter)
    total = 0
    for c in contracts.extract_contracts():
        result = gate.run_extract(c, landed, tmp_path / "out", quarter).result
        assert result.status == gate.PASSED, (c.name, result.failure_reasons)
        assert result.extra_columns == []
        assert result.reason_rows == planted[c.department][c.extract], c.name
        assert result.rows_received == result.rows_accepted + result.rows_quarantined
        total += result.rows_quarantined
    assert total > 0  # something is planted at all


def test_population_is_plausible():
    pop = province.build("county", 3)
    people = province.at(pop, Q3.end)
    n = people.height
    assert 45_000 < n <= 50_000
    assert people["id_number"].n_unique() == n
    heads = people.group_by("hh").agg((pl.col("pos") == 0).sum().alias("heads"))
    assert (heads["heads"] == 1).all()
    years = people["birth"].cast(pl.Date).dt.year()
    assert years.min() >= 1930 and years.max() <= 2026
    # ~3 % of the older people carry an abolished address code, valid from their birth year
    address = people["id_number"].str.slice(0, 6)
    old = people.filter(address != people["county_code"])
    assert 0.005 < old.height / n < 0.05
    for code, born in zip(
        old["id_number"].str.slice(0, 6), old["birth"].cast(pl.Date).dt.year(), strict=True
    ):
        assert gbt2260.address_code_valid_from(code, born)
    share = people["status"].value_counts().to_dict(as_series=False)
    active = dict(zip(share["status"], share["count"], strict=True))["ACTIVE"]
    assert 0.85 < active / n < 0.97


def test_roster_shares():
    from pipelines.generate import extracts

    pop = province.build("county", 3)
    people = province.at(pop, Q3.end)
    roster = extracts.roster(people, Q3)
    counts = roster["program"].value_counts().to_dict(as_series=False)
    share = {p: c / people.height for p, c in zip(counts["program"], counts["count"], strict=True)}
    assert 0.008 < share["DIBAO"] < 0.018
    assert 0.0008 < share["TEKUN"] < 0.003
    cases = roster.group_by("case_id").agg(
        pl.col("program").n_unique().alias("programs"),
        pl.col("county_code").n_unique().alias("counties"),
        pl.col("single_person").n_unique().alias("singles"),
        pl.len().alias("rows"),
        pl.col("single_person").first().alias("single"),
    )
    assert (cases["programs"] == 1).all() and (cases["counties"] == 1).all()
    assert (cases["singles"] == 1).all()
    assert ((cases["single"] == "true") == (cases["rows"] == 1)).all()


def test_cli_generate(tmp_path: Path, capsys):
    rc = cli.main(
        ["generate", "--out", str(tmp_path / "l"), "--scale", "test", "--quarters", "2026Q3"]
    )
    assert rc == 0
    assert (tmp_path / "l" / "2026Q3" / "mps" / "residents.csv").is_file()
    assert "2026Q3" in capsys.readouterr().out


def _members(cases: list[dict], staged: dict[str, pl.DataFrame]) -> set[str]:
    """The identity numbers of the planted cases: person subjects and household members."""
    roster, residents = staged["mca.assistance_roster"], staged["mps.residents"]
    out = set()
    for c in cases:
        if c.get("household_source") == "ROSTER":
            out |= set(roster.filter(pl.col("case_id") == c["subject"])["id_number"])
        elif c.get("household_source") == "REGISTRY":
            out |= set(residents.filter(pl.col("hukou_no") == c["subject"])["id_number"])
        else:
            out.add(c["subject"])
    return out


def _staged(landing: Path, out: Path, quarter: Quarter) -> dict[str, pl.DataFrame]:
    staged = {}
    for c in contracts.extract_contracts():
        run = run_gate(c, landing, out, quarter=quarter)
        assert run.result.status == gate.PASSED, (c.name, run.result.failure_reasons)
        staged[c.name] = run.staging
        staged["quarantine." + c.name] = run.quarantine
    return staged


@pytest.mark.parametrize("quarter", [Q2, Q3], ids=str)
def test_planted_cases_survive_the_gate(landed: Path, tmp_path: Path, quarter):
    cases = json.loads((landed / str(quarter) / PLANTED_CASES).read_text(encoding="utf-8"))
    rules = {c["rule_id"] for c in cases}
    assert {"PNI_MEDICAL_ENROLMENT", "PNI_DISASTER_RELIEF", "PNI_EMPLOYMENT_ASSISTANCE"} <= rules
    assert ("NLE_DECEASED" in rules) == (quarter.end >= plants.EXIT_DAY)
    staged = _staged(landed, tmp_path / "out", quarter)
    subjects = _members(cases, staged)
    for c in contracts.extract_contracts():
        quarantine = staged["quarantine." + c.name]
        if quarantine is not None and "id_number" in quarantine.columns:
            hit = quarantine.filter(pl.col("id_number").is_in(list(subjects)))
            assert hit.is_empty(), c.name  # bad rows are never planted on a case's subject
    roster = set(staged["mca.assistance_roster"]["id_number"])
    cases_on_roster = set(staged["mca.assistance_roster"]["case_id"])
    registry = staged["mps.residents"]
    status = dict(registry.select("id_number", "status").iter_rows())
    for case in cases:
        who = case["subject"]
        source = case.get("household_source")
        if source == "ROSTER":
            assert who in cases_on_roster, case
        elif source == "REGISTRY":
            members = registry.filter(pl.col("hukou_no") == who)
            assert members.height and (members["status"] == "ACTIVE").all(), case
            assert not set(members["id_number"]) & roster, case  # non-covered
        elif case["role"].endswith("_near") and case["rule_id"].startswith("NLE_"):
            assert who not in roster
        elif case["role"].startswith("tekun"):
            assert who not in roster and status[who] == "ACTIVE"
        else:
            assert who in roster, case
        if case["rule_id"] == "NLE_DECEASED":
            assert status[who] == "DECEASED"
        elif case["rule_id"] == "NLE_MOVED_OUT":
            assert status[who] == "MOVED_OUT"
        elif source is None:
            assert status[who] == "ACTIVE"
    enrol = staged["nhsa.enrollments"]
    by_role = {c["role"]: c["subject"] for c in cases}
    subsidy = dict(enrol.select("id_number", "premium_subsidy").iter_rows())
    assert float(subsidy[by_role["enrol_pos"]]) == 0
    assert float(subsidy[by_role["enrol_near"]]) == 380


@pytest.fixture(scope="module")
def chunked(tmp_path_factory) -> Path:
    """`province` in miniature: every county a chunk, ≈ 480 people each."""
    folder = tmp_path_factory.mktemp("province") / "landing"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(province.SCALES, "province", 40_000)
        generate(folder, "province", [Q3], SEED)
    return folder


def test_province_is_written_county_by_county(chunked: Path, tmp_path: Path):
    planted = planted_errors(chunked, Q3)
    total = 0
    for c in contracts.extract_contracts():
        result = gate.run_extract(c, chunked, tmp_path / "out", Q3).result
        assert result.status == gate.PASSED, (c.name, result.failure_reasons)
        assert result.extra_columns == []
        assert result.reason_rows == planted[c.department][c.extract], c.name
        total += result.rows_quarantined
    assert total > 0
    raw = (chunked / str(Q3) / "mps" / "residents.csv").read_bytes().decode("gb18030")
    assert raw.count("公民身份号码,") == 1  # one header
    ids = pl.read_csv(raw.encode(), infer_schema=False)["公民身份号码"]
    copies = planted["mps"]["residents"].get("duplicate_key", 0) // 2  # planted duplicates
    assert ids.n_unique() == len(ids) - copies and len(ids) > 30_000
    assert ids.str.slice(0, 6).n_unique() > 83  # every county, and abolished codes
    roster = (chunked / str(Q3) / "mca" / "assistance_roster.csv").read_bytes()
    assert roster[:3] == b"\xef\xbb\xbf" and roster.count(b"\xef\xbb\xbf") == 1
    assert (chunked / str(Q3) / "nhsa" / "settlements.parquet").is_file()
    cases = json.loads((chunked / str(Q3) / PLANTED_CASES).read_text(encoding="utf-8"))
    assert "PNI_MEDICAL_ENROLMENT" in {c["rule_id"] for c in cases}  # in the first county


def test_province_same_seed_same_bytes(chunked: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setitem(province.SCALES, "province", 40_000)
    again = tmp_path / "again"
    generate(again, "province", [Q3], SEED)
    assert digests(again) == digests(chunked)


def test_feedback_is_not_planted_against_an_escalation_count_its_outcomes_were_not_worked_for(
    monkeypatch,
):
    """The planted feedback's expected outcomes follow `escalate_after_quarters` 3: a run over
    quarters where 4 is in effect is refused naming the parameter, not planted with wrong
    outcomes; before the new value takes effect the same quarters plan as before."""
    import dataclasses
    import datetime as dt

    from pipelines.core import parameters

    shipped = parameters.parameters()
    name = "escalate_after_quarters"
    p = shipped[name]
    later = dataclasses.replace(p, values=(*p.values, (dt.date(2026, 8, 1), 4)))
    monkeypatch.setattr(parameters, "parameters", lambda directory=None: shipped | {name: later})
    assert feedback.plan([Quarter(2026, 1), Quarter(2026, 2)], {}) is not None
    with pytest.raises(ValueError, match=name):
        feedback.plan([Quarter(2026, 2), Quarter(2026, 3)], {})
