"""Rule cases as data (as openfisca/country-template writes its tests): a YAML list of cases,
each named as a sentence, run through the real facts and rules on tiny typed staging tables.

The cases of a rule are in `tests/rule_cases/<RULE_ID>.yaml`, one file per rule of the catalogue;
a case about two sibling rules alike (both disability subsidies, both NLE person rules) sits with
the first it expects, and the other's file says so. Cases about several rules at once are in
lower-case files named for what they test (`missing_data.yaml`, `registry_status.yaml`).

A case:
```yaml
- name: In 2026Q3 a Fuzhou dibao household of three with 2,999 yuan is below the new standard
  quarter: 2026Q3
  people:                 # registry rows; a `case` also puts the person on the roster
    - {id: A, born: 1980-05-01, case: C1, program: DIBAO}
  rows:                   # any other extract, persons by handle; event rows may name a quarter
    hrss/employment: [{id: A, monthly_wage: 2999}]
  failed: [moe/student_aid]          # extracts that failed in the case's quarter
  failed_in: {2026Q1: [moe/student_aid]}   # extracts that failed in an earlier quarter of W
  loaded: [2026Q2, 2026Q3]           # quarters of W that were processed (default: all four)
  expect:                            # exactly these subjects per listed rule
    NE_DIBAO: [C1]                   # households by case id or hukou number, persons by handle
  not_evaluated: [PNI_EDUCATION_AID]
  evidence: {NE_DIBAO: {C1: {size: 3}}}       # top-level evidence values (optional)
  reason: {NE_DIBAO: {C1: "2,999.00 元"}}     # a piece of reason_zh (optional)
```
Person fields and their defaults: `born` (1980-01-01), `county` (350102), `hukou` (the case, else
`H-<id>`), `relation` (HEAD), `status` (ACTIVE), `status_date`, `residence` (RURAL),
`in_registry` (true); roster fields when `case` is given: `program` (DIBAO), `roster_relation`
(the registry relation), `case_county` (the county), `single_person` (false), `start_date`,
`gradual_exit_until`, `other_income` (0), `monthly_benefit` (300).
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import yaml
from stdnum.cn import ric

from pipelines.core import pseudonym
from pipelines.core.contracts import extract_contracts
from pipelines.core.quarters import Quarter
from pipelines.core.valuetypes import VALUE_TYPES
from pipelines.policy import evaluate as rules
from pipelines.policy import facts
from pipelines.policy.engine import Engine


def _defaults(q: Quarter, n: int) -> dict[str, dict[str, Any]]:
    """Column defaults per extract, for the rows a case does not spell out; `n` numbers ids."""
    inside = q.start + dt.timedelta(days=10)
    return {
        "mca/care_assessments": {"assessed_on": "2025-01-01", "level": "SEVERE"},
        "mps/vehicles": {
            "vehicle_id": f"V{n}",
            "vehicle_class": "CAR",
            "assessed_value": 50000,
            "status": "ACTIVE",
        },
        "hrss/employment": {
            "employer_id": f"E{n}",
            "monthly_wage": 0,
            "started_on": "2020-01-01",
            "ended_on": None,
        },
        "hrss/pensions": {"pension_type": "EMPLOYEE", "monthly_amount": 0},
        "hrss/unemployment_registrations": {
            "registered_on": "2025-01-01",
            "able_to_work": True,
            "willing_to_work": True,
            "status": "ACTIVE",
            "benefit_monthly": 0,
        },
        "hrss/employment_assistance": {
            "service_id": f"S{n}",
            "service_type": "TRAINING",
            "service_date": inside,
        },
        "nhsa/enrollments": {"scheme": "RESIDENT", "status": "ENROLLED", "premium_subsidy": 380},
        "nhsa/settlements": {
            "settlement_id": f"JS{n}",
            "settled_on": inside,
            "visit_type": "INPATIENT",
            "basic_fund_paid": 0,
            "critical_illness_paid": 0,
            "medical_assistance_paid": 0,
            "out_of_pocket": 0,
        },
        "moe/students": {"stage": "PRIMARY", "school_code": "S1", "status": "ENROLLED"},
        "moe/student_aid": {
            "aid_id": f"A{n}",
            "aid_type": "GRANT",
            "amount": 500,
            "granted_on": inside,
        },
        "mohurd/rural_housing": {
            "house_id": f"NF{n}",
            "safety_rating": "C",
            "renovation_status": "NONE",
            "assessed_on": "2025-01-01",
        },
        "mohurd/housing_support": {"support_type": "PUBLIC_RENTAL", "started_on": "2025-01-01"},
        "mnr/properties": {
            "property_id": f"P{n}",
            "usage": "RESIDENTIAL",
            "area_m2": 80.0,
            "status": "ACTIVE",
        },
        "samr/business_registrations": {
            "entity_id": f"B{n}",
            "entity_type": "INDIVIDUAL_BUSINESS",
            "registered_capital": 50000,
            "status": "ACTIVE",
        },
        "cdpf/disability_certificates": {
            "disability_type": "PHYSICAL",
            "grade": 2,
            "status": "VALID",
        },
        "cdpf/disability_subsidies": {
            "subsidy_type": "LIVING",
            "month": q.start,
            "amount": 100,
        },
        "mara/at_risk_households": {
            "monitor_household_id": "M1",
            "risk_type": "ILLNESS",
            "risk_status": "RISK_PRESENT",
        },
        "mem/disaster_victims": {
            "event_id": f"ZH{n}",
            "disaster_type": "FLOOD",
            "occurred_on": inside,
            "house_damage": "SEVERE",
            "relief_amount": 0,
        },
    }


@dataclass
class Case:
    name: str
    quarter: Quarter
    people: list[dict[str, Any]]
    rows: dict[str, list[dict[str, Any]]]
    failed: list[str]
    loaded: list[Quarter]
    expect: dict[str, list[str]]
    not_evaluated: list[str]
    evidence: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    reason: dict[str, dict[str, str]] = field(default_factory=dict)
    failed_in: dict[str, list[str]] = field(default_factory=dict)  # quarter -> failed extracts

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Case:
        q = Quarter.parse(str(doc["quarter"]))
        loaded = [Quarter.parse(str(x)) for x in doc.get("loaded") or q.window(4)]
        return cls(
            name=doc["name"],
            quarter=q,
            people=doc.get("people") or [],
            rows=doc.get("rows") or {},
            failed=doc.get("failed") or [],
            loaded=loaded,
            failed_in={str(k): list(v) for k, v in (doc.get("failed_in") or {}).items()},
            expect={k: [str(s) for s in v or []] for k, v in (doc.get("expect") or {}).items()},
            not_evaluated=doc.get("not_evaluated") or [],
            evidence=doc.get("evidence") or {},
            reason=doc.get("reason") or {},
        )


def load_case_files(directory: Path) -> dict[str, list[Case]]:
    """The cases of each file by its name without `.yaml`: a rule id, or what the cases across
    rules test."""
    return {
        path.stem: [Case.from_doc(doc) for doc in yaml.safe_load(path.read_text(encoding="utf-8"))]
        for path in sorted(directory.glob("*.yaml"))
    }


def load_cases(directory: Path) -> list[Case]:
    return [case for cases in load_case_files(directory).values() for case in cases]


def identity_number(county: str, born: dt.date, n: int) -> str:
    body = f"{county}{born:%Y%m%d}{100 + n:03d}"
    return body + ric.calc_check_digit(body)


@dataclass
class Built:
    sources: facts.Sources
    ids: dict[str, str]  # handle -> identity number


def build(case: Case, folder: Path) -> Built:
    """Typed staging Parquet for the case, and the Sources the evaluator reads."""
    q = case.quarter
    counter = itertools.count(1)
    ids: dict[str, str] = {}
    registry, roster = [], []
    for p in case.people:
        handle = str(p["id"])
        born = _date(p.get("born", "1980-01-01"))
        county = str(p.get("county", "350102"))
        ids[handle] = identity_number(county, born, next(counter))
        relation = p.get("relation", "HEAD")
        if p.get("in_registry", True):
            registry.append(
                {
                    "id_number": ids[handle],
                    "name": f"测试{handle}",
                    "gender": "M" if int(ids[handle][16]) % 2 else "F",
                    "birth_date": born,
                    "hukou_no": str(p.get("hukou", p.get("case", f"H-{handle}"))),
                    "relation": relation,
                    "county_code": county,
                    "residence_type": p.get("residence", "RURAL"),
                    "status": p.get("status", "ACTIVE"),
                    "status_date": p.get("status_date"),
                }
            )
        if "case" in p:
            roster.append(
                {
                    "id_number": ids[handle],
                    "name": f"测试{handle}",
                    "case_id": str(p["case"]),
                    "relation": p.get("roster_relation", relation),
                    "county_code": str(p.get("case_county", county)),
                    "program": p.get("program", "DIBAO"),
                    "single_person": bool(p.get("single_person", False)),
                    "start_date": p.get("start_date", "2024-01-01"),
                    "gradual_exit_until": p.get("gradual_exit_until"),
                    "monthly_benefit": p.get("monthly_benefit", 300),
                    "other_income_monthly": p.get("other_income", 0),
                }
            )
    tables: dict[tuple[str, str], list[dict[str, Any]]] = {
        (str(q), "mps/residents"): registry,
        (str(q), "mca/assistance_roster"): roster,
    }
    for name, rows in case.rows.items():
        for row in rows:
            row = dict(row)
            when = str(row.pop("quarter", q))
            n = next(counter)
            full = {**_defaults(Quarter.parse(when), n).get(name, {}), **row}
            handle = str(full.pop("id"))
            full["id_number"] = ids.get(handle, handle)
            if name == "nhsa/settlements" and "total_cost" not in full:
                full["total_cost"] = sum(
                    float(full[k])
                    for k in (
                        "basic_fund_paid",
                        "critical_illness_paid",
                        "medical_assistance_paid",
                        "out_of_pocket",
                    )
                )
            tables.setdefault((when, name), []).append(full)

    contracts = {f"{c.department}/{c.extract}": c for c in extract_contracts()}
    status, staging = {}, {}
    for loaded in case.loaded:
        for name, contract in contracts.items():
            key = (str(loaded), contract.department, contract.extract)
            if (loaded == q and name in case.failed) or name in case.failed_in.get(str(loaded), []):
                status[key] = "FAILED"
                continue
            status[key] = "PASSED"
            schema = {c.name: VALUE_TYPES[c.value_type].staged for c in contract.columns}
            rows = [
                {c: _value(r.get(c), schema[c]) for c in schema}
                for r in tables.get((str(loaded), name), [])
            ]
            if not rows:
                continue  # an accepted extract with no rows: the evaluator's empty table
            path = folder / str(loaded) / contract.department / f"{contract.extract}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pl.DataFrame(rows, schema=schema).write_parquet(path)
            staging[key] = path
    return Built(facts.Sources(q, tuple(case.loaded), status, staging), ids)


def _date(v: Any) -> dt.date:
    return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))


def _value(v: Any, dtype: pl.DataType) -> Any:
    from decimal import Decimal

    if v is None:
        return None
    if dtype == pl.Date:
        return _date(v)
    if isinstance(dtype, pl.Decimal):
        return Decimal(str(v)).quantize(Decimal("0.01"))
    if dtype == pl.Boolean:
        return bool(v)
    if dtype == pl.Int64:
        return int(v)
    if dtype == pl.Float64:
        return float(v)
    return str(v)


def run(
    case: Case, folder: Path, engine: Engine | None = None
) -> tuple[rules.Evaluation, dict[str, str]]:
    """Build the case's staging tables and evaluate them, in `engine` if given (a session the
    test run keeps open, reset for each case) else in a session of its own."""
    built = build(case, folder)
    evaluation = rules.evaluate_sources(built.sources, pseudonym.DEMO_KEY.encode(), engine=engine)
    return evaluation, built.ids


def subjects(evaluation: rules.Evaluation, ids: dict[str, str]) -> dict[str, list[str]]:
    """Raised subjects per rule, persons by handle, households by id."""
    handles = {v: k for k, v in ids.items()}
    out: dict[str, list[str]] = {}
    for rule_id, kind, id_number, household in evaluation.warnings.select(
        "rule_id", "subject_type", "id_number", "household_id"
    ).iter_rows():
        subject = handles.get(id_number, id_number) if kind == "PERSON" else household
        out.setdefault(rule_id, []).append(subject)
    return {k: sorted(v) for k, v in out.items()}
