"""The synthetic province generator (issue 3): deterministic bytes, contracts passed except for
the planted bad rows, counted exactly, and a plausible population."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from pipelines import cli, contracts, gate, gbt2260, samples
from pipelines.generate import PLANTED_ERRORS, generate, planted_errors, plants, province
from pipelines.generate.plants import PLANTED_CASES
from pipelines.quarters import Quarter

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
    assert digests(alone) == {k: v for k, v in digests(landed).items() if k.startswith(str(Q3))}
    other = tmp_path / "other"
    generate(other, "test", [Q3], SEED + 1)
    assert digests(other) != digests(alone)
    generate(other, "test", [Q3], SEED)  # regenerating replaces the departments' folders
    assert digests(other) == digests(alone)


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
        run = samples.run_gate(c, landing, out, quarter=quarter)
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


# --- planted cases at county scale, checked against policy.md by a small independent oracle ----
COUNTY_QUARTERS = [Quarter(2025, 4), Quarter(2026, 1), Q2, Q3]
RULES = [
    "PNI_EDUCATION_AID",
    "PNI_MEDICAL_ENROLMENT",
    "PNI_MEDICAL_ASSISTANCE",
    "PNI_RURAL_HOUSING",
    "PNI_URBAN_HOUSING",
    "PNI_EMPLOYMENT_ASSISTANCE",
    "PNI_DISABILITY_LIVING_SUBSIDY",
    "PNI_DISABILITY_CARE_SUBSIDY",
    "PNI_DISASTER_RELIEF",
    "NE_DIBAO",
    "NE_RIGID_EXPENDITURE_DIBAO",
    "NE_DIBAO_EDGE",
    "NE_SINGLE_PERSON_DIBAO",
    "NE_TEKUN",
    "NLE_DECEASED",
    "NLE_MOVED_OUT",
    "NLE_INCOME",
    "NLE_ASSETS",
    "HWP_UNMATCHED_HARDSHIP",
]
HOUSEHOLD_RULES = {
    "PNI_RURAL_HOUSING",
    "PNI_URBAN_HOUSING",
    "NE_DIBAO",
    "NE_RIGID_EXPENDITURE_DIBAO",
    "NE_DIBAO_EDGE",
    "NLE_INCOME",
    "NLE_ASSETS",
    "HWP_UNMATCHED_HARDSHIP",
}
ORACLE_RULES = HOUSEHOLD_RULES | {
    "PNI_DISABILITY_LIVING_SUBSIDY",
    "NE_SINGLE_PERSON_DIBAO",
    "NE_TEKUN",
}


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("county") / "landing"
    generate(folder, "county", COUNTY_QUARTERS, SEED)
    return folder


def test_every_rule_has_planted_cases_at_county_scale(county: Path):
    cases = json.loads((county / str(Q3) / PLANTED_CASES).read_text(encoding="utf-8"))
    for rule in RULES:
        expects = {c["expect"] for c in cases if c["rule_id"] == rule}
        assert expects == {"warning", "no_warning"}, rule
    for c in cases:
        assert ("household_source" in c) == (c["rule_id"] in HOUSEHOLD_RULES), c
    # one household or person per role, never shared between roles
    owner = {}
    for c in cases:
        assert owner.setdefault(c["subject"], c["role"]) == c["role"], c
    # before the first dibao standard (2024-07-01) the income cases are not recorded
    assert plants.dibao_standard("350102", Quarter(2024, 2).end) is None
    assert plants.dibao_standard("350128", Q3.end) == 103_000
    assert plants.dibao_standard("350102", Q2.end) == 95_000


D = Decimal
LIMITS = {
    "vehicle": {
        "DIBAO": D(0),
        "TEKUN": D(0),
        "DIBAO_EDGE": D(150000),
        "RIGID_EXPENDITURE": D(150000),
    }
}


class Oracle:
    """policy.md §1–§2 for a handful of subjects, straight from the staged extracts."""

    def __init__(self, staged: dict[str, pl.DataFrame], window: list[dict], quarter: Quarter):
        self.e = quarter.end
        self.s = staged
        self.w = {
            name: pl.concat([w[name] for w in window])
            for name in (
                "nhsa.settlements",
                "cdpf.disability_subsidies",
                "mem.disaster_victims",
            )
        }
        self.roster = staged["mca.assistance_roster"]
        self.reg = staged["mps.residents"]
        # 3501 (鼓楼区 350102 has no override)
        self.std = D(1000) if self.e >= dt.date(2026, 7, 1) else D(950)

    def rows(self, name: str, ids, window: bool = False) -> pl.DataFrame:
        f = self.w[name] if window else self.s[name]
        return f.filter(pl.col("id_number").is_in(list(ids)))

    def income(self, i: str) -> D:
        e = self.e
        emp = self.rows("hrss.employment", [i]).filter(
            (pl.col("started_on") <= e) & (pl.col("ended_on").is_null() | (pl.col("ended_on") >= e))
        )
        unemp = self.rows("hrss.unemployment_registrations", [i]).filter(
            pl.col("status") == "ACTIVE"
        )
        parts = (
            emp["monthly_wage"].to_list()
            + self.rows("hrss.pensions", [i])["monthly_amount"].to_list()
            + unemp["benefit_monthly"].to_list()
            + self.rows("mca.assistance_roster", [i])["other_income_monthly"].to_list()
        )
        return sum(parts, D(0))

    def oop(self, i: str) -> D:
        return sum(self.rows("nhsa.settlements", [i], True)["out_of_pocket"].to_list(), D(0))

    def ill(self, i: str) -> bool:
        s = self.rows("nhsa.settlements", [i], True)
        return bool((s["critical_illness_paid"] > 0).any())

    def age(self, i: str) -> int:
        born = self.reg.filter(pl.col("id_number") == i)["birth_date"][0]
        e = self.e
        return e.year - born.year - ((e.month, e.day) < (born.month, born.day))

    def severely_disabled(self, i: str) -> bool:
        c = self.rows("cdpf.disability_certificates", [i]).filter(pl.col("status") == "VALID")
        return bool(
            (
                (c["grade"] <= 2)
                | ((c["grade"] == 3) & c["disability_type"].is_in(["INTELLECTUAL", "MENTAL"]))
            ).any()
        )

    def care_elderly(self, i: str) -> bool:
        a = self.rows("mca.care_assessments", [i])
        return self.age(i) >= 60 and bool((a["level"] == "SEVERE").any())

    def hardship(self, i: str, severe: bool = False) -> bool:
        risk = bool(
            (self.rows("mara.at_risk_households", [i])["risk_status"] == "RISK_PRESENT").any()
        )
        damage = self.rows("mem.disaster_victims", [i], True)["house_damage"]
        if severe:
            return risk or self.ill(i) or bool((damage == "COLLAPSED").any())
        unemp = self.rows("hrss.unemployment_registrations", [i])
        certs = self.rows("cdpf.disability_certificates", [i])
        return (
            risk
            or bool((unemp["status"] == "ACTIVE").any())
            or bool((certs["status"] == "VALID").any())
            or self.ill(i)
            or self.oop(i) >= 20000
            or bool(damage.is_in(["SEVERE", "COLLAPSED"]).any())
        )

    def passes_assets(self, ids, program: str) -> bool:
        v = self.rows("mps.vehicles", ids).filter(
            (pl.col("status") == "ACTIVE")
            & pl.col("vehicle_class").is_in(["CAR", "TRUCK"])
            & (pl.col("assessed_value") > LIMITS["vehicle"][program])
        )
        b = self.rows("samr.business_registrations", ids).filter(
            (pl.col("status") == "ACTIVE")
            & (
                (pl.col("entity_type") == "ENTERPRISE")
                | (
                    (pl.col("entity_type") == "INDIVIDUAL_BUSINESS")
                    & (pl.col("registered_capital") > D(100000))
                )
            )
        )
        p = self.rows("mnr.properties", ids).filter(pl.col("status") == "ACTIVE")
        residential = p.filter(pl.col("usage") == "RESIDENTIAL")["property_id"].n_unique()
        other = p.filter(pl.col("usage").is_in(["COMMERCIAL", "INDUSTRIAL"])).height
        return v.is_empty() and b.is_empty() and residential <= 1 and other == 0

    def household(self, subject: str, source: str) -> tuple[list[str], str | None]:
        if source == "ROSTER":
            rows = self.roster.filter(pl.col("case_id") == subject)
            gone = self.reg.filter(pl.col("status") != "ACTIVE")["id_number"]
            ids = [i for i in rows["id_number"] if i not in set(gone)]
            return ids, rows["program"][0]
        rows = self.reg.filter((pl.col("hukou_no") == subject) & (pl.col("status") == "ACTIVE"))
        return rows["id_number"].to_list(), None

    def covered(self, ids) -> bool:
        return bool(self.roster["id_number"].is_in(list(ids)).any())

    def newly_eligible(self, subject: str, source: str) -> set[str]:
        ids, program = self.household(subject, source)
        n, income = D(len(ids)), sum((self.income(i) for i in ids), D(0))
        oop = sum((self.oop(i) for i in ids), D(0))
        registry = source == "REGISTRY" and not self.covered(ids)
        candidate = program in ("DIBAO_EDGE", "RIGID_EXPENDITURE") or (
            registry and any(self.hardship(i) for i in ids)
        )
        below = income < self.std * n
        edge = income < D("1.5") * self.std * n
        after = 12 * income - oop < 12 * self.std * n
        out = set()
        if candidate and below and self.passes_assets(ids, "DIBAO"):
            out.add("NE_DIBAO")
        if (
            candidate
            and not below
            and oop > 0
            and after
            and self.passes_assets(ids, "RIGID_EXPENDITURE")
        ):
            out.add("NE_RIGID_EXPENDITURE_DIBAO")
        if (
            candidate
            and registry
            and not below
            and edge
            and self.passes_assets(ids, "DIBAO_EDGE")
            and "NE_RIGID_EXPENDITURE_DIBAO" not in out
        ):
            out.add("NE_DIBAO_EDGE")
        return out

    def tekun(self, i: str) -> bool:
        me = self.reg.filter(pl.col("id_number") == i)
        if me["status"][0] != "ACTIVE":
            return False
        on = self.roster.filter(pl.col("id_number") == i)
        if (on["program"] == "TEKUN").any() or not (on.height or self.hardship(i)):
            return False
        age = self.age(i)
        if not (age >= 60 or age < 16 or self.severely_disabled(i)):
            return False
        # the standard of 350102 either way (roster case county or registry county)
        if self.income(i) >= self.std:
            return False
        others = self.reg.filter(
            (pl.col("hukou_no") == me["hukou_no"][0])
            & (pl.col("status") == "ACTIVE")
            & (pl.col("id_number") != i)
        )["id_number"]
        if any(18 <= self.age(o) <= 59 and not self.severely_disabled(o) for o in others):
            return False
        return self.passes_assets([i], "TEKUN")

    def raised(self, case: dict) -> bool:
        rule, subject, source = case["rule_id"], case["subject"], case.get("household_source")
        if rule in ("NE_DIBAO", "NE_RIGID_EXPENDITURE_DIBAO", "NE_DIBAO_EDGE"):
            return rule in self.newly_eligible(subject, source)
        if rule == "HWP_UNMATCHED_HARDSHIP":
            ids, _ = self.household(subject, source)
            return (
                source == "REGISTRY"
                and not self.covered(ids)
                and any(self.hardship(i, severe=True) for i in ids)
                and not self.newly_eligible(subject, source)
                and not any(self.tekun(i) for i in ids)
            )
        if rule in ("NLE_INCOME", "NLE_ASSETS", "PNI_RURAL_HOUSING", "PNI_URBAN_HOUSING"):
            ids, program = self.household(subject, source)
            n, income = D(len(ids)), sum((self.income(i) for i in ids), D(0))
            rows = self.roster.filter(pl.col("case_id") == subject)
            if rule == "NLE_INCOME":
                exit_ = rows["gradual_exit_until"].drop_nulls()
                return (
                    program == "DIBAO"
                    and not rows["single_person"][0]
                    and income >= self.std * n
                    and not bool((exit_ >= self.e).any())
                ) or (program == "DIBAO_EDGE" and income >= D("1.5") * self.std * n)
            if rule == "NLE_ASSETS":
                return program in ("DIBAO", "TEKUN", "DIBAO_EDGE") and not self.passes_assets(
                    ids, program
                )
            if rule == "PNI_RURAL_HOUSING":
                h = self.rows("mohurd.rural_housing", ids).filter(
                    pl.col("safety_rating").is_in(["C", "D"])
                    & (pl.col("renovation_status") == "NONE")
                )
                return program in ("DIBAO", "TEKUN", "DIBAO_EDGE") and h.height > 0
            head = rows.filter(pl.col("relation") == "HEAD")["id_number"][0]
            urban = self.reg.filter(pl.col("id_number") == head)["residence_type"][0] == "URBAN"
            homes = self.rows("mnr.properties", ids).filter(
                (pl.col("status") == "ACTIVE") & (pl.col("usage") == "RESIDENTIAL")
            )
            support = self.rows("mohurd.housing_support", ids)
            return (
                program in ("DIBAO", "TEKUN") and urban and homes.is_empty() and support.is_empty()
            )
        if rule == "NE_SINGLE_PERSON_DIBAO":
            case_id = self.roster.filter(pl.col("id_number") == subject)["case_id"][0]
            _, program = self.household(case_id, "ROSTER")
            return (
                program in ("DIBAO_EDGE", "RIGID_EXPENDITURE")
                and (
                    self.ill(subject)
                    or self.severely_disabled(subject)
                    or self.care_elderly(subject)
                )
                and not self.newly_eligible(case_id, "ROSTER")
            )
        if rule == "NE_TEKUN":
            return self.tekun(subject)
        if rule == "PNI_DISABILITY_LIVING_SUBSIDY":
            on = self.roster.filter(pl.col("id_number") == subject)
            valid = self.rows("cdpf.disability_certificates", [subject])["status"] == "VALID"
            living = self.rows("cdpf.disability_subsidies", [subject], True)["subsidy_type"]
            return (
                bool((on["program"] == "DIBAO").any() and valid.any())
                and not (living == "LIVING").any()
            )
        raise AssertionError(rule)


@pytest.mark.parametrize("quarter", [Q2, Q3], ids=str)
def test_planted_cases_hold_under_the_policy(county: Path, tmp_path: Path, quarter):
    window = [q for q in quarter.window() if q in COUNTY_QUARTERS]
    staged = {q: _staged(county, tmp_path / str(q), q) for q in window}
    oracle = Oracle(staged[quarter], [staged[q] for q in window], quarter)
    cases = json.loads((county / str(quarter) / PLANTED_CASES).read_text(encoding="utf-8"))
    checked = 0
    for case in cases:
        if case["rule_id"] in ORACLE_RULES:
            assert oracle.raised(case) == (case["expect"] == "warning"), case
            checked += 1
    assert checked >= 2 * len(ORACLE_RULES)
    # no planted bad row on a case's people, and the settlements add up
    people = _members(cases, staged[quarter])
    for name, frame in staged[quarter].items():
        if name.startswith("quarantine.") and frame is not None and "id_number" in frame.columns:
            assert frame.filter(pl.col("id_number").is_in(list(people))).is_empty(), name
    s = oracle.rows("nhsa.settlements", people, True)
    parts = ["basic_fund_paid", "critical_illness_paid", "medical_assistance_paid", "out_of_pocket"]
    assert s.filter(pl.col("total_cost") != pl.sum_horizontal(parts)).is_empty()
