"""Planted cases on whole households (`plants` plans the person cases and calls these): the
household rules, and the person rules that depend on a household (`PNI_DISABILITY_LIVING_SUBSIDY`,
`NE_SINGLE_PERSON_DIBAO`, `NE_TEKUN`).

Whole households, chosen once (`choose`) among those whose members are all born before the years
planted and ACTIVE through them, one role each, none holding a person subject. ROSTER households
(two members or more) are on the roster in the same programme before the first quarter planted and
in the last, and have a member who is a capable supporter throughout (`supporter_age`: no
`NE_TEKUN` for a member; for the PERSON cases, one other than the subject), and their DIBAO cases
have a RURAL head but for the `PNI_URBAN_HOUSING` ones (no unplanted `PNI_URBAN_HOUSING`);
REGISTRY households are on it at neither, and their members are taken off it in every quarter
(non-covered). In every quarter every row of every member is removed from every extract but the
registry (roster members keep their row, with no other income and no 渐退期), and exactly what the
case needs is added (`_Plan`, `_build`), against the parameters in effect at E (`figure`):
incomes from the county's `dibao_standard` (cases needing it are not recorded before its first
value) and `dibao_edge_multiplier`, cars at `vehicle_value_limit`, businesses at
`business_capital_limit`, `residential_property_limit` properties, the old from
`tekun_elderly_age`; event rows in every quarter such that the case holds with 1 to 4 quarters of
W loaded. The subject of a household case is its `case_id` (ROSTER) or `hukou_no` (REGISTRY),
with `household_source`. docs/generator.md lists every planted case with its deciding figures.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_CEILING, Decimal
from typing import Any

import polars as pl

from pipelines.core import parameters
from pipelines.core.cells import money
from pipelines.core.quarters import Quarter
from pipelines.generate import extracts, province

Frames = dict[tuple[str, str], pl.DataFrame]

ROSTER, REGISTRY = "ROSTER", "REGISTRY"
RIGID_OOP = 60_000  # cents of out of pocket planted in every quarter (W holds 1 to 4 of them)
_DAY = province.day_number
_ADULT = _DAY(dt.date(2005, 12, 31))  # 18 or older at every E from 2024 on

# role -> (household kind, roster programme, min size, max size, extra condition on the columns
# of `choose`'s table); ROSTER households have two members or more, so that no case turns into a
# single old person's (whose programme follows the TEKUN share of the quarter). DIBAO cases other
# than the urban housing ones have a RURAL head (no PNI_URBAN_HOUSING); a household whose planted
# subject is a member has another member who is a capable supporter through the years planted
# (no NE_TEKUN).
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
    "tekun_pos": (REGISTRY, None, 1, 1, pl.col("head_old")),
    "tekun_near": (REGISTRY, None, 1, 1, pl.col("head_old")),
    "tekun_near_supporter": (REGISTRY, None, 2, 2, pl.col("head_old") & pl.col("young_supports")),
    "nle_income_pos": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_income_near": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_income_near_exit": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_assets_pos": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "nle_assets_near": (ROSTER, "DIBAO", 2, 7, _RURAL),
    "hwp_pos": (REGISTRY, None, 2, 7, pl.col("adults")),
    "hwp_near": (REGISTRY, None, 2, 7, pl.col("adults")),
}


def dibao_standard(county: str, day: dt.date) -> int | None:
    """`dibao_standard` in effect on `day` for `county` (a county's own value, else its
    prefecture's: policy.md §3), in cents; None before its first value."""
    standard = parameters.parameters()["dibao_standard"]
    if day < standard.values[0][0]:
        return None
    return _cents(standard.for_area(county, day))


def figure(name: str, day: dt.date) -> Any:
    """Parameter `name` in effect on `day`. Before its first value no rule reading it is
    evaluated (policy.md §4): its cases are planted as under the first value."""
    p = parameters.parameters()[name]
    return p.at(max(day, p.values[0][0]))


def _cents(yuan: Decimal) -> int:
    return int(yuan * 100)


def _ceiling(cents: Decimal) -> int:
    return int(cents.to_integral_value(rounding=ROUND_CEILING))


def whole(cents: int) -> str:
    """An amount as the notes write it: whole yuan without decimals (`1000`)."""
    return f"{cents // 100}" if cents % 100 == 0 else money(cents)


def household_id(source: str, county: str, hh: int) -> str:
    """The roster `case_id` or the registry `hukou_no` of household `hh` (as `extracts` and
    `province.residents` write them)."""
    number = f"{county}{hh:09d}"
    return "FJ" + number if source == ROSTER else number


def choose(
    pop: province.Population,
    roster: pl.DataFrame,
    chosen: dict,
    first: Quarter,
    last: Quarter,
    capable: tuple[int, int],
) -> None:
    """Add role -> household id for `HOUSEHOLDS`: households whose members are all born before
    `first` and ACTIVE through `last`, none holding a subject chosen before, one case each;
    ROSTER ones on the roster in the programme in the quarter before `first` (`roster`) and in
    `last`, REGISTRY ones on it in neither. `capable`: the birth days of capable supporters
    through them; the old are `tekun_elderly_age` or older at every E of them."""
    people = pop.people
    born_by, last_day = _DAY(first.start - dt.timedelta(days=1)), _DAY(last.end)
    elderly = max(parameters.parameters()["tekun_elderly_age"].in_effect(first.start, last.end))
    old = _DAY(dt.date(first.year - int(elderly) - 1, 12, 31))
    who = people.select("id_number", "hh")
    after = extracts.roster(province.at(pop, last.end), last)
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
            stable=((pl.col("birth") <= born_by) & (pl.col("exit_day") > last_day)).all(),
            urban=pl.col("urban").first(),
            county=pl.col("county_code").first(),
            head_birth=pl.col("birth").filter(pl.col("pos") == 0).first(),
            young_birth=pl.col("birth").filter(pl.col("pos") > 0).max(),
            last_birth=pl.col("birth").max(),
            supported=pl.col("birth").is_between(*capable).any(),
            head_supported=pl.col("birth").filter(pl.col("pos") > 0).is_between(*capable).any(),
            last_supported=pl.col("birth")
            .filter(pl.col("pos") < pl.col("pos").max())
            .is_between(*capable)
            .any(),
        )
        .with_columns(
            head_old=pl.col("head_birth") <= old,
            young_supports=pl.col("young_birth").is_between(*capable),
            adults=pl.col("last_birth") <= _ADULT,
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
            self.roster[m["id_number"]]["other_income_monthly"] = money(cents)
        elif m["age"] >= 60:
            self.add(
                "hrss",
                "pensions",
                id_number=m["id_number"],
                pension_type="EMPLOYEE",
                monthly_amount=money(cents),
            )
        else:
            self.add(
                "hrss",
                "employment",
                id_number=m["id_number"],
                employer_id="91350100MA0PLANT0X",
                monthly_wage=money(cents),
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
            total_cost=money(basic + oop),
            basic_fund_paid=money(basic),
            critical_illness_paid="0.00",
            medical_assistance_paid="0.00",
            out_of_pocket=money(oop),
        )

    def vehicle(self, m: dict, kind: str, cents: int, status: str = "ACTIVE") -> None:
        self.add(
            "mps",
            "vehicles",
            vehicle_id=f"LFVP{m['id_number'][-8:]}{self.serial('')[-3:]}",
            id_number=m["id_number"],
            vehicle_class=kind,
            assessed_value=money(cents),
            status=status,
        )

    def business(self, m: dict, kind: str, cents: int, status: str = "ACTIVE") -> None:
        self.add(
            "samr",
            "business_registrations",
            entity_id=f"92350P{m['id_number'][-8:]}{self.serial('')[-3:]}X",
            id_number=m["id_number"],
            entity_type=kind,
            registered_capital=money(cents),
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


def apply(frames: Frames, chosen: dict, q: Quarter, people: pl.DataFrame) -> list[dict]:
    """Change `frames` in place for the chosen households; returns the cases of this quarter."""
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
        capital = _cents(figure("business_capital_limit", q.end))
        properties = int(figure("residential_property_limit", q.end))
        p.business(head, "FARMER_COOP", 200_000_000)  # never fails, whatever its capital
        p.business(last, "INDIVIDUAL_BUSINESS", capital)
        p.business(head, "ENTERPRISE", 5_000_000, "REVOKED")
        p.vehicle(head, "MOTORCYCLE", 2_000_000)
        p.vehicle(head, "CAR", 8_000_000, "SCRAPPED")
        for _ in range(properties):
            p.property([head, last], "RESIDENTIAL")
        owned = (
            "one RESIDENTIAL property owned by two members (one distinct)"
            if properties == 1
            else f"{properties} RESIDENTIAL properties, each owned by two members"
        )
        note = (
            f"{kind}: ACTIVE FARMER_COOP 2000000, INDIVIDUAL_BUSINESS at the limit "
            f"{whole(capital)}, a REVOKED ENTERPRISE, a MOTORCYCLE, a SCRAPPED CAR, {owned}"
        )
        return [(rule, "no_warning", h.subject, note)]
    if s is None:
        return []
    multiplier = figure("dibao_edge_multiplier", q.end)
    t = s * n  # standard × size, cents
    edge = _ceiling(
        t * multiplier
    )  # the edge line in whole cents: an income of `edge` is not below
    std = f"standard {money(s)} × {n} = {money(t)}"
    edge_std = f"{multiplier} × {money(s)} × {n} = {money(edge)}"
    if role in ("ne_dibao_pos", "ne_dibao_near", "ne_dibao_reg_pos", "ne_dibao_reg_near"):
        if h.source == REGISTRY:
            p.certificate(head, "HEARING", 4)  # has_hardship_signal
            kind += " (VALID grade-4 certificate)"
        pos = role.endswith("_pos")
        income = t - 100 if pos else t
        p.income(h, head, income)
        cmp = "<" if pos else "="
        note = f"{kind}: household income {money(income)} {cmp} {std}"
        if h.source == REGISTRY and not pos:  # not below the standard, so below the edge
            edge_note = f"{note}, {money(income)} < {edge_std}, no out of pocket"
            return [
                ("NE_DIBAO", "no_warning", h.subject, note),
                ("NE_DIBAO_EDGE", "warning", h.subject, edge_note + ": NE_DIBAO_EDGE instead"),
            ]
        return [("NE_DIBAO", "warning" if pos else "no_warning", h.subject, note)]
    if role in ("rigid_pos", "rigid_near", "edge_near"):
        income = t if role != "rigid_near" else t + RIGID_OOP // 3
        p.income(h, head, income)
        p.settlement(last, RIGID_OOP)
        oop = f"out of pocket {money(RIGID_OOP)} in each quarter of W"
        if role == "rigid_pos":
            car = _cents(figure("vehicle_value_limit", q.end)[h.program])
            p.vehicle(head, "CAR", car)
            note = (
                f"{kind}: household income {money(income)} = {std} (not below), {oop}, "
                f"an ACTIVE CAR at the limit {whole(car)}"
            )
            return [("NE_RIGID_EXPENDITURE_DIBAO", "warning", h.subject, note)]
        if role == "rigid_near":
            note = (
                f"{kind}: household income {money(income)}, {std}, {oop}: "
                f"12 × {money(income)} − {money(4 * RIGID_OOP)} = 12 × {money(t)} in a full W"
            )
            return [("NE_RIGID_EXPENDITURE_DIBAO", "no_warning", h.subject, note)]
        p.certificate(head, "HEARING", 4)
        note = (
            f"{kind} (VALID grade-4 certificate): household income {money(income)} = {std}, "
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
        car = _cents(figure("vehicle_value_limit", q.end)["DIBAO_EDGE"])  # NE_DIBAO_EDGE's limit
        if pos:
            p.vehicle(head, "CAR", car)
        note = (
            f"{kind} (VALID grade-4 certificate): household income {money(income)} "
            f"{'<' if pos else '='} {edge_std}, no out of pocket"
            + (f", an ACTIVE CAR at the limit {whole(car)}" if pos else "")
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
        base = f"{kind}: household income {money(income)}, {std}, no out of pocket"
        if role == "single_pos":
            note = f"{base}; member VALID PHYSICAL grade 1 (severely disabled)"
            return [(rule, "warning", who, note)]
        if role == "single_near_grade":
            note = f"{base}; member VALID PHYSICAL grade 3 (not severely disabled)"
            return [(rule, "no_warning", who, note)]
        note = f"{base}; member VALID PHYSICAL grade 1, but the case is below the standard"
        return [
            ("NE_DIBAO", "warning", h.subject, f"{kind}: household income {money(income)} < {std}"),
            (rule, "no_warning", who, note + ": NE_DIBAO raised for the case"),
        ]
    if role in ("tekun_pos", "tekun_near", "tekun_near_supporter"):
        supporter = figure("supporter_age", q.end)
        supports = supporter["min"] <= last["age"] <= supporter["max"]
        if head["age"] < figure("tekun_elderly_age", q.end) or (
            role == "tekun_near_supporter" and not supports
        ):
            return []
        p.certificate(head, "HEARING", 4)  # has_hardship_signal, not severely disabled
        own = s if role == "tekun_near" else s - 100
        p.add(
            "hrss",
            "pensions",
            id_number=head["id_number"],
            pension_type="RESIDENT",
            monthly_amount=money(own),
        )
        p.vehicle(head, "MOTORCYCLE", 300_000)
        cmp = "=" if role == "tekun_near" else "<"
        note = (
            f"aged {head['age']}, not on the roster, VALID grade-4 certificate, own income "
            f"{money(own)} {cmp} standard {money(s)}, a MOTORCYCLE"
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
        note = f"{kind}, not single: household income {money(income)} {cmp} {std}"
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
            own = _ceiling(s * multiplier)  # each member at the edge of one, so no NE_TEKUN
            for m in h.members:
                p.income(h, m, own)
            cmp = "=" if own * n == edge else ">"
            note = (
                f"{kind}, members RISK_PRESENT: each member's income {money(own)} "
                f"(household {money(own * n)} {cmp} {edge_std}), no NEWLY_ELIGIBLE warning"
            )
            return [("HWP_UNMATCHED_HARDSHIP", "warning", h.subject, note)]
        p.income(h, head, edge - 100)
        note = (
            f"{kind}, members RISK_PRESENT: household income {money(edge - 100)} < {edge_std}, "
            "no out of pocket"
        )
        return [
            ("NE_DIBAO_EDGE", "warning", h.subject, note),
            ("HWP_UNMATCHED_HARDSHIP", "no_warning", h.subject, note + ": NE_DIBAO_EDGE raised"),
        ]
    raise ValueError(f"no plan for role {role!r}")
