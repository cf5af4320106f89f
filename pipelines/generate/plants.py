"""Planted rule cases: for every rule of policy.md §2, a positive case (the rule must raise a
warning) and a near-miss (it must not), written to `<out>/<quarter>/_planted_cases.json`.

The subjects are roster members who are on the roster and ACTIVE in the registry from 2024 to
2027 (so a case stays put across quarters), each used for one case only. Their rows in the
extracts are set (added, changed or removed) in every quarter generated, so the twelve-month
window W holds what the case needs; planted bad rows never touch them. A planted subject raises
exactly the rules planted as a warning for it: the children of `PNI_EDUCATION_AID` and the
certificate holders of `PNI_DISABILITY_CARE_SUBSIDY` have a capable supporter (another member of
their registry household of `supporter_age` through 2027, with no certificate and no planted bad
row), so that `NE_TEKUN` is not raised for them.

Each rule: positive (+), near-miss (−).
- `PNI_EDUCATION_AID`: + DIBAO child, ENROLLED student, no `student_aid` in any quarter;
  − DIBAO child, ENROLLED, a `student_aid` row in the quarter.
- `PNI_MEDICAL_ENROLMENT`: + DIBAO member, RESIDENT scheme, ENROLLED, `premium_subsidy` 0;
  − the same with `premium_subsidy` 380.
- `PNI_MEDICAL_ASSISTANCE`: + DIBAO member, INPATIENT settlement in Q, assistance 0, out of
  pocket 1500 above the DIBAO deductible (0); − DIBAO_EDGE member, the same with out of pocket
  100 below the DIBAO_EDGE deductible (900 under 1000).
- `PNI_DISASTER_RELIEF`: + DIBAO member, disaster row in Q, SEVERE damage, relief 0;
  − the same with relief 500.
- `PNI_DISABILITY_CARE_SUBSIDY`: + DIBAO member, VALID grade-2 certificate, no CARE subsidy
  ever; − VALID grade-3 PHYSICAL certificate, no CARE subsidy (LIVING paid to both).
- `PNI_EMPLOYMENT_ASSISTANCE`: + DIBAO member born 1977–1999 (and of working age through 2027),
  ACTIVE registration, able and willing, no assistance ever; − the same but not willing to work.
- `NLE_DECEASED`: + DIBAO member, registry DECEASED on 2026-08-15 (in quarters ending after that
  day); − a DECEASED registry person not on the roster.
- `NLE_MOVED_OUT`: + DIBAO member, registry MOVED_OUT on 2026-08-15 (likewise); − a MOVED_OUT
  registry person not on the roster.

Household cases (and the person cases that depend on a household: `PNI_DISABILITY_LIVING_SUBSIDY`,
`NE_SINGLE_PERSON_DIBAO`, `NE_TEKUN`) are `households`'s: `subjects` chooses their households
after the persons, and `apply` plants them after the person cases.

The figures a case is planted against are the parameters' (`rules/parameters/`), never copies:
in effect at E (the deductibles; `households.figure`), or through every quarter from 2024 to 2027
where a subject is chosen once for them all (who is a capable supporter, `supporter_age`; a
working-age subject, `working_age`), so a new dated value moves the cases with it.

The background data raises many warnings of its own; the planted cases promise what happens to
their own subjects: each raises exactly its rules planted as a warning (a near-miss that another
rule then catches, as `ne_dibao_reg_near` for `NE_DIBAO_EDGE`, plants that rule as a warning).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from pipelines.core import parameters
from pipelines.core.cells import money
from pipelines.core.layout import Landing
from pipelines.core.quarters import Quarter
from pipelines.generate import extracts, households, province
from pipelines.generate.households import Frames

PLANTED_CASES = "_planted_cases.json"
EXIT_DAY = dt.date(2026, 8, 15)
# the quarters a subject stays put through: on the roster before the first, ACTIVE after the last
_FIRST, _LAST = Quarter(2024, 1), Quarter(2027, 4)
_DAY = province.day_number


def _through(name: str) -> list:
    """Every value of parameter `name` in effect in a quarter from `_FIRST` to `_LAST`."""
    return parameters.parameters()[name].in_effect(_FIRST.start, _LAST.end)


def _birth_years(name: str) -> tuple[int, int]:
    """The years of birth (whole years, both included) of the people within the age range of
    parameter `name` at every E from `_FIRST` to `_LAST`."""
    ranges = _through(name)
    youngest, oldest = max(int(r["min"]) for r in ranges), min(int(r["max"]) for r in ranges)
    return _LAST.year - oldest + 1, _FIRST.year - youngest - 1


def subjects(pop: province.Population) -> dict[str, str]:
    """role -> identity number: stable roster members, chosen once for the population."""
    before = province.at(pop, _FIRST.start - dt.timedelta(days=1))
    roster = extracts.roster(before, _FIRST.previous())
    stay = pop.people.filter(pl.col("exit_day") > _DAY(_LAST.end)).select("id_number", "birth")
    pool = roster.join(stay, on="id_number").sort("id_number")
    # capable supporters (policy.md NE_TEKUN): other members of the registry household of
    # `supporter_age` and ACTIVE through 2027; a subject who could be a tekun person (a minor,
    # the severely disabled, the old) gets one, so that NE_TEKUN is never raised for them
    first, last = _birth_years("supporter_age")
    young = (_DAY(dt.date(first, 1, 1)), _DAY(dt.date(last, 12, 31)))
    who = pop.people.select("id_number", "hh")
    capable = pop.people.filter(
        pl.col("birth").is_between(*young) & (pl.col("exit_day") > _DAY(_LAST.end))
    ).select("hh", supporter="id_number")
    supporters = (
        pool.select("id_number")
        .join(who, on="id_number")
        .join(capable, on="hh")
        .filter(pl.col("supporter") != pl.col("id_number"))
        .group_by("id_number")
        .agg(pl.col("supporter").sort())
    )
    pool = pool.join(supporters, on="id_number", how="left").sort("id_number")
    year = pl.col("birth").cast(pl.Date).dt.year()
    # of working age through 2027, and well inside it
    first, last = _birth_years("working_age")
    job_years = (max(1977, first), min(1999, last))
    wanted = {
        "edu_pos": ("DIBAO", year.is_between(2011, 2015)),
        "edu_near": ("DIBAO", year.is_between(2011, 2015)),
        "enrol_pos": ("DIBAO", year < 2000),
        "enrol_near": ("DIBAO", year < 2000),
        "medical_pos": ("DIBAO", year < 2000),
        "medical_near": ("DIBAO_EDGE", year < 2000),
        "disaster_pos": ("DIBAO", year < 2000),
        "disaster_near": ("DIBAO", year < 2000),
        "care_pos": ("DIBAO", year < 2000),
        "care_near": ("DIBAO", year < 2000),
        "job_pos": ("DIBAO", year.is_between(*job_years)),
        "job_near": ("DIBAO", year.is_between(*job_years)),
        "deceased_pos": ("DIBAO", year < 2000),
        "moved_pos": ("DIBAO", year < 2000),
    }
    chosen: dict[str, str] = {}
    for role, (program, condition) in wanted.items():
        left = pool.filter(
            (pl.col("program") == program)
            & condition
            & ~pl.col("id_number").is_in(list(chosen.values()))
        )
        for subject, helpers in left.select("id_number", "supporter").iter_rows():
            if role not in SUPPORTED:
                chosen[role] = subject
                break
            free = [h for h in helpers or [] if h not in chosen.values()]
            if free:
                chosen[role], chosen[f"{role}/supporter"] = subject, free[0]
                break
    households.choose(pop, roster, chosen, _FIRST, _LAST, young)
    return chosen


# person roles whose subject has a capable supporter in their registry household (`subjects`)
SUPPORTED = ("edu_pos", "edu_near", "care_pos", "care_near")


def _drop(f: pl.DataFrame, ids: list[str]) -> pl.DataFrame:
    return f.filter(~pl.col("id_number").is_in(ids))


def _put(f: pl.DataFrame, rows: list[dict]) -> pl.DataFrame:
    """Replace the rows of these people (by identity number) with `rows`."""
    ids = [r["id_number"] for r in rows]
    return pl.concat([_drop(f, ids), pl.DataFrame(rows, schema=f.schema)])


def _stage(age: int) -> str:
    return "PRIMARY" if age <= 11 else ("JUNIOR" if age <= 14 else "SENIOR")


def apply(frames: Frames, chosen: dict[str, str], q: Quarter, people: pl.DataFrame) -> list[dict]:
    """Change `frames` in place for the planted cases; returns the cases of this quarter."""
    cases: list[dict] = []
    ages = dict(
        people.filter(pl.col("id_number").is_in(list(chosen.values())))
        .select("id_number", "age")
        .iter_rows()
    )

    def case(rule: str, expect: str, role: str, note: str) -> None:
        cases.append(
            {
                "rule_id": rule,
                "expect": expect,
                "subject": chosen[role],
                "role": role,
                "note": note,
            }
        )

    def have(*roles: str) -> bool:
        return all(r in chosen for r in roles)

    day = q.start + dt.timedelta(days=20)
    # a supporter stays capable: no disability certificate (and, being in `chosen`, no bad row)
    frames["cdpf", "disability_certificates"] = _drop(
        frames["cdpf", "disability_certificates"],
        [v for k, v in chosen.items() if k.endswith("/supporter")],
    )

    def sid(prefix: str, i: int) -> str:
        return f"{prefix}{q}-P{i:03d}"

    if have("edu_pos", "edu_near"):
        pos, near = chosen["edu_pos"], chosen["edu_near"]
        frames["moe", "students"] = _put(
            frames["moe", "students"],
            [
                {
                    "id_number": p,
                    "stage": _stage(ages[p]),
                    "school_code": "3350100001",
                    "status": "ENROLLED",
                }
                for p in (pos, near)
            ],
        )
        aid = _drop(frames["moe", "student_aid"], [pos, near])
        frames["moe", "student_aid"] = pl.concat(
            [
                aid,
                pl.DataFrame(
                    [
                        {
                            "aid_id": sid("ZZ", 1),
                            "id_number": near,
                            "aid_type": "GRANT",
                            "amount": "1000.00",
                            "granted_on": day.isoformat(),
                        }
                    ],
                    schema=aid.schema,
                ),
            ]
        )
        case("PNI_EDUCATION_AID", "warning", "edu_pos", "enrolled, no student aid in W")
        case("PNI_EDUCATION_AID", "no_warning", "edu_near", "enrolled, student aid in Q")
    if have("enrol_pos", "enrol_near"):
        frames["nhsa", "enrollments"] = _put(
            frames["nhsa", "enrollments"],
            [
                {
                    "id_number": chosen[r],
                    "scheme": "RESIDENT",
                    "status": "ENROLLED",
                    "premium_subsidy": amount,
                }
                for r, amount in (("enrol_pos", "0.00"), ("enrol_near", "380.00"))
            ],
        )
        case("PNI_MEDICAL_ENROLMENT", "warning", "enrol_pos", "RESIDENT scheme, no subsidy")
        case("PNI_MEDICAL_ENROLMENT", "no_warning", "enrol_near", "RESIDENT scheme, subsidy 380")
    if have("medical_pos", "medical_near"):
        s = _drop(frames["nhsa", "settlements"], [chosen["medical_pos"], chosen["medical_near"]])
        deductible = {
            p: int(v * 100)
            for p, v in households.figure("medical_assistance_deductible", q.end).items()
        }
        above = deductible["DIBAO"] + 150_000  # medical_pos: DIBAO; medical_near: DIBAO_EDGE
        below = max(0, deductible["DIBAO_EDGE"] - 10_000)
        rows = []
        for i, (role, oop) in enumerate((("medical_pos", above), ("medical_near", below))):
            basic = 300_000
            rows.append(
                {
                    "settlement_id": sid("JS", i),
                    "id_number": chosen[role],
                    "settled_on": day.isoformat(),
                    "visit_type": "INPATIENT",
                    "total_cost": money(basic + oop),
                    "basic_fund_paid": money(basic),
                    "critical_illness_paid": "0.00",
                    "medical_assistance_paid": "0.00",
                    "out_of_pocket": money(oop),
                }
            )
        frames["nhsa", "settlements"] = pl.concat([s, pl.DataFrame(rows, schema=s.schema)])
        case(
            "PNI_MEDICAL_ASSISTANCE",
            "warning",
            "medical_pos",
            f"DIBAO, inpatient, oop {households.whole(above)}",
        )
        case(
            "PNI_MEDICAL_ASSISTANCE",
            "no_warning",
            "medical_near",
            f"DIBAO_EDGE, inpatient, oop {households.whole(below)} below the deductible "
            f"{households.whole(deductible['DIBAO_EDGE'])}",
        )
    if have("disaster_pos", "disaster_near"):
        d = _drop(
            frames["mem", "disaster_victims"], [chosen["disaster_pos"], chosen["disaster_near"]]
        )
        rows = [
            {
                "event_id": f"ZH{q}-P1",
                "id_number": chosen[role],
                "disaster_type": "FLOOD",
                "occurred_on": day.isoformat(),
                "house_damage": "SEVERE",
                "relief_amount": relief,
            }
            for role, relief in (("disaster_pos", "0.00"), ("disaster_near", "500.00"))
        ]
        frames["mem", "disaster_victims"] = pl.concat([d, pl.DataFrame(rows, schema=d.schema)])
        case("PNI_DISASTER_RELIEF", "warning", "disaster_pos", "SEVERE damage, relief 0")
        case("PNI_DISASTER_RELIEF", "no_warning", "disaster_near", "SEVERE damage, relief 500")
    if have("care_pos", "care_near"):
        pos, near = chosen["care_pos"], chosen["care_near"]
        frames["cdpf", "disability_certificates"] = _put(
            frames["cdpf", "disability_certificates"],
            [
                {"id_number": p, "disability_type": "PHYSICAL", "grade": g, "status": "VALID"}
                for p, g in ((pos, "2"), (near, "3"))
            ],
        )
        sub = _drop(frames["cdpf", "disability_subsidies"], [pos, near])
        months = [f"{q.year}-{q.start.month + i:02d}" for i in range(3)]
        living = [
            {"id_number": p, "subsidy_type": "LIVING", "month": m, "amount": "80.00"}
            for p in (pos, near)
            for m in months
        ]
        frames["cdpf", "disability_subsidies"] = pl.concat(
            [sub, pl.DataFrame(living, schema=sub.schema)]
        )
        case("PNI_DISABILITY_CARE_SUBSIDY", "warning", "care_pos", "VALID grade 2, no CARE")
        case("PNI_DISABILITY_CARE_SUBSIDY", "no_warning", "care_near", "VALID grade 3, no CARE")
    if have("job_pos", "job_near"):
        frames["hrss", "unemployment_registrations"] = _put(
            frames["hrss", "unemployment_registrations"],
            [
                {
                    "id_number": chosen[r],
                    "registered_on": "2023-03-01",
                    "able_to_work": "true",
                    "willing_to_work": willing,
                    "status": "ACTIVE",
                    "benefit_monthly": "0.00",
                }
                for r, willing in (("job_pos", "true"), ("job_near", "false"))
            ],
        )
        frames["hrss", "employment_assistance"] = _drop(
            frames["hrss", "employment_assistance"], [chosen["job_pos"], chosen["job_near"]]
        )
        case("PNI_EMPLOYMENT_ASSISTANCE", "warning", "job_pos", "able, willing, no assistance")
        case("PNI_EMPLOYMENT_ASSISTANCE", "no_warning", "job_near", "able, not willing")
    if q.end >= EXIT_DAY:
        res = frames["mps", "residents"]
        roster_ids = frames["mca", "assistance_roster"]["id_number"]
        for role, status, rule in (
            ("deceased_pos", "DECEASED", "NLE_DECEASED"),
            ("moved_pos", "MOVED_OUT", "NLE_MOVED_OUT"),
        ):
            if role not in chosen:
                continue
            res = res.with_columns(
                pl.when(pl.col("id_number") == chosen[role])
                .then(pl.lit(v))
                .otherwise(pl.col(c))
                .alias(c)
                for c, v in (("status", status), ("status_date", EXIT_DAY.isoformat()))
            )
            case(rule, "warning", role, f"on the roster, registry {status} on {EXIT_DAY}")
            other = res.filter(
                (pl.col("status") == status) & ~pl.col("id_number").is_in(roster_ids.implode())
            ).sort("id_number")
            if other.height:
                chosen[f"{role}_near"] = other["id_number"][0]
                case(rule, "no_warning", f"{role}_near", f"registry {status}, not on the roster")
        frames["mps", "residents"] = res
    cases += households.apply(frames, chosen, q, people)
    return cases


def write(out: Path, q: Quarter, cases: list[dict]) -> Path:
    path = Landing(out).sidecar(q, PLANTED_CASES)
    path.write_text(
        json.dumps(cases, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path
