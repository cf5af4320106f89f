"""Planted rule cases: for every rule of policy.md §2, a positive case (the rule must raise a
warning) and a near-miss (it must not), written to `<out>/<quarter>/_planted_cases.json`.

The subjects are roster members who are on the roster and ACTIVE in the registry from 2024 to
2027 (so a case stays put across quarters), each used for one case only. Their rows in the
extracts are set (added, changed or removed) in every quarter generated, so the twelve-month
window W holds what the case needs; planted bad rows never touch them. A planted subject raises
exactly the rules planted as a warning for it: the children of `PNI_EDUCATION_AID` and the
certificate holders of `PNI_DISABILITY_CARE_SUBSIDY` have a capable supporter (another member of
their registry household aged 18–59 through 2027, with no certificate and no planted bad row),
so that `NE_TEKUN` is not raised for them.

Each rule: positive (+), near-miss (−).
- `PNI_EDUCATION_AID`: + DIBAO child, ENROLLED student, no `student_aid` in any quarter;
  − DIBAO child, ENROLLED, a `student_aid` row in the quarter.
- `PNI_MEDICAL_ENROLMENT`: + DIBAO member, RESIDENT scheme, ENROLLED, `premium_subsidy` 0;
  − the same with `premium_subsidy` 380.
- `PNI_MEDICAL_ASSISTANCE`: + DIBAO member, INPATIENT settlement in Q, assistance 0, out of
  pocket 1500; − DIBAO_EDGE member, the same with out of pocket 900 (deductible 1000).
- `PNI_DISASTER_RELIEF`: + DIBAO member, disaster row in Q, SEVERE damage, relief 0;
  − the same with relief 500.
- `PNI_DISABILITY_CARE_SUBSIDY`: + DIBAO member, VALID grade-2 certificate, no CARE subsidy
  ever; − VALID grade-3 PHYSICAL certificate, no CARE subsidy (LIVING paid to both).
- `PNI_EMPLOYMENT_ASSISTANCE`: + DIBAO member born 1977–1999, ACTIVE registration, able and
  willing, no assistance ever; − the same but not willing to work.
- `NLE_DECEASED`: + DIBAO member, registry DECEASED on 2026-08-15 (in quarters ending after that
  day); − a DECEASED registry person not on the roster.
- `NLE_MOVED_OUT`: + DIBAO member, registry MOVED_OUT on 2026-08-15 (likewise); − a MOVED_OUT
  registry person not on the roster.

Household cases (and the person cases that depend on a household: `PNI_DISABILITY_LIVING_SUBSIDY`,
`NE_SINGLE_PERSON_DIBAO`, `NE_TEKUN`): whole households, chosen once (`_choose_households`) among
those whose members are all born by 2023 and ACTIVE through 2027, one role each, none holding a
subject above. ROSTER households (two members or more) are on the roster in the same programme in
2023Q4 and 2027Q4 and have a member aged 18–59 through 2027 (a capable supporter of the others: no
`NE_TEKUN` for a member; for the PERSON cases, one other than the subject), and their DIBAO cases
have a RURAL head but for the `PNI_URBAN_HOUSING` ones (no unplanted `PNI_URBAN_HOUSING`);
REGISTRY households on it at neither, and their members are taken off it in every quarter
(non-covered). In every quarter every row of every member is removed from every
extract but the registry (roster members keep their row, with no other income and no 渐退期),
and exactly what the case needs is added (`_Plan`, `_build`): incomes from `dibao_standard` in
effect at E for the county (cases needing it are not recorded before 2024-07-01), event rows in
every quarter such that the case holds with 1 to 4 quarters of W loaded. The subject of a
household case is its `case_id` (ROSTER) or `hukou_no` (REGISTRY), with `household_source`.
docs/generator.md lists every planted case with its deciding figures.

The background data raises many warnings of its own; the planted cases promise what happens to
their own subjects: each raises exactly its rules planted as a warning (a near-miss that another
rule then catches, as `ne_dibao_reg_near` for `NE_DIBAO_EDGE`, plants that rule as a warning).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from pipelines.core.layout import Landing
from pipelines.core.quarters import Quarter
from pipelines.generate import extracts, province

PLANTED_CASES = "_planted_cases.json"
EXIT_DAY = dt.date(2026, 8, 15)
_FIRST, _LAST = Quarter(2024, 1), dt.date(2027, 12, 31)
Frames = dict[tuple[str, str], pl.DataFrame]


def subjects(pop: province.Population) -> dict[str, str]:
    """role -> identity number: stable roster members, chosen once for the population."""
    before = province.at(pop, _FIRST.start - dt.timedelta(days=1))
    roster = extracts.roster(before, Quarter(2023, 4))
    stay = pop.people.filter(pl.col("exit_day") > province.day_number(_LAST)).select(
        "id_number", "birth"
    )
    pool = roster.join(stay, on="id_number").sort("id_number")
    # capable supporters (policy.md NE_TEKUN): other members of the registry household aged
    # 18–59 and ACTIVE through 2027; a subject who could be a tekun person (a minor, the
    # severely disabled, the old) gets one, so that NE_TEKUN is never raised for them
    who = pop.people.select("id_number", "hh")
    capable = pop.people.filter(
        pl.col("birth").is_between(*_YOUNG) & (pl.col("exit_day") > province.day_number(_LAST))
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
        "job_pos": ("DIBAO", year.is_between(1977, 1999)),
        "job_near": ("DIBAO", year.is_between(1977, 1999)),
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
    _choose_households(pop, roster, chosen)
    return chosen


# person roles whose subject has a capable supporter in their registry household (`subjects`)
SUPPORTED = ("edu_pos", "edu_near", "care_pos", "care_near")


def _drop(f: pl.DataFrame, ids: list[str], where: pl.Expr | None = None) -> pl.DataFrame:
    gone = pl.col("id_number").is_in(ids)
    return f.filter(~(gone & where) if where is not None else ~gone)


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
        rows = []
        for i, (role, oop) in enumerate((("medical_pos", 150_000), ("medical_near", 90_000))):
            basic = 300_000
            rows.append(
                {
                    "settlement_id": sid("JS", i),
                    "id_number": chosen[role],
                    "settled_on": day.isoformat(),
                    "visit_type": "INPATIENT",
                    "total_cost": _yuan(basic + oop),
                    "basic_fund_paid": _yuan(basic),
                    "critical_illness_paid": "0.00",
                    "medical_assistance_paid": "0.00",
                    "out_of_pocket": _yuan(oop),
                }
            )
        frames["nhsa", "settlements"] = pl.concat([s, pl.DataFrame(rows, schema=s.schema)])
        case("PNI_MEDICAL_ASSISTANCE", "warning", "medical_pos", "DIBAO, inpatient, oop 1500")
        case(
            "PNI_MEDICAL_ASSISTANCE",
            "no_warning",
            "medical_near",
            "DIBAO_EDGE, inpatient, oop 900 below the deductible 1000",
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
    cases += _apply_households(frames, chosen, q, people)
    return cases


def _yuan(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


def write(out: Path, q: Quarter, cases: list[dict]) -> Path:
    path = Landing(out).sidecar(q, PLANTED_CASES)
    path.write_text(
        json.dumps(cases, indent=2, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path


# --- cases on whole households ----------------------------------------------------------------
# policy.md §3 `dibao_standard` (yuan / person / month) from 2024-07-01, 2025-07-01, 2026-07-01;
# a county's own value overrides its prefecture's (first four digits + `00`).
DIBAO_FROM = (dt.date(2024, 7, 1), dt.date(2025, 7, 1), dt.date(2026, 7, 1))
DIBAO_STANDARD = {
    "350100": (900, 950, 1000),
    "350128": (930, 980, 1030),
    "350200": (1080, 1130, 1200),
    "350300": (840, 880, 920),
    "350400": (810, 850, 900),
    "350500": (900, 940, 990),
    "350600": (840, 880, 930),
    "350700": (810, 850, 900),
    "350800": (820, 860, 910),
    "350900": (810, 850, 900),
}
ROSTER, REGISTRY = "ROSTER", "REGISTRY"
RIGID_OOP = 60_000  # cents of out of pocket planted in every quarter (W holds 1 to 4 of them)
_DAY = province.day_number
_OLD = _DAY(dt.date(1963, 12, 31))  # 60 or older at every E from 2024 on
_ADULT = _DAY(dt.date(2005, 12, 31))  # 18 or older at every E from 2024 on
_YOUNG = (_DAY(dt.date(1969, 1, 1)), _DAY(dt.date(2005, 12, 31)))  # 18–59 through 2027

# role -> (household kind, roster programme, min size, max size, extra condition); ROSTER
# households have two members or more, so that no case turns into a single old person's
# (whose programme follows the TEKUN share of the quarter). DIBAO cases other than the urban
# housing ones have a RURAL head (no PNI_URBAN_HOUSING); a household whose planted subject is
# a member has another member aged 18–59 through 2027 (a capable supporter: no NE_TEKUN).
_RURAL = ~pl.col("urban")
HOUSEHOLDS: dict[str, tuple[str, str | None, int, int, pl.Expr | None]] = {
    "rural_pos": (ROSTER, "DIBAO", 2, 7, ~pl.col("urban")),
    "rural_near": (ROSTER, "DIBAO", 2, 7, ~pl.col("urban")),
    "urban_pos": (ROSTER, "DIBAO", 2, 7, pl.col("urban")),
    "urban_near": (ROSTER, "DIBAO", 2, 7, pl.col("urban")),
    "living_pos": (ROSTER, "DIBAO", 2, 7, _RURAL & pl.col("head_supported")),
    "living_near": (ROSTER, "DIBAO", 2, 7, _RURAL & pl.col("head_supported")),
    "ne_dibao_pos": (ROSTER, "DIBAO_EDGE", 2, 7, None),
    "ne_dibao_near": (ROSTER, "DIBAO_EDGE", 2, 7, None),
    "ne_dibao_reg_pos": (REGISTRY, None, 2, 7, None),
    "ne_dibao_reg_near": (REGISTRY, None, 2, 7, None),
    "rigid_pos": (ROSTER, "RIGID_EXPENDITURE", 2, 7, None),
    "rigid_near": (ROSTER, "RIGID_EXPENDITURE", 2, 7, None),
    "edge_pos": (REGISTRY, None, 2, 7, None),
    "edge_near": (REGISTRY, None, 2, 7, None),
    "edge_near_income": (REGISTRY, None, 2, 7, None),
    "single_pos": (ROSTER, "DIBAO_EDGE", 2, 7, pl.col("last_supported")),
    "single_near": (ROSTER, "RIGID_EXPENDITURE", 2, 7, pl.col("last_supported")),
    "single_near_grade": (ROSTER, "DIBAO_EDGE", 2, 7, pl.col("last_supported")),
    "tekun_pos": (REGISTRY, None, 1, 1, pl.col("head_birth") <= _OLD),
    "tekun_near": (REGISTRY, None, 1, 1, pl.col("head_birth") <= _OLD),
    "tekun_near_supporter": (
        REGISTRY,
        None,
        2,
        2,
        (pl.col("head_birth") <= _OLD) & pl.col("young_birth").is_between(*_YOUNG),
    ),
    "nle_income_pos": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_income_near": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_income_near_exit": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_assets_pos": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_assets_near": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "hwp_pos": (REGISTRY, None, 2, 7, pl.col("last_birth") <= _ADULT),
    "hwp_near": (REGISTRY, None, 2, 7, pl.col("last_birth") <= _ADULT),
}


def dibao_standard(county: str, day: dt.date) -> int | None:
    """`dibao_standard` in effect on `day` for `county`, in cents (None: no value in effect)."""
    values = DIBAO_STANDARD.get(county) or DIBAO_STANDARD.get(county[:4] + "00")
    since = [i for i, start in enumerate(DIBAO_FROM) if start <= day]
    if values is None or not since:
        return None
    return values[since[-1]] * 100


def household_id(source: str, county: str, hh: int) -> str:
    """The roster `case_id` or the registry `hukou_no` of household `hh` (as `extracts` and
    `province.residents` write them)."""
    number = f"{county}{hh:09d}"
    return "FJ" + number if source == ROSTER else number


def _choose_households(pop: province.Population, roster: pl.DataFrame, chosen: dict) -> None:
    """Add role -> household id for `HOUSEHOLDS`: households whose members are all born by
    2023 and ACTIVE through 2027, none holding a subject chosen before, one case each; ROSTER
    ones on the roster in the programme from 2023Q4 to 2027Q4, REGISTRY ones on it never."""
    people = pop.people
    born_by, last = _DAY(_FIRST.start - dt.timedelta(days=1)), _DAY(_LAST)
    who = people.select("id_number", "hh")
    after = extracts.roster(province.at(pop, _LAST), Quarter(2027, 4))
    programme = (
        roster.join(who, on="id_number")
        .join(after.join(who, on="id_number").select("id_number", later="program"), on="id_number")
        .filter(pl.col("program") == pl.col("later"))
        .group_by("hh")
        .agg(pl.col("program").first())
    )
    covered = pl.concat([roster.select("id_number"), after.select("id_number")]).join(
        who, on="id_number"
    )["hh"]
    used = who.filter(pl.col("id_number").is_in(list(chosen.values())))["hh"]
    table = (
        people.group_by("hh")
        .agg(
            size=pl.len(),
            stable=((pl.col("birth") <= born_by) & (pl.col("exit_day") > last)).all(),
            urban=pl.col("urban").first(),
            county=pl.col("county_code").first(),
            head_birth=pl.col("birth").filter(pl.col("pos") == 0).first(),
            young_birth=pl.col("birth").filter(pl.col("pos") > 0).max(),
            last_birth=pl.col("birth").max(),
            supported=pl.col("birth").is_between(*_YOUNG).any(),
            head_supported=pl.col("birth").filter(pl.col("pos") > 0).is_between(*_YOUNG).any(),
            last_supported=pl.col("birth")
            .filter(pl.col("pos") < pl.col("pos").max())
            .is_between(*_YOUNG)
            .any(),
        )
        .filter(pl.col("stable") & ~pl.col("hh").is_in(used.implode()))
        .join(programme, on="hh", how="left")
        .with_columns(covered=pl.col("hh").is_in(covered.implode()))
        .sort("hh")
    )
    taken: list[int] = []
    for role, (source, program, lo, hi, extra) in HOUSEHOLDS.items():
        fits = pl.col("size").is_between(lo, hi) & ~pl.col("hh").is_in(
            pl.Series(taken, dtype=pl.Int64).implode()
        )
        if source == ROSTER:  # all roster persons: a capable supporter for the old and young
            fits = fits & (pl.col("program") == program) & pl.col("supported")
        else:
            fits = fits & ~pl.col("covered")
        if extra is not None:
            fits = fits & extra
        left = table.filter(fits)
        if left.height:
            hh, county = left["hh"][0], left["county"][0]
            taken.append(hh)
            chosen[role] = household_id(source, county, hh)


class _Plan:
    """The rows of the planted households' members in one quarter, set in place of theirs."""

    def __init__(self, q: Quarter):
        self.q = q
        self.day = (q.start + dt.timedelta(days=20)).isoformat()
        self.rows: dict[tuple[str, str], list[dict]] = {}
        self.ids: list[str] = []
        self.off_roster: list[str] = []
        self.roster: dict[str, dict[str, str]] = {}  # id -> roster columns to set
        self.n = 0

    def add(self, dept: str, extract: str, **row: str) -> None:
        self.rows.setdefault((dept, extract), []).append(row)

    def serial(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}{self.q}-H{self.n:03d}"

    def take(self, h: _House) -> None:
        """Every row of the members goes; each keeps a medical enrolment (subsidised on the
        roster), ROSTER members keep their roster rows with no other income and no 渐退期."""
        for m in h.members:
            self.ids.append(m["id_number"])
            on_roster = h.source == ROSTER
            if on_roster:
                self.roster[m["id_number"]] = {
                    "other_income_monthly": "0.00",
                    "gradual_exit_until": "",
                }
            else:
                self.off_roster.append(m["id_number"])
            self.add(
                "nhsa",
                "enrollments",
                id_number=m["id_number"],
                scheme="RESIDENT",
                status="ENROLLED",
                premium_subsidy="380.00" if on_roster else "0.00",
            )

    def income(self, h: _House, m: dict, cents: int) -> None:
        """`cents` a month for member `m`: roster other income on the roster, else a wage
        (under 60) or an employee pension (60 and over)."""
        if h.source == ROSTER:
            self.roster[m["id_number"]]["other_income_monthly"] = _yuan(cents)
        elif m["age"] >= 60:
            self.add(
                "hrss",
                "pensions",
                id_number=m["id_number"],
                pension_type="EMPLOYEE",
                monthly_amount=_yuan(cents),
            )
        else:
            self.add(
                "hrss",
                "employment",
                id_number=m["id_number"],
                employer_id="91350100MA0PLANT0X",
                monthly_wage=_yuan(cents),
                started_on="2020-01-01",
                ended_on="",
            )

    def certificate(self, m: dict, kind: str, grade: int) -> None:
        self.add(
            "cdpf",
            "disability_certificates",
            id_number=m["id_number"],
            disability_type=kind,
            grade=str(grade),
            status="VALID",
        )

    def subsidy(self, m: dict, kind: str, amount: str) -> None:
        for i in range(3):
            month = f"{self.q.year}-{self.q.start.month + i:02d}"
            self.add(
                "cdpf",
                "disability_subsidies",
                id_number=m["id_number"],
                subsidy_type=kind,
                month=month,
                amount=amount,
            )

    def settlement(self, m: dict, oop: int) -> None:
        basic = 40_000
        self.add(
            "nhsa",
            "settlements",
            settlement_id=self.serial("JS"),
            id_number=m["id_number"],
            settled_on=self.day,
            visit_type="OUTPATIENT",
            total_cost=_yuan(basic + oop),
            basic_fund_paid=_yuan(basic),
            critical_illness_paid="0.00",
            medical_assistance_paid="0.00",
            out_of_pocket=_yuan(oop),
        )

    def vehicle(self, m: dict, kind: str, cents: int, status: str = "ACTIVE") -> None:
        self.add(
            "mps",
            "vehicles",
            vehicle_id=f"LFVP{m['id_number'][-8:]}{self.serial('')[-3:]}",
            id_number=m["id_number"],
            vehicle_class=kind,
            assessed_value=_yuan(cents),
            status=status,
        )

    def business(self, m: dict, kind: str, cents: int, status: str = "ACTIVE") -> None:
        self.add(
            "samr",
            "business_registrations",
            entity_id=f"92350P{m['id_number'][-8:]}{self.serial('')[-3:]}X",
            id_number=m["id_number"],
            entity_type=kind,
            registered_capital=_yuan(cents),
            status=status,
        )

    def property(self, owners: list[dict], usage: str, status: str = "ACTIVE") -> None:
        pid = f"350P{owners[0]['id_number'][-8:]}{self.serial('')[-3:]}GB00001F0001"
        for m in owners:
            self.add(
                "mnr",
                "properties",
                property_id=pid,
                id_number=m["id_number"],
                usage=usage,
                area_m2="64.00",
                status=status,
            )

    def at_risk(self, h: _House) -> None:
        for m in h.members:
            self.add(
                "mara",
                "at_risk_households",
                id_number=m["id_number"],
                monitor_household_id=f"JCP{h.hh:010d}",
                risk_type="ILLNESS",
                risk_status="RISK_PRESENT",
            )

    def apply(self, frames: Frames) -> None:
        ids = pl.Series(self.ids, dtype=pl.String).implode()
        off = pl.Series(self.off_roster, dtype=pl.String).implode()
        on = pl.Series(list(self.roster), dtype=pl.String).implode()
        for key, f in frames.items():
            if key == ("mps", "residents"):
                continue
            if key == ("mca", "assistance_roster"):
                f = f.filter(~pl.col("id_number").is_in(off))
                for column in ("other_income_monthly", "gradual_exit_until"):
                    setting = {i: v[column] for i, v in self.roster.items()}
                    f = f.with_columns(
                        pl.when(pl.col("id_number").is_in(on))
                        .then(pl.col("id_number").replace_strict(setting, default=""))
                        .otherwise(pl.col(column))
                        .alias(column)
                    )
            else:
                f = f.filter(~pl.col("id_number").is_in(ids))
                if key in self.rows:
                    f = pl.concat([f, pl.DataFrame(self.rows[key], schema=f.schema)])
            frames[key] = f


class _House:
    def __init__(self, role: str, subject: str, members: list[dict]):
        self.role = role
        self.source = HOUSEHOLDS[role][0]
        self.program = HOUSEHOLDS[role][1]
        self.subject = subject
        self.hh = int(subject[-9:])
        self.county = subject[-15:-9]
        self.members = members  # head first
        self.head = members[0]
        self.last = members[-1]
        self.size = len(members)


def _apply_households(frames: Frames, chosen: dict, q: Quarter, people: pl.DataFrame) -> list:
    roles = [r for r in HOUSEHOLDS if r in chosen]
    if not roles:
        return []
    numbers = [int(chosen[r][-9:]) for r in roles]
    members = (
        people.filter(pl.col("hh").is_in(numbers))
        .select("hh", "pos", "id_number", "age", "status")
        .sort("hh", "pos")
    )
    roster = frames["mca", "assistance_roster"].filter(
        pl.col("id_number").is_in(members["id_number"].implode())
    )
    programme = dict(roster.select("id_number", "program").iter_rows())
    plan, cases = _Plan(q), []
    for role, hh in zip(roles, numbers, strict=True):
        rows = members.filter(pl.col("hh") == hh).to_dicts()
        h = _House(role, chosen[role], rows)
        if any(m["status"] != "ACTIVE" for m in rows):
            continue  # not expected: the households stay put
        if h.source == ROSTER and any(programme.get(m["id_number"]) != h.program for m in rows):
            continue  # the whole household on the roster, in its programme, or no case
        plan.take(h)
        for i, m in enumerate(rows):
            chosen[f"{role}/member{i}"] = m["id_number"]  # protected from planted bad rows
        standard = dibao_standard(h.county, q.end)
        for rule, expect, subject, note in _build(plan, h, standard, q):
            case = {
                "rule_id": rule,
                "expect": expect,
                "subject": subject,
                "role": role,
                "note": note,
            }
            if subject == h.subject:
                case["household_source"] = h.source
            cases.append(case)
    plan.apply(frames)
    return cases


def _build(p: _Plan, h: _House, s: int | None, q: Quarter) -> list[tuple[str, str, str, str]]:
    """Plant household `h`'s rows for its role; returns (rule, expect, subject, note) of the
    cases that hold this quarter (none when the standard `s`, in cents, is not in effect)."""
    role, n, head, last = h.role, h.size, h.head, h.last
    kind = f"{h.program} case" if h.source == ROSTER else "non-covered registry household"
    # cases that need no standard
    if role in ("rural_pos", "rural_near"):
        rating, works = ("D", "NONE") if role == "rural_pos" else ("C", "IN_PROGRESS")
        p.add(
            "mohurd",
            "rural_housing",
            house_id=f"NFP{h.hh:010d}",
            id_number=head["id_number"],
            safety_rating=rating,
            renovation_status=works,
            assessed_on="2020-05-01",
        )
        rule = "PNI_RURAL_HOUSING"
        if role == "rural_pos":
            return [(rule, "warning", h.subject, f"{kind}: head's house rated D, renovation NONE")]
        return [(rule, "no_warning", h.subject, f"{kind}: head's house rated C, IN_PROGRESS")]
    if role in ("urban_pos", "urban_near"):
        rule = "PNI_URBAN_HOUSING"
        if role == "urban_pos":
            p.property([last], "RESIDENTIAL", "CANCELLED")
            p.property([head], "OTHER")
            note = (
                f"{kind}, head URBAN: a CANCELLED RESIDENTIAL property and an ACTIVE OTHER one, "
                "no housing support"
            )
            return [(rule, "warning", h.subject, note)]
        p.property([head], "RESIDENTIAL")
        note = f"{kind}, head URBAN: one ACTIVE RESIDENTIAL property"
        return [(rule, "no_warning", h.subject, note)]
    if role in ("living_pos", "living_near"):
        p.certificate(head, "VISUAL", 3)
        rule = "PNI_DISABILITY_LIVING_SUBSIDY"
        if role == "living_pos":
            return [(rule, "warning", head["id_number"], "DIBAO, VALID grade 3, no subsidy in W")]
        p.subsidy(head, "LIVING", "80.00")
        return [(rule, "no_warning", head["id_number"], "DIBAO, VALID grade 3, LIVING in Q")]
    if role in ("nle_assets_pos", "nle_assets_near"):
        rule = "NLE_ASSETS"
        if role == "nle_assets_pos":
            p.business(head, "ENTERPRISE", 5_000_000)
            return [(rule, "warning", h.subject, f"{kind}: head has an ACTIVE ENTERPRISE (50000)")]
        p.business(head, "FARMER_COOP", 200_000_000)
        p.business(last, "INDIVIDUAL_BUSINESS", 10_000_000)
        p.business(head, "ENTERPRISE", 5_000_000, "REVOKED")
        p.vehicle(head, "MOTORCYCLE", 2_000_000)
        p.vehicle(head, "CAR", 8_000_000, "SCRAPPED")
        p.property([head, last], "RESIDENTIAL")
        note = (
            f"{kind}: ACTIVE FARMER_COOP 2000000, INDIVIDUAL_BUSINESS at the limit 100000, "
            "a REVOKED ENTERPRISE, a MOTORCYCLE, a SCRAPPED CAR, one RESIDENTIAL property "
            "owned by two members (one distinct)"
        )
        return [(rule, "no_warning", h.subject, note)]
    if s is None:
        return []
    t = s * n  # standard × size, cents
    edge = t * 3 // 2  # dibao_edge_multiplier 1.5
    std = f"standard {_yuan(s)} × {n} = {_yuan(t)}"
    edge_std = f"1.5 × {_yuan(s)} × {n} = {_yuan(edge)}"
    if role in ("ne_dibao_pos", "ne_dibao_near", "ne_dibao_reg_pos", "ne_dibao_reg_near"):
        if h.source == REGISTRY:
            p.certificate(head, "HEARING", 4)  # has_hardship_signal
            kind += " (VALID grade-4 certificate)"
        pos = role.endswith("_pos")
        income = t - 100 if pos else t
        p.income(h, head, income)
        cmp = "<" if pos else "="
        note = f"{kind}: household income {_yuan(income)} {cmp} {std}"
        if h.source == REGISTRY and not pos:  # not below the standard, so below the edge
            edge_note = f"{note}, {_yuan(income)} < {edge_std}, no out of pocket"
            return [
                ("NE_DIBAO", "no_warning", h.subject, note),
                ("NE_DIBAO_EDGE", "warning", h.subject, edge_note + ": NE_DIBAO_EDGE instead"),
            ]
        return [("NE_DIBAO", "warning" if pos else "no_warning", h.subject, note)]
    if role in ("rigid_pos", "rigid_near", "edge_near"):
        income = t if role != "rigid_near" else t + RIGID_OOP // 3
        p.income(h, head, income)
        p.settlement(last, RIGID_OOP)
        oop = f"out of pocket {_yuan(RIGID_OOP)} in each quarter of W"
        if role == "rigid_pos":
            p.vehicle(head, "CAR", 15_000_000)
            note = (
                f"{kind}: household income {_yuan(income)} = {std} (not below), {oop}, "
                "an ACTIVE CAR at the limit 150000"
            )
            return [("NE_RIGID_EXPENDITURE_DIBAO", "warning", h.subject, note)]
        if role == "rigid_near":
            note = (
                f"{kind}: household income {_yuan(income)}, {std}, {oop}: "
                f"12 × {_yuan(income)} − {_yuan(4 * RIGID_OOP)} = 12 × {_yuan(t)} in a full W"
            )
            return [("NE_RIGID_EXPENDITURE_DIBAO", "no_warning", h.subject, note)]
        p.certificate(head, "HEARING", 4)
        note = (
            f"{kind} (VALID grade-4 certificate): household income {_yuan(income)} = {std}, "
            f"{oop}: NE_RIGID_EXPENDITURE_DIBAO raised"
        )
        return [
            ("NE_RIGID_EXPENDITURE_DIBAO", "warning", h.subject, note),
            ("NE_DIBAO_EDGE", "no_warning", h.subject, note + ", so NE_DIBAO_EDGE is not"),
        ]
    if role in ("edge_pos", "edge_near_income"):
        p.certificate(head, "HEARING", 4)
        pos = role == "edge_pos"
        income = edge - 100 if pos else edge
        p.income(h, head, income)
        if pos:
            p.vehicle(head, "CAR", 15_000_000)
        note = (
            f"{kind} (VALID grade-4 certificate): household income {_yuan(income)} "
            f"{'<' if pos else '='} {edge_std}, no out of pocket"
            + (", an ACTIVE CAR at the limit 150000" if pos else "")
        )
        return [("NE_DIBAO_EDGE", "warning" if pos else "no_warning", h.subject, note)]
    if role in ("single_pos", "single_near", "single_near_grade"):
        grade = 3 if role == "single_near_grade" else 1
        p.certificate(last, "PHYSICAL", grade)
        if grade == 1:
            p.subsidy(last, "CARE", "100.00")
        income = t - 100 if role == "single_near" else t
        p.income(h, head, income)
        who = last["id_number"]
        rule = "NE_SINGLE_PERSON_DIBAO"
        base = f"{kind}: household income {_yuan(income)}, {std}, no out of pocket"
        if role == "single_pos":
            note = f"{base}; member VALID PHYSICAL grade 1 (severely disabled)"
            return [(rule, "warning", who, note)]
        if role == "single_near_grade":
            note = f"{base}; member VALID PHYSICAL grade 3 (not severely disabled)"
            return [(rule, "no_warning", who, note)]
        note = f"{base}; member VALID PHYSICAL grade 1, but the case is below the standard"
        return [
            ("NE_DIBAO", "warning", h.subject, f"{kind}: household income {_yuan(income)} < {std}"),
            (rule, "no_warning", who, note + ": NE_DIBAO raised for the case"),
        ]
    if role in ("tekun_pos", "tekun_near", "tekun_near_supporter"):
        if head["age"] < 60 or (role == "tekun_near_supporter" and not 18 <= last["age"] <= 59):
            return []
        p.certificate(head, "HEARING", 4)  # has_hardship_signal, not severely disabled
        own = s if role == "tekun_near" else s - 100
        p.add(
            "hrss",
            "pensions",
            id_number=head["id_number"],
            pension_type="RESIDENT",
            monthly_amount=_yuan(own),
        )
        p.vehicle(head, "MOTORCYCLE", 300_000)
        cmp = "=" if role == "tekun_near" else "<"
        note = (
            f"aged {head['age']}, not on the roster, VALID grade-4 certificate, own income "
            f"{_yuan(own)} {cmp} standard {_yuan(s)}, a MOTORCYCLE"
        )
        if role == "tekun_pos":
            return [("NE_TEKUN", "warning", head["id_number"], note + ", lives alone")]
        if role == "tekun_near":
            return [("NE_TEKUN", "no_warning", head["id_number"], note + ", lives alone")]
        note += f"; lives with a member aged {last['age']} (a capable supporter)"
        return [("NE_TEKUN", "no_warning", head["id_number"], note)]
    if role in ("nle_income_pos", "nle_income_near", "nle_income_near_exit"):
        income = t - 100 if role == "nle_income_near" else t
        p.income(h, head, income)
        cmp = "<" if role == "nle_income_near" else "="
        note = f"{kind}, not single: household income {_yuan(income)} {cmp} {std}"
        if role == "nle_income_pos":
            return [("NLE_INCOME", "warning", h.subject, note + ", no 渐退期")]
        if role == "nle_income_near":
            return [("NLE_INCOME", "no_warning", h.subject, note)]
        p.roster[head["id_number"]]["gradual_exit_until"] = q.end.isoformat()
        note += f", head's gradual_exit_until = E ({q.end})"
        return [("NLE_INCOME", "no_warning", h.subject, note)]
    if role in ("hwp_pos", "hwp_near"):
        p.at_risk(h)
        if role == "hwp_pos":
            for m in h.members:
                p.income(h, m, s * 3 // 2)
            note = (
                f"{kind}, members RISK_PRESENT: each member's income {_yuan(s * 3 // 2)} "
                f"(household {_yuan(edge)} = {edge_std}), no NEWLY_ELIGIBLE warning"
            )
            return [("HWP_UNMATCHED_HARDSHIP", "warning", h.subject, note)]
        p.income(h, head, edge - 100)
        note = (
            f"{kind}, members RISK_PRESENT: household income {_yuan(edge - 100)} < {edge_std}, "
            "no out of pocket"
        )
        return [
            ("NE_DIBAO_EDGE", "warning", h.subject, note),
            ("HWP_UNMATCHED_HARDSHIP", "no_warning", h.subject, note + ": NE_DIBAO_EDGE raised"),
        ]
    raise ValueError(f"no plan for role {role!r}")
