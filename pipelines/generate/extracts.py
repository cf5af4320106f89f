"""Every department extract of one quarter, keyed on the same synthetic people.

Snapshot extracts (S) describe the state at `E` and draw on each person's stable uniforms
(`u0`..`u7`, `hh_u`), so the same people appear quarter after quarter; event extracts (V) draw on
a random stream of the quarter and fall inside it. Every frame is text in canonical column order
(an empty string is null), ready for the `samples` writers.

Who is in what (shares of the registry's ACTIVE residents, roughly):
- assistance_roster — registry households as cases: DIBAO ≈ 1.25 %, TEKUN ≈ 0.16 % (single old
  people), DIBAO_EDGE ≈ 0.6 %, RIGID_EXPENDITURE ≈ 0.3 %; a case joins on its `start_date` and
  members who died or moved out by `E` are not on it;
- employment 18–59 (≈ 45 %), pensions 60+ (employee ≈ 35 %, resident the rest), students 3–22 by
  age, unemployment registrations ≈ 2 % of 18–59, care assessments ≈ 20 % of 60+, vehicles ≈ 12 %
  of adults, properties ≈ 30 % of adults, businesses ≈ 5 %, disability certificates ≈ 6 %,
  rural houses of ≈ 30 % of rural heads, housing support ≈ 1 % of urban heads, at-risk households
  ≈ 1 % of rural households, medical enrollment ≈ 97 %;
- events per quarter: settlements (≈ 8 % of people), employment assistance, student aid,
  disability subsidies (monthly), a disaster or two (typhoons in Q3).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipelines.core.quarters import Quarter
from pipelines.generate import province
from pipelines.generate.province import day_number

ISO = "%Y-%m-%d"


def _day_between(u: str, first: dt.date, last: dt.date) -> pl.Expr:
    a, b = day_number(first), day_number(last)
    return (pl.lit(a) + (pl.col(u) * (b - a)).cast(pl.Int64)).cast(pl.Int32)


def _date_text(day: pl.Expr) -> pl.Expr:
    return day.cast(pl.Date).dt.strftime(ISO)


def _money(cents: pl.Expr) -> pl.Expr:
    c = cents.cast(pl.Int64)
    return (c // 100).cast(pl.String) + "." + (c % 100).cast(pl.String).str.zfill(2)


def _pick(values: list[str], u: str, weights: list[float] | None = None) -> pl.Expr:
    """A value chosen by the uniform column `u` (weighted)."""
    w = np.array(weights if weights else [1.0] * len(values), dtype=float)
    edges = np.cumsum(w / w.sum())[:-1].tolist()
    idx = pl.lit(0)
    for e in edges:
        idx = idx + (pl.col(u) >= e).cast(pl.Int32)
    return pl.lit(pl.Series(values)).gather(idx)


def _frac(u: str, k: int) -> pl.Expr:
    """Another uniform from `u` (its k-th decimal digits), for a second independent choice."""
    return (pl.col(u) * 10**k) % 1.0


def roster(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    e = q.end
    heads = people.group_by("hh").agg(
        size=pl.len(), head_age=pl.col("age").filter(pl.col("pos") == 0).first()
    )
    p = people.join(heads, on="hh", how="left").filter(pl.col("active"))
    single_old = (pl.col("size") == 1) & (pl.col("head_age") >= 60)
    n_single_old = max(1, p.filter(single_old).height)
    tekun_share = min(0.9, 0.0016 * people.height / n_single_old)
    program = (
        pl.when(single_old & (pl.col("hh_u") < tekun_share))
        .then(pl.lit("TEKUN"))
        .when(~single_old & (pl.col("hh_u") < 0.014))
        .then(pl.lit("DIBAO"))
        .when(~single_old & (pl.col("hh_u") < 0.020))
        .then(pl.lit("DIBAO_EDGE"))
        .when(~single_old & (pl.col("hh_u") < 0.023))
        .then(pl.lit("RIGID_EXPENDITURE"))
    )
    # the case's own uniform: the household uniform's later digits
    case_u = (pl.col("hh_u") * 1e6) % 1.0
    start = _day_between("case_u", dt.date(2014, 1, 1), dt.date(2027, 6, 30))
    r = (
        p.with_columns(program=program, case_u=case_u)
        .filter(pl.col("program").is_not_null())
        .with_columns(start=start)
        .filter(pl.col("start") <= day_number(e))
        .with_columns(members=pl.len().over("hh"))
    )
    benefit = (
        pl.when(pl.col("program") == "TEKUN")
        .then(130_000 + pl.col("u1") * 40_000)
        .when(pl.col("program") == "DIBAO")
        .then(40_000 + pl.col("u1") * 55_000)
        .otherwise(0)
    )
    income = pl.when(pl.col("u2") < 0.6).then(0).otherwise(pl.col("u3") * 60_000)
    gradual = pl.when((pl.col("program") == "DIBAO") & (pl.col("case_u") > 0.95)).then(
        _date_text(pl.lit(day_number(e)) + (pl.col("case_u") * 2000).cast(pl.Int32) % 180)
    )
    return r.select(
        "id_number",
        "name",
        case_id=pl.lit("FJ") + pl.col("county_code") + pl.col("hh").cast(pl.String).str.zfill(9),
        relation=province.relation_text(),
        county_code="county_code",
        program="program",
        single_person=pl.when(pl.col("members") == 1)
        .then(pl.lit("true"))
        .otherwise(pl.lit("false")),
        # mca may send compact dates (extracts.md §2)
        start_date=pl.when(pl.col("u5") < 0.1)
        .then(pl.col("start").cast(pl.Date).dt.strftime("%Y%m%d"))
        .otherwise(_date_text(pl.col("start"))),
        gradual_exit_until=gradual.fill_null(""),
        monthly_benefit=_money(benefit.round()),
        other_income_monthly=_money(income.round()),
    )


def care_assessments(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    on = _day_between("u5", dt.date(2019, 1, 1), dt.date(2027, 12, 31))
    return (
        people.filter(pl.col("active") & (pl.col("age") >= 60) & (pl.col("u0") < 0.2))
        .with_columns(on=on)
        .filter(pl.col("on") <= day_number(q.end))
        .select(
            "id_number",
            assessed_on=_date_text(pl.col("on")),
            level=_pick(["INTACT", "MILD", "MODERATE", "SEVERE"], "u6", [5, 3, 1.5, 0.7]),
        )
    )


def vehicles(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    return people.filter((pl.col("age") >= 18) & (pl.col("u1") < 0.12)).select(
        vehicle_id=pl.lit("LFV") + pl.col("pid").cast(pl.String).str.zfill(14),
        id_number="id_number",
        vehicle_class=_pick(
            ["CAR", "TRUCK", "MOTORCYCLE", "LOW_SPEED", "DISABLED_MOBILITY"],
            "u2",
            [60, 5, 30, 4, 1],
        ),
        assessed_value=_money((pl.col("u3") ** 2 * 30_000_000 + 200_000).round()),
        status=pl.when(pl.col("active"))
        .then(_pick(["ACTIVE", "SCRAPPED", "TRANSFERRED"], "u4", [90, 6, 4]))
        .otherwise(pl.lit("TRANSFERRED")),
    )


def employment(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    started = _day_between("u3", dt.date(2005, 1, 1), dt.date(2027, 12, 31))
    ended = pl.when(pl.col("u4") < 0.15).then(
        _date_text(pl.min_horizontal(pl.col("start") + 400, pl.lit(day_number(q.end))))
    )
    return (
        people.filter(pl.col("active") & pl.col("age").is_between(18, 59) & (pl.col("u2") < 0.45))
        .with_columns(start=started)
        .filter(pl.col("start") <= day_number(q.end))
        .select(
            "id_number",
            employer_id=pl.lit("91350")
            + ((pl.col("u5") * 5_000).cast(pl.Int64) + 1).cast(pl.String).str.zfill(13),
            monthly_wage=_money((200_000 + pl.col("u6") ** 2 * 1_800_000).round()),
            started_on=_date_text(pl.col("start")),
            ended_on=ended.fill_null(""),
        )
    )


def pensions(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    employee = pl.col("u2") < 0.35
    return people.filter(pl.col("active") & (pl.col("age") >= 60)).select(
        "id_number",
        pension_type=pl.when(employee).then(pl.lit("EMPLOYEE")).otherwise(pl.lit("RESIDENT")),
        monthly_amount=_money(
            pl.when(employee)
            .then(250_000 + pl.col("u3") * 400_000)
            .otherwise(16_000 + pl.col("u3") * 20_000)
            .round()
        ),
    )


def unemployment(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    on = _day_between("u3", dt.date(2022, 1, 1), dt.date(2027, 12, 31))
    return (
        people.filter(pl.col("active") & pl.col("age").is_between(18, 59) & (pl.col("u2") >= 0.98))
        .with_columns(on=on)
        .filter(pl.col("on") <= day_number(q.end))
        .select(
            "id_number",
            registered_on=_date_text(pl.col("on")),
            able_to_work=pl.when(pl.col("u4") < 0.9)
            .then(pl.lit("true"))
            .otherwise(pl.lit("false")),
            willing_to_work=pl.when(pl.col("u5") < 0.85)
            .then(pl.lit("true"))
            .otherwise(pl.lit("false")),
            status=pl.when(pl.col("u6") < 0.8).then(pl.lit("ACTIVE")).otherwise(pl.lit("CLOSED")),
            benefit_monthly=pl.when(pl.col("u7") < 0.3)
            .then(_money((150_000 + pl.col("u7") * 100_000).round()))
            .otherwise(pl.lit("0.00")),
        )
    )


def _events(
    people: pl.DataFrame, q: Quarter, rng: np.random.Generator, share: float
) -> pl.DataFrame:
    """A random `share` of `people` (with repetition), each with a day inside the quarter."""
    n = int(rng.binomial(people.height, share)) if people.height else 0
    if n == 0:
        return people.head(0).with_columns(day=pl.lit(0, dtype=pl.Int32), v=pl.lit(0.0))
    idx = np.sort(rng.integers(0, people.height, n))
    days = (q.end - q.start).days + 1
    return people[idx].with_columns(
        day=pl.Series((day_number(q.start) + rng.integers(0, days, n)).astype(np.int32)),
        v=pl.Series(rng.random(n)),
    )


def employment_assistance(
    unemployed: pl.DataFrame, q: Quarter, rng: np.random.Generator
) -> pl.DataFrame:
    ev = _events(unemployed.select("id_number"), q, rng, 0.3)
    return ev.with_row_index("i").select(
        service_id=pl.lit(f"EA{q}-") + pl.col("i").cast(pl.String).str.zfill(8),
        id_number="id_number",
        service_type=_pick(["PUBLIC_WELFARE_JOB", "TRAINING", "JOB_REFERRAL", "SUBSIDY"], "v"),
        service_date=_date_text(pl.col("day")),
    )


def enrollments(people: pl.DataFrame, q: Quarter, on_roster: pl.Series) -> pl.DataFrame:
    assisted = pl.col("id_number").is_in(on_roster.implode())
    return people.filter(pl.col("active")).select(
        "id_number",
        scheme=pl.when(pl.col("u2") < 0.45).then(pl.lit("EMPLOYEE")).otherwise(pl.lit("RESIDENT")),
        status=pl.when(pl.col("u7") < 0.97)
        .then(pl.lit("ENROLLED"))
        .otherwise(pl.lit("NOT_ENROLLED")),
        premium_subsidy=pl.when(assisted).then(pl.lit("380.00")).otherwise(pl.lit("0.00")),
    )


def settlements(people: pl.DataFrame, q: Quarter, rng: np.random.Generator) -> pl.DataFrame:
    ev = _events(people.filter(pl.col("active")).select("id_number"), q, rng, 0.08)
    n = ev.height
    visit = rng.choice(3, size=n, p=[0.15, 0.2, 0.65])
    scale = np.array([2_000_000, 300_000, 40_000])[visit]
    total = (rng.lognormal(0, 1, n) * scale / 2).astype(np.int64) + 1_000
    basic = (total * rng.uniform(0.4, 0.7, n)).astype(np.int64)
    critical = np.where(total > 1_500_000, ((total - basic) * 0.4).astype(np.int64), 0)
    assistance = np.where(
        rng.random(n) < 0.05, ((total - basic - critical) * 0.5).astype(np.int64), 0
    )
    out_of_pocket = total - basic - critical - assistance
    return (
        ev.with_row_index("i")
        .with_columns(
            visit=pl.Series(visit.astype(np.int32)),
            total=pl.Series(total),
            basic=pl.Series(basic),
            critical=pl.Series(critical),
            assistance=pl.Series(assistance),
            oop=pl.Series(out_of_pocket),
        )
        .select(
            settlement_id=pl.lit(f"JS{q}-") + pl.col("i").cast(pl.String).str.zfill(9),
            id_number="id_number",
            settled_on=_date_text(pl.col("day")),
            visit_type=pl.lit(pl.Series(["INPATIENT", "SPECIAL_OUTPATIENT", "OUTPATIENT"])).gather(
                pl.col("visit")
            ),
            total_cost=_money(pl.col("total")),
            basic_fund_paid=_money(pl.col("basic")),
            critical_illness_paid=_money(pl.col("critical")),
            medical_assistance_paid=_money(pl.col("assistance")),
            out_of_pocket=_money(pl.col("oop")),
        )
    )


STAGES = [(3, 5, "PRESCHOOL"), (6, 11, "PRIMARY"), (12, 14, "JUNIOR"), (15, 17, "SENIOR")]


def students(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    age = pl.col("age")
    stage = pl.when(age.is_between(3, 5)).then(pl.lit("PRESCHOOL"))
    for lo, hi, name in STAGES[1:]:
        stage = stage.when(age.is_between(lo, hi)).then(pl.lit(name))
    stage = stage.when(age.is_between(18, 22) & (pl.col("u6") < 0.55)).then(
        pl.when(pl.col("u5") < 0.3).then(pl.lit("VOCATIONAL")).otherwise(pl.lit("HIGHER"))
    )
    return (
        people.filter(pl.col("active") & age.is_between(3, 22))
        .with_columns(stage=stage)
        .filter(pl.col("stage").is_not_null() & (pl.col("u4") < 0.97))
        .select(
            "id_number",
            "stage",
            school_code=pl.lit("3")
            + pl.col("county_code").str.slice(0, 4)
            + (pl.col("u3") * 400).cast(pl.Int64).cast(pl.String).str.zfill(5),
            status=_pick(["ENROLLED", "SUSPENDED", "GRADUATED", "WITHDRAWN"], "u7", [96, 1, 2, 1]),
        )
    )


def student_aid(
    students_: pl.DataFrame, on_roster: pl.Series, q: Quarter, rng: np.random.Generator
) -> pl.DataFrame:
    assisted = students_.filter(pl.col("id_number").is_in(on_roster.implode()))
    others = students_.filter(~pl.col("id_number").is_in(on_roster.implode()))
    ev = pl.concat(
        [
            _events(assisted.select("id_number"), q, rng, 0.9),
            _events(others.select("id_number"), q, rng, 0.03),
        ]
    )
    return ev.with_row_index("i").select(
        aid_id=pl.lit(f"ZZ{q}-") + pl.col("i").cast(pl.String).str.zfill(8),
        id_number="id_number",
        aid_type=_pick(["FEE_WAIVER", "GRANT", "LIVING_ALLOWANCE", "NUTRITION", "WORK_STUDY"], "v"),
        amount=_money((50_000 + _frac("v", 3) * 200_000).round()),
        granted_on=_date_text(pl.col("day")),
    )


def rural_housing(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    on = _day_between("u5", dt.date(2016, 1, 1), dt.date(2027, 12, 31))
    return (
        people.filter((pl.col("pos") == 0) & ~pl.col("urban") & (pl.col("u3") < 0.3))
        .with_columns(on=on)
        .filter(pl.col("on") <= day_number(q.end))
        .select(
            house_id=pl.lit("NF") + pl.col("hh").cast(pl.String).str.zfill(10),
            id_number="id_number",
            safety_rating=_pick(["A", "B", "C", "D"], "u6", [55, 35, 7, 3]),
            renovation_status=_pick(["NONE", "IN_PROGRESS", "DONE"], "u7", [85, 5, 10]),
            assessed_on=_date_text(pl.col("on")),
        )
    )


def housing_support(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    on = _day_between("u4", dt.date(2012, 1, 1), dt.date(2027, 12, 31))
    return (
        people.filter(
            pl.col("active") & (pl.col("pos") == 0) & pl.col("urban") & (pl.col("u3") > 0.99)
        )
        .with_columns(on=on)
        .filter(pl.col("on") <= day_number(q.end))
        .select(
            "id_number",
            support_type=_pick(["PUBLIC_RENTAL", "RENT_SUBSIDY"], "u5"),
            started_on=_date_text(pl.col("on")),
        )
    )


def properties(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    return people.filter((pl.col("age") >= 18) & (pl.col("u5") < 0.3)).select(
        property_id=pl.lit("350")
        + pl.col("pid").cast(pl.String).str.zfill(12)
        + pl.lit("GB00001F0001"),
        id_number="id_number",
        usage=_pick(["RESIDENTIAL", "COMMERCIAL", "INDUSTRIAL", "OTHER"], "u6", [88, 7, 2, 3]),
        area_m2=_money(((30 + pl.col("u7") * 170) * 100).round()),
        status=pl.when(pl.col("active")).then(pl.lit("ACTIVE")).otherwise(pl.lit("CANCELLED")),
    )


def businesses(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    return people.filter((pl.col("age") >= 20) & (pl.col("u6") > 0.95)).select(
        entity_id=pl.lit("92350") + pl.col("pid").cast(pl.String).str.zfill(12) + pl.lit("X"),
        id_number="id_number",
        entity_type=_pick(["ENTERPRISE", "INDIVIDUAL_BUSINESS", "FARMER_COOP"], "u7", [35, 60, 5]),
        registered_capital=_money((pl.col("u1") ** 3 * 500_000_000 + 1_000_000).round()),
        status=pl.when(pl.col("active"))
        .then(_pick(["ACTIVE", "REVOKED", "CANCELLED"], "u2", [85, 5, 10]))
        .otherwise(pl.lit("CANCELLED")),
    )


def disability_certificates(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    return people.filter(pl.col("active") & (pl.col("u7") > 0.94)).select(
        "id_number",
        disability_type=_pick(
            ["VISUAL", "HEARING", "SPEECH", "PHYSICAL", "INTELLECTUAL", "MENTAL", "MULTIPLE"],
            "u1",
            [12, 18, 2, 45, 8, 10, 5],
        ),
        grade=_pick(["1", "2", "3", "4"], "u2", [10, 25, 30, 35]),
        status=_pick(["VALID", "EXPIRED", "REVOKED"], "u3", [92, 7, 1]),
    )


def disability_subsidies(certs: pl.DataFrame, on_roster: pl.Series, q: Quarter) -> pl.DataFrame:
    valid = certs.filter(pl.col("status") == "VALID")
    months = [f"{q.year}-{q.start.month + i:02d}" for i in range(3)]
    living = valid.filter(pl.col("id_number").is_in(on_roster.implode())).select(
        "id_number", subsidy_type=pl.lit("LIVING"), amount=pl.lit("80.00")
    )
    care = valid.filter(pl.col("grade").is_in(["1", "2"])).select(
        "id_number",
        subsidy_type=pl.lit("CARE"),
        amount=pl.when(pl.col("grade") == "1").then(pl.lit("100.00")).otherwise(pl.lit("80.00")),
    )
    both = pl.concat([living, care])
    return pl.concat([both.with_columns(month=pl.lit(m)) for m in months]).select(
        "id_number", "subsidy_type", "month", "amount"
    )


def at_risk(people: pl.DataFrame, q: Quarter) -> pl.DataFrame:
    return (
        people.filter(pl.col("active") & ~pl.col("urban") & (((pl.col("hh_u") * 1e3) % 1.0) < 0.01))
        .with_columns(risk_u=(pl.col("hh_u") * 1e4) % 1.0)
        .select(
            "id_number",
            monitor_household_id=pl.lit("JC") + pl.col("hh").cast(pl.String).str.zfill(10),
            risk_type=_pick(
                [
                    "ILLNESS",
                    "DISABILITY",
                    "EDUCATION",
                    "DISASTER",
                    "ACCIDENT",
                    "UNEMPLOYMENT",
                    "OTHER",
                ],
                "risk_u",
            ),
            risk_status=pl.when(((pl.col("hh_u") * 1e5) % 1.0) < 0.7)
            .then(pl.lit("RISK_PRESENT"))
            .otherwise(pl.lit("RISK_ELIMINATED")),
        )
    )


def disaster_victims(people: pl.DataFrame, q: Quarter, rng: np.random.Generator) -> pl.DataFrame:
    kinds = ["TYPHOON", "FLOOD", "LANDSLIDE", "EARTHQUAKE", "FIRE", "OTHER"]
    frames = []
    events = int(rng.integers(1, 3))
    counties = sorted(people["county_code"].unique().to_list())
    for k in range(events):
        kind = "TYPHOON" if q.q == 3 and k == 0 else kinds[int(rng.integers(1, len(kinds)))]
        county = counties[int(rng.integers(0, len(counties)))]
        day = q.start + dt.timedelta(days=int(rng.integers(0, (q.end - q.start).days + 1)))
        hit = people.filter(pl.col("active") & (pl.col("county_code") == county))
        n_hh = hit["hh"].n_unique()
        chosen = rng.random(n_hh) < 0.004
        hhs = hit["hh"].unique().sort().filter(pl.Series(chosen))
        rows = hit.filter(pl.col("hh").is_in(hhs.implode())).with_columns(
            v=pl.Series(rng.random(hit.filter(pl.col("hh").is_in(hhs.implode())).height))
        )
        frames.append(
            rows.select(
                event_id=pl.lit(f"ZH{q}-{k + 1:02d}"),
                id_number="id_number",
                disaster_type=pl.lit(kind),
                occurred_on=pl.lit(day.isoformat()),
                house_damage=_pick(["NONE", "MINOR", "SEVERE", "COLLAPSED"], "v", [40, 40, 15, 5]),
                relief_amount=pl.when(pl.col("v") < 0.5)
                .then(pl.lit("0.00"))
                .otherwise(_money((20_000 + pl.col("v") * 300_000).round())),
            )
        )
    return pl.concat(frames)


def quarter_extracts(
    people: pl.DataFrame, residents: pl.DataFrame, q: Quarter, seed: int, chunk: int | None = None
):
    """(dept, extract) -> text frame for quarter `q` (people as `province.at(pop, q.end)`);
    with `chunk`, the events of one chunk of the province from the chunk's own stream."""
    rng = np.random.default_rng([seed, 2, q.year, q.q] + ([] if chunk is None else [chunk]))
    ros = roster(people, q)
    on_roster = ros["id_number"]
    unemp = unemployment(people, q)
    stud = students(people, q)
    certs = disability_certificates(people, q)
    out = {
        ("mps", "residents"): residents,
        ("mps", "vehicles"): vehicles(people, q),
        ("mca", "assistance_roster"): ros,
        ("mca", "care_assessments"): care_assessments(people, q),
        ("hrss", "employment"): employment(people, q),
        ("hrss", "pensions"): pensions(people, q),
        ("hrss", "unemployment_registrations"): unemp,
        ("hrss", "employment_assistance"): employment_assistance(unemp, q, rng),
        ("nhsa", "enrollments"): enrollments(people, q, on_roster),
        ("nhsa", "settlements"): settlements(people, q, rng),
        ("moe", "students"): stud,
        ("moe", "student_aid"): student_aid(stud, on_roster, q, rng),
        ("mohurd", "rural_housing"): rural_housing(people, q),
        ("mohurd", "housing_support"): housing_support(people, q),
        ("mnr", "properties"): properties(people, q),
        ("samr", "business_registrations"): businesses(people, q),
        ("cdpf", "disability_certificates"): certs,
        ("cdpf", "disability_subsidies"): disability_subsidies(certs, on_roster, q),
        ("mara", "at_risk_households"): at_risk(people, q),
        ("mem", "disaster_victims"): disaster_victims(people, q, rng),
    }
    return {k: v.with_columns(pl.all().cast(pl.String).fill_null("")) for k, v in out.items()}
