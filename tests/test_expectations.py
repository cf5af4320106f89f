"""The Great Expectations suite and the gate agree row for row (pipelines/gate/expectations.py).

Files with planted errors go through the gate (`gate.run_extract`), then its checked source
(lazy) through GE with COMPLETE results; for every check, the rows GE finds unexpected are
exactly the rows the gate flags. Validated in small batches, a duplicated key's copies and a
disagreeing case's rows fall into different batches, and the one merged result still has the
whole extract's counts and rows. The stored results and Data Docs carry no identity number and
no name.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import fcntl
import hashlib
import json
import math
import random
import re
import shutil
import threading
from pathlib import Path

import pandas as pd
import polars as pl
import pytest
from polars.io.plugins import register_io_source
from stdnum.cn import ric

from pipelines.core import contracts, gbt2260
from pipelines.core.layout import Outputs
from pipelines.core.quarters import Quarter
from pipelines.gate import checks as row_checks
from pipelines.gate import datadocs, expectations, gx_patches, gx_store
from pipelines.gate import extract as gate
from pipelines.gate.checks import CheckContext, compile_checks
from pipelines.gate.reader import ROW_NUMBER
from pipelines.generate import samples as factories
from tests import browser

QUARTER = Quarter.parse("2026Q3")
COMPLETE = {"result_format": "COMPLETE"}
COUNTIES = sorted(gbt2260.county_codes_in_force(2026))
ROUTED = frozenset(f"W-2026Q3-{i:04d}" for i in range(1, 40))


def ident(county: str, born: dt.date | str, seq: int) -> str:
    """An 18-character identity number with the right check character (stdnum's
    `calc_check_digit` reads the number with a check character in place, ignoring it)."""
    born = born if isinstance(born, str) else born.strftime("%Y%m%d")
    body = f"{county}{born}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def ident_with_x(county: str, born: dt.date) -> str:
    for seq in range(1, 999):
        number = ident(county, born, seq)
        if number.endswith("X"):
            return number
    raise AssertionError("no sequence gives X")  # pragma: no cover


def person(i: int) -> tuple[str, dt.date, str]:
    """(identity number, birth date, gender) of the i-th synthetic person."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=173 * i)
    seq = 100 + i
    return ident(COUNTIES[i % len(COUNTIES)], born, seq), born, "M" if seq % 2 else "F"


def write(landing: Path, dept: str, extract: str, header: list[str], rows: list[list]) -> None:
    folder = landing / str(QUARTER) / dept
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{extract}.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


# --- planted files --------------------------------------------------------------------------


def residents() -> tuple[list[str], list[list], set[str]]:
    header = [c.name for c in contracts.all_contracts()[("mps", "residents")].columns]
    rows = []
    for i in range(60):
        number, born, gender = person(i)
        date = born.isoformat() if i % 3 else born.strftime("%Y%m%d")  # both formats allowed
        rows.append(
            [number, f"林秀英{i:03d}", gender, date, f"H{i:05d}", "HEAD", number[:6], "URBAN"]
            + ["ACTIVE", ""]
        )

    def planted(**values) -> None:
        number, born, gender = person(len(rows))
        row = dict(zip(header, rows[0], strict=True))
        row.update(
            id_number=number,
            name=f"郑planted{len(rows):03d}",
            gender=gender,
            birth_date=born.isoformat(),
            county_code=number[:6],
        )
        row.update(values)
        rows.append([row[h] for h in header])

    good18, good_born, good_gender = person(7)
    planted(id_number="35010219800101")  # format
    planted(id_number=ident("350102", "19800101", 123)[:17] + "0")  # check character (unless 0)
    planted(id_number=ident("350102", "19800101", 124)[:17] + "1")
    planted(id_number=ident("350102", "19800230", 125), birth_date="1980-02-28")  # birth_date
    planted(id_number=ident("350102", "20270105", 127), birth_date="2027-01-05")  # after E
    planted(id_number=ident("359999", "19800101", 129), birth_date="1980-01-01")  # address code
    planted(id_number="350102800101131", birth_date="19800101", gender="M")  # 15 digits: fine
    x = ident_with_x("350103", dt.date(1975, 5, 5))
    planted(id_number=x.lower(), birth_date="1975-05-05", gender="M" if int(x[16]) % 2 else "F")
    # the same person sent twice: first-generation 15-digit number and its 18-digit upgrade
    fifteen = good18[:6] + good18[8:17]
    planted(id_number=fifteen, birth_date=good_born.isoformat(), gender=good_gender)
    planted(name="")  # name.required
    planted(gender="Q")  # gender.codes
    planted(gender=" m ")  # upper-cased and trimmed: may disagree with the number only
    n, _, g = person(len(rows))
    planted(gender="F" if g == "M" else "M")  # gender.disagrees_with_id
    planted(birth_date="1980-13-01")  # invalid_date
    planted(birth_date="1901-01-01")  # disagrees_with_id
    planted(relation="BOSS")
    planted(relation=" child ")
    planted(county_code="350199")  # not a county in force
    planted(county_code="")
    planted(residence_type="")
    planted(status="DECEASED", status_date="")  # status_date.required_unless_active
    planted(status="MOVED_OUT", status_date="2026-12-01")  # after the quarter end
    planted(status="MOVED_OUT", status_date="2026-02-30")  # invalid_date
    planted(status="UNKNOWN", status_date="")  # status.codes only
    planted(hukou_no="   ")
    wanted = {
        "id_number.format",
        "id_number.check_character",
        "id_number.birth_date",
        "id_number.address_code",
        "duplicate_key",
        "name.required",
        "gender.codes",
        "gender.disagrees_with_id",
        "birth_date.invalid_date",
        "birth_date.disagrees_with_id",
        "relation.codes",
        "county_code.invalid_county",
        "county_code.required",
        "residence_type.required",
        "status.codes",
        "status_date.required_unless_active",
        "status_date.after_quarter_end",
        "status_date.invalid_date",
        "hukou_no.required",
    }
    return header, rows, wanted


def assistance_roster() -> tuple[list[str], list[list], set[str]]:
    header = [
        "id_number",
        "name",
        "case_id",
        "relation",
        "county_code",
        "program",
        "single_person",
        "start_date",
        "gradual_exit_until",
        "monthly_benefit",
        "other_income_monthly",
    ]
    rows = []
    for i in range(60):
        number, _, _ = person(100 + i)
        case = f"C{i // 2:04d}"
        rows.append(
            [number, f"王建国{i:03d}", case, "HEAD" if i % 2 == 0 else "SPOUSE", "350102"]
            + ["DIBAO", "否", "2025-03-01" if i % 4 else "20250301", "", "650.00", "0"]
        )
    col = {h: i for i, h in enumerate(header)}

    def set_(row: int, **values) -> None:
        for k, v in values.items():
            rows[row][col[k]] = v

    set_(0, program="TEKUN")  # case C0000 disagrees on program: rows 0 and 1
    set_(2, program="dibao")  # upper-cased: agrees
    set_(4, program="DIBOA")  # a typo: program.codes on row 4 only, case C0002 agrees
    set_(6, county_code="350103")  # case C0003 disagrees on county
    set_(8, single_person="是")  # case C0004 disagrees on single_person
    set_(10, single_person="maybe")  # invalid_bool; C0005 agrees on its valid values
    set_(12, start_date="2026-10-01")
    set_(14, gradual_exit_until="2026-99-01")
    set_(16, monthly_benefit="650.555")
    set_(18, monthly_benefit="-5")
    set_(20, monthly_benefit="６５０")  # full-width digits are not an amount
    set_(22, other_income_monthly="")
    set_(24, case_id="")  # no case: never in disagreement
    set_(26, relation="BOSS")
    wanted = {
        "case_id.case_disagreement",
        "program.codes",
        "single_person.invalid_bool",
        "start_date.after_quarter_end",
        "gradual_exit_until.invalid_date",
        "monthly_benefit.invalid_money",
        "other_income_monthly.required",
        "case_id.required",
        "relation.codes",
    }
    return header, rows, wanted


def settlements() -> tuple[list[str], list[list], set[str]]:
    header = [
        "settlement_id",
        "id_number",
        "settled_on",
        "visit_type",
        "total_cost",
        "basic_fund_paid",
        "critical_illness_paid",
        "medical_assistance_paid",
        "out_of_pocket",
    ]
    rows = []
    for i in range(60):
        number, _, _ = person(200 + i)
        rows.append(
            [f"S{i:05d}", number, "2026-08-15", "INPATIENT"]
            + ["1000.00", "600.00", "200.00", "100.00", "100.00"]
        )
    rows[1][4] = "1001.00"  # sum mismatch by a yuan
    rows[2][4] = "1000.01"  # a cent: within the tolerance
    rows[3][4] = "1000.02"  # two cents: mismatch
    rows[4][8] = ""  # a part missing: required, no sum check
    rows[5][2] = "2026-06-30"  # outside the quarter
    rows[6][3] = "ER"
    rows[7][0] = rows[8][0]  # duplicate key
    rows[9][0] = " S00010 "  # the same key as row 10 once trimmed
    rows[11][5] = "6OO.00"  # letters O: invalid money
    wanted = {
        "total_cost.sum_mismatch",
        "out_of_pocket.required",
        "settled_on.outside_quarter",
        "visit_type.codes",
        "duplicate_key",
        "basic_fund_paid.invalid_money",
    }
    return header, rows, wanted


def employment() -> tuple[list[str], list[list], set[str]]:
    header = ["id_number", "employer_id", "monthly_wage", "started_on", "ended_on"]
    rows = []
    for i in range(60):
        number, _, _ = person(300 + i)
        rows.append([number, f"91350100MA{i:08d}", "4500.00", "2020-01-01", ""])
    rows[1][4] = "2019-12-31"  # ended before it started
    rows[2][4] = "2020-01-01"  # the same day: fine
    rows[3][0:2] = rows[4][0:2]  # composite key duplicate
    rows[5][0] = rows[6][0]  # same person, another employer: fine
    rows[7][1] = rows[8][1] = ""  # no employer: required, not a duplicate
    rows[7][0] = rows[8][0]
    rows[9][3] = "2026-10-02"
    rows[10][2] = "abc"
    rows[11][3] = "2020-02-30"  # invalid: ended_on is then not compared
    rows[11][4] = "2019-01-01"
    wanted = {
        "ended_on.before_started_on",
        "duplicate_key",
        "employer_id.required",
        "started_on.after_quarter_end",
        "monthly_wage.invalid_money",
        "started_on.invalid_date",
    }
    return header, rows, wanted


def disability_subsidies() -> tuple[list[str], list[list], set[str]]:
    header = ["id_number", "subsidy_type", "month", "amount"]
    rows = []
    for i in range(60):
        number, _, _ = person(400 + i)
        rows.append([number, "LIVING" if i % 2 else "CARE", f"2026-0{7 + i % 3}", "90.00"])
    rows[1][2] = "2026-06"  # month outside the quarter
    rows[2][2] = "2026-10"
    rows[3][2] = "2026-7"  # invalid month
    rows[4][3] = "0"  # not positive
    rows[5][3] = "0.00"
    rows[6][1] = "FOOD"
    rows[7] = list(rows[8])  # duplicate (id, type, month)
    rows[9][0:2] = rows[10][0:2]  # same id and type, invalid and equal month text:
    rows[9][2] = rows[10][2] = "2026/08"  # the gate compares parsed months: no duplicate
    wanted = {
        "month.outside_quarter",
        "month.invalid_month",
        "amount.not_positive",
        "subsidy_type.codes",
        "duplicate_key",
    }
    return header, rows, wanted


def feedback() -> tuple[list[str], list[list], set[str]]:
    header = ["warning_key", "action", "action_date", "note"]
    keys = sorted(ROUTED)
    rows = [[keys[i], "ASSISTED", "2026-09-01", ""] for i in range(30)]
    rows[1][0] = "W-2026Q3-9999"  # not routed to this department
    rows[2][1] = "FIXED"
    rows[3][2] = "2026-10-01"
    rows[4][0] = rows[5][0]
    wanted = {
        "warning_key.unknown_warning",
        "action.codes",
        "action_date.outside_quarter",
        "duplicate_key",
    }
    return header, rows, wanted


PLANTED = {
    ("mps", "residents", "mps"): residents,
    ("mca", "assistance_roster", "mca"): assistance_roster,
    ("nhsa", "settlements", "nhsa"): settlements,
    ("hrss", "employment", "hrss"): employment,
    ("cdpf", "disability_subsidies", "cdpf"): disability_subsidies,
    ("any", "feedback", "mca"): feedback,
}


class Gated:
    """What the gate hands to GE for one extract: its checks, the context that settled the
    row-comparing checks over the whole extract, and the checked source (lazy); plus, for the
    tests, the source collected (small files): the gate's flag for every row and check."""

    def __init__(self, contract, checked: gate.Checked, csv: Path):
        self.contract, self.checked, self.checks = contract, checked, checked.checks
        source = getattr(checked, "source", None)
        if hasattr(checked, "source"):
            self.ctx = checked.ctx
        else:  # gate.py before the streaming rewrite: the same source, built here
            raw = pl.scan_csv(csv, infer_schema=False).with_row_index(ROW_NUMBER, offset=1)
            self.ctx, _ = row_checks.cross_row_context(raw, contract, checked.ctx)
            source = row_checks.evaluate(raw, contract, self.ctx, self.checks)
        assert source is not None, "the gate read no rows"
        assert expectations.settled(self.ctx, contract)
        self.source: pl.LazyFrame = source
        self.frame: pl.DataFrame = source.collect()


def run_gate(contract, landing: Path, out: Path, sender: str, routed=None) -> Gated:
    checked = gate.run_extract(
        contract, landing, out, QUARTER, department=sender, routed_warning_keys=routed
    )
    return Gated(contract, checked, landing / str(QUARTER) / sender / f"{contract.extract}.csv")


class Run:
    def __init__(self, gated: Gated, sender, summary, rows, wanted):
        self.gated, self.contract, self.sender = gated, gated.contract, sender
        self.summary, self.rows, self.wanted = summary, rows, wanted

    def validate(self, out: Path, **kwargs) -> dict:
        g = self.gated
        args = (out, self.contract, QUARTER, g.source, g.ctx, g.checks)
        return expectations.validate(*args, department=self.sender, **kwargs)


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> tuple[Path, dict[str, Run]]:
    root = tmp_path_factory.mktemp("ge")
    landing, out = root / "landing", root / "out"
    runs = {}
    for (dept, extract, sender), make in PLANTED.items():
        header, rows, wanted = make()
        write(landing, sender, extract, header, rows)
        contract = contracts.all_contracts()[(dept, extract)]
        assert header == [c.name for c in contract.columns]  # rows are read by position below
        keys = ROUTED if dept == "any" else None
        gated = run_gate(contract, landing, out, sender, keys)
        assert gated.frame.height == len(rows)
        run = Run(gated, sender, None, rows, wanted)
        run.summary = run.validate(out, result_format=COMPLETE, raise_errors=True)
        runs[f"{sender}.{extract}"] = run
    return out, runs


def gate_rows(frame: pl.DataFrame, reason: str) -> set[int]:
    return set(frame.with_row_index("position").filter(pl.col(reason))["position"].to_list())


def assert_agrees(gated: Gated, summary: dict) -> None:
    flags = [c.reason for c in gated.checks if c.reason in gated.frame.columns]
    reasons = [e["reason"] for e in summary["expectations"]]
    assert sorted(reasons) == sorted(flags), "one expectation per check evaluated by the gate"
    for e in summary["expectations"]:
        assert e["exception"] is None, (e["reason"], e["exception"])
        ge_rows = set(e["unexpected_index_list"])
        assert ge_rows == gate_rows(gated.frame, e["reason"]), e["reason"]
        assert e["unexpected_count"] == len(e["unexpected_index_list"]) == len(ge_rows)
        assert e["element_count"] == gated.frame.height, e["reason"]
        assert e["success"] == (not ge_rows), e["reason"]


@pytest.mark.parametrize("name", [f"{s}.{e}" for _, e, s in PLANTED])
def test_ge_and_the_gate_fail_the_same_rows_of_a_file_with_planted_errors(planted, name):
    _, runs = planted
    run = runs[name]
    assert run.summary["error"] is None
    assert run.summary["statistics"]["batches"] == 1
    assert_agrees(run.gated, run.summary)
    failing = {e["reason"] for e in run.summary["expectations"] if not e["success"]}
    assert run.wanted <= failing, f"planted but not caught: {sorted(run.wanted - failing)}"
    assert run.summary["success"] is False


def test_every_copy_of_a_duplicated_key_is_unexpected(planted):
    _, runs = planted
    residents, employment = runs["mps.residents"], runs["hrss.employment"]
    dup = {e["reason"]: e for e in residents.summary["expectations"]}["duplicate_key"]
    # settled over the whole extract by the gate: a membership test, right in any batch
    assert dup["expectation"] == "expect_column_values_to_pass_contract_rule"
    ids = [r[0] for r in residents.rows]
    eighteen = ids[7]
    fifteen_at = next(i for i, v in enumerate(ids) if len(v) == 15 and v[:6] == eighteen[:6])
    # the 15-digit number and its 18-digit upgrade are one person sent twice
    assert {7, fifteen_at} <= set(dup["unexpected_index_list"])
    dup = {e["reason"]: e for e in employment.summary["expectations"]}["duplicate_key"]
    assert dup["expectation"] == "expect_multicolumn_values_to_pass_contract_rule"
    assert set(dup["unexpected_index_list"]) == {3, 4}  # rows 7 and 8 lack an employer


def test_a_whole_frame_without_settled_sets_keeps_ges_own_uniqueness(planted, tmp_path):
    """A frame validated whole, with a context that did not settle the row-comparing checks:
    GE's native uniqueness compares the rows itself, and still agrees with the gate."""
    _, runs = planted
    for name, native in [
        ("mps.residents", "expect_column_values_to_be_unique"),
        ("hrss.employment", "expect_compound_columns_to_be_unique"),
    ]:
        run = runs[name]
        g = run.gated
        summary = expectations.validate(
            tmp_path,
            run.contract,
            QUARTER,
            g.frame,  # a DataFrame, in one batch
            CheckContext(QUARTER),
            g.checks,
            result_format=COMPLETE,
            update_data_docs=False,
            raise_errors=True,
        )
        dup = {e["reason"]: e for e in summary["expectations"]}["duplicate_key"]
        assert dup["expectation"] == native
        assert summary["statistics"]["batches"] == 1
        assert_agrees(g, summary)


def test_without_settled_sets_more_than_one_batch_settles_them_first(planted, tmp_path):
    """A context without the cross-row sets, and a source that may not fit one batch (a
    DataFrame taller than a batch, or a LazyFrame, whose height is unknown): `validate`
    settles them over the whole source first, so a case split across batches is still
    caught whole."""
    _, runs = planted
    run = runs["mca.assistance_roster"]
    g = run.gated
    for source, batch_rows in ((g.frame, 7), (g.source, 1000)):
        summary = expectations.validate(
            tmp_path,
            run.contract,
            QUARTER,
            source,
            CheckContext(QUARTER),
            g.checks,
            batch_rows=batch_rows,
            result_format=COMPLETE,
            department=run.sender,
            update_data_docs=False,
            raise_errors=True,
        )
        assert summary["statistics"]["batches"] == math.ceil(len(run.rows) / batch_rows)
        dup = {e["reason"]: e for e in summary["expectations"]}["duplicate_key"]
        assert dup["expectation"] == "expect_column_values_to_pass_contract_rule"  # not unique
        assert_agrees(g, summary)


def test_a_key_with_a_month_is_compared_on_the_parsed_month(planted):
    _, runs = planted
    run = runs["cdpf.disability_subsidies"]
    dup = {e["reason"]: e for e in run.summary["expectations"]}["duplicate_key"]
    assert dup["expectation"] == "expect_multicolumn_values_to_pass_contract_rule"
    assert set(dup["unexpected_index_list"]) == {7, 8}  # not 9 and 10: their month is invalid


def test_a_case_disagreeing_on_program_quarantines_all_its_rows(planted):
    _, runs = planted
    run = runs["mca.assistance_roster"]
    agree = {e["reason"]: e for e in run.summary["expectations"]}["case_id.case_disagreement"]
    # C0000 program, C0003 county, C0004 single person; the typo (C0002) and the invalid
    # bool (C0005) are quarantined on their own rows only
    assert set(agree["unexpected_index_list"]) == {0, 1, 6, 7, 8, 9}


def test_a_deceased_resident_without_status_date_is_caught_by_ge(planted):
    _, runs = planted
    run = runs["mps.residents"]
    e = {e["reason"]: e for e in run.summary["expectations"]}["status_date.required_unless_active"]
    (row,) = e["unexpected_index_list"]
    assert run.rows[row][8] == "DECEASED" and run.rows[row][9] == ""


# --- batch by batch ---------------------------------------------------------------------------


def _cross_row_groups(run: Run) -> dict[str, list[list[int]]]:
    """Per row-comparing check, the positions of each duplicated key / disagreeing case."""
    g = run.gated
    out: dict[str, list[list[int]]] = {}
    for check in g.checks:
        if check.kind == "duplicate_key":
            by = row_checks.key_text(check.columns)
        elif check.kind == "group_agreement":
            by = pl.col(f"{check.arguments['group']}__v")
        else:
            continue
        groups = (
            g.frame.with_row_index("position")
            .filter(pl.col(check.reason))
            .group_by(by.alias("group"))
            .agg("position")
        )
        out[check.reason] = [sorted(p) for p in groups["position"].to_list()]
    return out


def _stored(out: Path, run: Run) -> dict[str, dict]:
    folder = out / "gx" / "uncommitted" / "validations" / run.sender / run.contract.extract
    (path,) = folder.rglob("*.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {r["expectation_config"]["meta"]["reason"]: r for r in doc["results"]} | {
        "": {"success": doc["success"], "statistics": doc["statistics"]}
    }


# batch sizes that split each planted file's duplicated keys and disagreeing cases
SPLITTING_BATCH_ROWS = {
    "mps.residents": 7,  # the 18- and 15-digit numbers of one person: rows 7 and 68
    "mca.assistance_roster": 7,  # case C0003: rows 6 and 7
    "nhsa.settlements": 8,  # rows 7 and 8
    "hrss.employment": 4,  # rows 3 and 4
    "cdpf.disability_subsidies": 8,  # rows 7 and 8
    "mca.feedback": 5,  # rows 4 and 5
}


@pytest.mark.parametrize("name", list(SPLITTING_BATCH_ROWS))
def test_validated_in_small_batches_the_counts_are_the_whole_extracts(planted, tmp_path, name):
    """A duplicated key's copies and a disagreeing case's rows fall into different batches,
    and every count, percentage and row is still the whole extract's: the same as in one
    batch, and the gate's flags row for row."""
    out, runs = planted
    run = runs[name]
    batch_rows = SPLITTING_BATCH_ROWS[name]
    groups = _cross_row_groups(run)
    split = {
        reason
        for reason, positions in groups.items()
        if any(len({p // batch_rows for p in ps}) > 1 for ps in positions)
    }
    assert split == {reason for reason, positions in groups.items() if positions}
    assert split, "the test is about rows compared across batches"

    summary = run.validate(
        tmp_path, batch_rows=batch_rows, result_format=COMPLETE, raise_errors=True
    )
    stats = summary["statistics"]
    assert stats["batches"] == math.ceil(len(run.rows) / batch_rows) > 1
    assert stats["rows"] == len(run.rows)
    assert_agrees(run.gated, summary)
    whole = {e["reason"]: e for e in run.summary["expectations"]}
    for e in summary["expectations"]:
        assert e == whole[e["reason"]], e["reason"]
    assert summary["success"] == run.summary["success"]
    for k in ("evaluated_expectations", "successful_expectations", "success_percent"):
        assert stats[k] == run.summary["statistics"][k], k
    stored, stored_whole = _stored(tmp_path, run), _stored(out, run)
    assert stored.keys() == stored_whole.keys()
    for reason, r in stored.items():
        assert r["success"] == stored_whole[reason]["success"], reason
        if reason:
            assert r["result"] == pytest.approx(stored_whole[reason]["result"]), reason
            assert set(r["result"]) >= {"element_count", "unexpected_count"}
        else:
            assert r["statistics"] == stored_whole[""]["statistics"]


def test_the_source_is_read_once_however_many_batches(planted, tmp_path):
    """One streaming pass: a CSV scan cannot seek to a row, so reading batch k must not read
    the file again up to it. An IO source counts the passes over the planted file."""
    _, runs = planted
    run = runs["mps.residents"]
    g = run.gated
    text = g.frame.select(pl.col(ROW_NUMBER), *[c.name for c in run.contract.columns])
    passes: list[int] = []

    def scan(with_columns, predicate, n_rows, batch_size):
        passes.append(1)
        for part in text.iter_slices(5):
            yield part if with_columns is None else part.select(with_columns)

    raw = register_io_source(scan, schema=text.schema)
    source = row_checks.evaluate(raw, run.contract, g.ctx, g.checks)
    summary = expectations.validate(
        tmp_path,
        run.contract,
        QUARTER,
        source,
        g.ctx,
        g.checks,
        batch_rows=20,
        result_format=COMPLETE,
        update_data_docs=False,
        raise_errors=True,
    )
    assert summary["statistics"]["batches"] == math.ceil(len(run.rows) / 20) > 1
    assert len(passes) == 1
    assert_agrees(g, summary)


def test_batches_are_consecutive_and_at_most_batch_rows(planted):
    _, runs = planted
    run = runs["nhsa.settlements"]
    g = run.gated
    whole = expectations.ge_frame(g.frame, run.contract)
    for source in (g.source, g.frame):
        parts = list(expectations.batches(source, run.contract, 7))
        assert [p.height for p in parts] == [7] * (len(run.rows) // 7) + [len(run.rows) % 7]
        joined = pl.concat(parts).to_pandas()
        pd.testing.assert_frame_equal(joined, whole)
    with pytest.raises(ValueError):
        next(expectations.batches(g.source, run.contract, 0))
    sizes = [3, 5, 0, 10, 1]
    frames = [pl.DataFrame({"a": list(range(n))}) for n in sizes]
    assert [f.height for f in expectations._rebatch(frames, 4)] == [4, 4, 4, 4, 3]


def test_an_empty_extract_is_validated_once(planted, tmp_path):
    _, runs = planted
    run = runs["hrss.employment"]
    g = run.gated
    summary = expectations.validate(
        tmp_path,
        run.contract,
        QUARTER,
        g.source.head(0),
        g.ctx,
        g.checks,
        update_data_docs=False,
        raise_errors=True,
    )
    assert summary["error"] is None and summary["success"] is True
    assert summary["statistics"]["rows"] == 0 and summary["statistics"]["batches"] == 1
    assert all(e["unexpected_count"] == 0 for e in summary["expectations"])


# --- the suite, the frame, the stored results ---------------------------------------------------


def test_each_check_has_one_expectation_named_after_its_reason(planted):
    _, runs = planted
    run = runs["mps.residents"]
    checks = run.gated.checks
    suite = expectations.build_suite(run.contract, CheckContext(QUARTER), checks)
    assert suite.name == "mps.residents"
    assert [e.meta["reason"] for e in suite.expectations] == [c.reason for c in checks]
    assert all(e.meta["expected"] for e in suite.expectations)
    kinds = {e.meta["reason"]: type(e).__name__ for e in suite.expectations}
    assert kinds["gender.codes"] == "ExpectColumnValuesToBeInSet"
    assert kinds["county_code.invalid_county"] == "ExpectColumnValuesToBeInSet"
    assert kinds["name.required"] == "ExpectColumnValuesToNotBeNull"
    assert kinds["id_number.check_character"] == "ExpectColumnValuesToPassContractRule"
    assert kinds["gender.disagrees_with_id"] == "ExpectMulticolumnValuesToPassContractRule"
    assert kinds["duplicate_key"] == "ExpectColumnValuesToBeUnique"  # no settled sets
    custom = [e for e in suite.expectations if hasattr(e, "reason")]
    assert all(e.reason == e.meta["reason"] for e in custom)
    assert all(e.cross_row is None for e in custom)
    settled = expectations.build_suite(run.contract, run.gated.ctx, checks, department="mps")
    by_reason = {e.meta["reason"]: e for e in settled.expectations}
    dup = by_reason["duplicate_key"]
    assert type(dup).__name__ == "ExpectColumnValuesToPassContractRule"
    assert dup.cross_row == f"{QUARTER}.mps.residents"  # a name, nothing from the keys
    assert by_reason["id_number.check_character"].cross_row is None


def test_the_ge_frame_holds_typed_codes_and_trimmed_text(planted):
    _, runs = planted
    run = runs["mps.residents"]
    frame = expectations.ge_frame(run.gated.frame, run.contract)
    assert list(frame.columns) == [c.name for c in run.contract.columns]
    assert frame.index.equals(pd.RangeIndex(len(run.rows)))
    ids = frame["id_number"].tolist()
    assert all(len(v) == 18 and v == v.upper() for v in ids if isinstance(v, str) and len(v) > 15)
    hukou = frame["hukou_no"]
    assert hukou.isna().sum() == 1  # the blank one
    assert set(frame["relation"].dropna()) >= {"CHILD"}  # ' child ' upper-cased and trimmed


def test_missing_columns_leave_out_their_expectations(tmp_path):
    contract = contracts.all_contracts()[("hrss", "employment")]
    header = ["id_number", "employer_id", "monthly_wage", "started_on"]  # no ended_on
    rows = [[person(i)[0], f"E{i}", "100", "2020-01-01"] for i in range(5)]
    write(tmp_path / "landing", "hrss", "employment", header, rows)
    gated = run_gate(contract, tmp_path / "landing", tmp_path / "out", "hrss")
    summary = expectations.validate(
        tmp_path / "out",
        contract,
        QUARTER,
        gated.source,
        gated.ctx,
        gated.checks,
        batch_rows=2,
        result_format=COMPLETE,
        raise_errors=True,
    )
    reasons = {e["reason"] for e in summary["expectations"]}
    assert "ended_on.before_started_on" not in reasons and "ended_on.invalid_date" not in reasons
    assert "started_on.after_quarter_end" in reasons
    assert summary["statistics"]["batches"] == 3
    assert_agrees(gated, summary)


def test_data_docs_exist_and_carry_no_identity_number_or_name(planted):
    out, runs = planted
    index = datadocs.build_data_docs(out, raise_errors=True)
    assert index == out.resolve() / "data_docs" / "index.html" and index.is_file()
    page = index.read_text(encoding="utf-8")
    for name in runs:
        assert f"{QUARTER}.{name}" in page  # one validation per extract per quarter
    secrets: set[str] = set()
    for run in runs.values():
        for i, c in enumerate(run.contract.columns):  # rows are in contract column order
            if not (c.restricted or c.value_type == "id"):
                continue
            values = {str(r[i]).strip() for r in run.rows}
            secrets |= {v for v in values if len(v) >= 3}
            secrets |= {v.upper() for v in values if len(v) >= 15}
            if c.value_type == "id":  # normalised too: upgraded from 15 digits, upper-cased
                secrets |= set(run.gated.frame[f"{c.name}__v"].drop_nulls().to_list()) - {""}
    assert any(len(s) == 18 for s in secrets) and any("林秀英" in s for s in secrets)
    files = [p for d in ("gx", "data_docs") for p in (out / d).rglob("*") if p.is_file()]
    assert any(p.suffix == ".json" and "validations" in p.parts for p in files)
    for p in files:
        text = p.read_bytes().decode("utf-8", errors="replace")
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{p}: {len(leaked)} personal values, e.g. {leaked[0][:6]}…"


# an address a browser would fetch from the network: in an attribute or a CSS url()
_EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|action)\s*=\s*["']?|url\(\s*["']?)\s*(?:https?:)?//""", re.I
)
_LOCAL = re.compile(r"""\b(?:src|href)\s*=\s*"([^"#][^"]*)\"""")


def test_no_data_docs_page_needs_the_network_and_every_file_it_links_is_there(planted):
    out, _ = planted
    index = datadocs.build_data_docs(out, raise_errors=True)
    pages = sorted(index.parent.rglob("*.html"))
    kinds = {p.relative_to(index.parent).parts[0] for p in pages}
    assert kinds == {"index.html", "expectations", "validations"}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not _EXTERNAL.findall(text), f"{page.name}: {_EXTERNAL.findall(text)[:3]}"
        assert "newsletter" not in text.lower() and "greatexpectations.io" not in text
        links = [u for u in _LOCAL.findall(text) if not u.startswith(("javascript:", "data:"))]
        assert any("static/vendor/" in u for u in links)
        for url in links:
            target = (page.parent / url.split("?")[0].split("#")[0]).resolve()
            assert target.is_file(), f"{page.relative_to(index.parent)} links {url}: missing"


def test_the_vendored_files_are_the_pinned_npm_packages_files():
    pinned = datadocs.manifest()
    assert pinned["sha256"], "the manifest lists the files it pins"
    for local, digest in pinned["sha256"].items():
        data = (datadocs.STATIC / local).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, local
    listed = {v for p in pinned["packages"] for v in p["files"].values()}
    assert set(pinned["sha256"]) == listed
    assert set(pinned["urls"].values()) <= listed
    for p in pinned["packages"]:
        assert re.fullmatch(r"\d+\.\d+\.\d+", p["version"]), p["name"]  # exact, not a range
        assert p["integrity"].startswith("sha512-"), p["name"]


def test_ges_templates_read_offline_name_no_address_on_the_internet():
    """A newer Great Expectations that adds a CDN to a template fails here, not at an auditor's
    desk."""
    from great_expectations.render import view

    root = Path(view.__file__).parent
    sources = [*(root / "templates").glob("*.j2"), *(root / "static" / "styles").glob("*.css")]
    assert len(sources) > 30
    for path in sources:
        text = datadocs.offline(path.name, path.read_text(encoding="utf-8"))
        if path.name.startswith("markdown_"):
            continue  # GE's Markdown rendering, which Data Docs do not use
        assert not re.findall(r"https?://(?!www\.w3\.org/)", text), path.name


def test_the_index_and_a_validation_page_show_their_tables_with_the_network_off(planted):
    """Rendered in Chromium with every network address refused: bootstrap-table, loaded from
    `static/vendor/`, has built the rows of the index's validation table and of the page's
    expectation tables (GE's own pages, loading it from a CDN, show none offline)."""
    out, runs = planted
    index = datadocs.build_data_docs(out, raise_errors=True)

    def rendered_rows(page: Path) -> list[str]:
        dom = browser.dom_offline(page)
        return [c for c in dom.split("<tr")[1:] if re.match(r"[^>]*\bdata-index=\"\d+\"", c)]

    rows = rendered_rows(index)
    for name in runs:
        assert any(f"{QUARTER}.{name}" in r for r in rows), f"{name} not in the index's table"
    run = runs["mca.assistance_roster"]
    pages = list((index.parent / "validations").rglob(f"{QUARTER}.mca.assistance_roster/*/*.html"))
    assert len(pages) == 1
    rows = rendered_rows(pages[0])
    reasons = [e["reason"] for e in run.summary["expectations"]]
    assert len(reasons) > 10
    for reason in reasons:
        assert any(f"contract rule {reason})" in r for r in rows), reason


def _site(out: Path) -> dict[str, str]:
    """The Data Docs site's pages, without what GE varies from one rendering to the next (the
    time in its logo's address, the random ids of collapsible sections)."""
    noise = re.compile(
        r"d=\d{8}T\d{6}\.\d+Z|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    )
    root = out / "data_docs"
    return {
        str(p.relative_to(root)): noise.sub("", p.read_text(encoding="utf-8"))
        for p in sorted(root.rglob("*.html"))
    }


def _stored_for(out: Path, run, quarter: str) -> None:
    """The extract's validation stored as the given quarter's, its pages not rendered."""
    g = run.gated
    expectations.validate(
        out,
        run.contract,
        Quarter.parse(quarter),
        g.source,
        g.ctx,
        g.checks,
        update_data_docs=False,
        raise_errors=True,
    )


def test_data_docs_are_built_quarter_by_quarter_into_the_site_a_whole_rebuild_makes(
    planted, tmp_path
):
    """The accounting step renders its own quarter's pages and the index only: an earlier
    quarter's page is not rendered again (the work does not grow with the history), and the site
    ends as a rebuild of everything makes it."""
    _, runs = planted
    run = runs["hrss.employment"]
    pages = {}
    for q in ("2026Q2", "2026Q3"):
        _stored_for(tmp_path, run, q)
        datadocs.build_data_docs(tmp_path, q, raise_errors=True)
        pages[q] = {
            p: p.stat().st_mtime_ns
            for p in (tmp_path / "data_docs" / "validations").rglob("*.html")
            if f"{q}.hrss.employment" in str(p)
        }
    assert len(pages["2026Q2"]) == len(pages["2026Q3"]) == 1
    ((page, rendered),) = pages["2026Q2"].items()
    assert page.stat().st_mtime_ns == rendered  # not rendered again for 2026Q3
    quarter_by_quarter = _site(tmp_path)
    index = quarter_by_quarter["index.html"]
    assert "2026Q2.hrss.employment" in index and "2026Q3.hrss.employment" in index
    datadocs.build_data_docs(tmp_path, raise_errors=True)  # everything, again
    assert _site(tmp_path) == quarter_by_quarter


def test_the_index_reads_each_stored_result_once_and_is_the_index_ge_builds(
    planted, tmp_path, monkeypatch
):
    """Building a quarter's Data Docs reads that quarter's stored results only: what the index
    shows of the earlier ones is kept (`index_links.json`). The site is the one GE builds
    reading every result, and without the kept file it is built from the results again."""
    from great_expectations.data_context.data_context.abstract_data_context import (
        AbstractDataContext,
    )

    _, runs = planted
    run = runs["hrss.employment"]
    read: list[str] = []
    real = AbstractDataContext.get_validation_result

    def counting(self, *args, **kwargs):
        read.append(kwargs["run_id"].run_name)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(AbstractDataContext, "get_validation_result", counting)
    for q in ("2026Q1", "2026Q2", "2026Q3"):
        _stored_for(tmp_path, run, q)
        read.clear()
        datadocs.build_data_docs(tmp_path, q, raise_errors=True)
        assert read == [f"{q}.hrss.employment"]
    kept = _site(tmp_path)
    assert all(f"{q}.hrss.employment" in kept["index.html"] for q in ("2026Q1", "2026Q3"))
    read.clear()
    run.validate(tmp_path, raise_errors=True)  # stored again, rendering its own pages
    assert read == [f"{QUARTER}.hrss.employment"]
    kept = _site(tmp_path)

    (tmp_path / "gx" / "uncommitted" / "index_links.json").write_text("not json")
    read.clear()
    datadocs.build_data_docs(tmp_path, "2026Q3", raise_errors=True)
    assert sorted(read) == [f"{q}.hrss.employment" for q in ("2026Q1", "2026Q2", "2026Q3")]
    assert _site(tmp_path) == kept

    monkeypatch.setattr(gx_patches, "_index_links_kept", lambda *a: contextlib.nullcontext())
    datadocs.build_data_docs(tmp_path, raise_errors=True)  # GE's own way, every page
    assert _site(tmp_path) == kept


def test_a_quarter_whose_pages_were_never_built_gets_them_with_the_next_quarter(planted, tmp_path):
    """If a quarter's Data Docs were not built (its accounting step failed), the next quarter's
    build renders them too: the index links no page that is not there."""
    _, runs = planted
    run = runs["hrss.employment"]
    for q in ("2026Q1", "2026Q2", "2026Q3"):
        _stored_for(tmp_path, run, q)
        if q != "2026Q2":  # 2026Q2's build "failed"
            datadocs.build_data_docs(tmp_path, q, raise_errors=True)
    built = {p.parent.parent.name for p in (tmp_path / "data_docs" / "validations").rglob("*.html")}
    assert built == {f"{q}.hrss.employment" for q in ("2026Q1", "2026Q2", "2026Q3")}


def test_a_copied_output_folder_validates_and_builds_its_data_docs_in_the_copy(planted, tmp_path):
    """GE's project records its Data Docs folder relative to itself (`gx_store.site_config`): an
    `<out>` copied elsewhere, the original deleted, validates into the copy and builds its pages
    there, its configuration is not rewritten, and nothing GE wrote names the old folder."""
    _, runs = planted
    run = runs["hrss.employment"]
    first, copy = tmp_path / "first", tmp_path / "copy"
    _stored_for(first, run, "2026Q2")
    datadocs.build_data_docs(first, "2026Q2", raise_errors=True)
    config = Outputs(first).gx_config.read_bytes()
    assert str(tmp_path) not in config.decode("utf-8")
    shutil.copytree(first, copy)
    shutil.rmtree(first)

    run.validate(copy, raise_errors=True)  # the quarter's pages rendered as it is stored
    _stored_for(copy, run, "2026Q3")
    index = datadocs.build_data_docs(copy, "2026Q3", raise_errors=True)
    assert index == copy.resolve() / "data_docs" / "index.html" and index.is_file()
    assert not first.exists()
    built = {p.parent.parent.name for p in (copy / "data_docs" / "validations").rglob("*.html")}
    assert built == {f"{q}.hrss.employment" for q in ("2026Q2", "2026Q3")}
    assert Outputs(copy).gx_config.read_bytes() == config
    for p in copy.rglob("*"):
        if p.is_file():
            text = p.read_bytes().decode("utf-8", errors="replace")
            assert str(first) not in text and str(first.resolve()) not in text, p


def test_stored_results_keep_counts_only(planted):
    out, _ = planted
    stored = list((out / "gx" / "uncommitted" / "validations").rglob("*.json"))
    assert stored
    for p in stored:
        doc = json.loads(p.read_text(encoding="utf-8"))
        for r in doc["results"]:
            assert set(r["result"]) <= set(gx_store.STORED_RESULT_KEYS)
            assert "unexpected_count" in r["result"]


def test_a_rerun_replaces_the_quarters_result(planted):
    out, runs = planted
    run = runs["hrss.employment"]
    folder = out / "gx" / "uncommitted" / "validations" / "hrss" / "employment"
    before = list(folder.rglob("*.json"))
    summary = run.validate(out, batch_rows=25, raise_errors=True)
    after = list(folder.rglob("*.json"))
    assert len(before) == len(after) == 1 and before != after
    assert all("unexpected_index_list" not in e for e in summary["expectations"])
    assert summary["statistics"]["rows"] == len(run.rows)
    assert summary["statistics"]["batches"] == 3
    assert summary["statistics"]["unsuccessful_expectations"] > 0


def test_a_ge_problem_is_returned_not_raised(planted, tmp_path):
    _, runs = planted
    run = runs["nhsa.settlements"]
    g = run.gated
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    args = (run.contract, QUARTER, g.source, g.ctx, g.checks)
    summary = expectations.validate(blocked, *args)
    assert summary["success"] is False and summary["error"]
    with pytest.raises(OSError):
        expectations.validate(blocked, *args, raise_errors=True)
    missing = expectations.validate(tmp_path, run.contract, QUARTER, None, *args[3:])
    assert missing["success"] is False and "missing" in missing["error"]
    assert datadocs.build_data_docs(blocked) is None


# --- every contract, with values drawn from good and bad pools --------------------------------

_DATE = [
    "2026-07-15",
    "20260715",
    "2026-13-01",
    "2027-01-01",
    "2026-06-30",
    "",
    "abc",
    "２０26-07-01",
]
POOLS = {
    "county": [*COUNTIES[:4], "350199", "", " 350102 "],
    "date": _DATE + ["2020-02-29", "2019-02-29", "1999-12-31"],
    "month": ["2026-07", "2026-08", "2026-06", "2026-7", "2026-10", "", "２０２６-07"],
    "money": ["100", "100.5", "100.50", "100.555", "-5", "1e3", "", "１００", "0", "0.00", "7.1"],
    "decimal": ["1.5", "-2", "abc", "１.５", "", "0", "+1", "12345678901234567"],
    "int": ["5", "+5", "-3", "1.0", "１２", "", "0", "99999999999999999999", "3", "1", "4"],
    "bool": ["true", "是", "Y", "n", "maybe", "", "FALSE", "0"],
    "text": ["A1", "A2", " A1 ", "", "B"],
}


def _id_pool() -> list[str]:
    pool = [person(i)[0] for i in range(4)]
    first = person(0)[0]
    return (
        pool
        + [
            first[:6] + first[8:17],  # its 15-digit form
            first[:17] + ("0" if first[17] != "0" else "1"),
            "35010219800230125X",
            ident("359999", "19800101", 129),  # no such address code
            "12345",
            "",
            ident_with_x("350103", dt.date(1975, 5, 5)).lower(),
        ]
    )


def _fuzz_rows(contract, rng: random.Random, n: int) -> list[list[str]]:
    ids = _id_pool()
    pools = {}
    for c in contract.columns:
        if c.value_type == "id":
            pools[c.name] = ids
        elif c.value_type == "code":
            codes = list(c.codes or ())
            pools[c.name] = codes + [codes[0].lower(), "BAD", ""]
        elif c.name == "warning_key":
            pools[c.name] = sorted(ROUTED)[:3] + ["W-unknown", ""]
        else:
            pools[c.name] = POOLS[c.value_type]
    return [[rng.choice(pools[c.name]) for c in contract.columns] for _ in range(n)]


def test_ge_and_the_gate_agree_on_every_check_of_every_contract(tmp_path):
    """Valid rows from the contract (`generate/samples.py`), one row broken per check, then rows
    drawn from pools of good and bad values (full-width digits, 15-digit numbers, ...)."""
    rng = random.Random(20260930)
    landing, out = tmp_path / "landing", tmp_path / "out"
    ran = 0
    for (dept, extract), contract in contracts.all_contracts().items():
        sender = "mca" if dept == "any" else dept
        all_checks = compile_checks(contract, CheckContext(QUARTER))
        n = 3 * len(all_checks) + 6
        keys = factories.warning_keys(n) if dept == "any" else None
        rows = factories.make_rows(contract, n, keys=keys)
        planted: dict[str, set[int]] = {}
        for k, check in enumerate(all_checks):  # three rows apart, so plants do not meet
            try:
                planted[check.reason] = set(factories.plant(rows, contract, check, 3 * k))
            except factories.CannotPlant:
                continue
        header = [c.name for c in contract.columns]
        fuzz = _fuzz_rows(contract, rng, 60)
        write(landing, sender, extract, header, [[r[h] for h in header] for r in rows] + fuzz)
        routed = None if keys is None else ROUTED | frozenset(keys)
        gated = run_gate(contract, landing, out, sender, routed)
        summary = expectations.validate(
            out,
            contract,
            QUARTER,
            gated.source,
            gated.ctx,
            gated.checks,
            result_format=COMPLETE,
            department=sender,
            update_data_docs=False,  # rendering is covered above; agreement is the point here
            raise_errors=True,
        )
        assert_agrees(gated, summary)
        unexpected = {e["reason"]: set(e["unexpected_index_list"]) for e in summary["expectations"]}
        for reason, rows_broken in planted.items():
            assert rows_broken <= unexpected[reason], f"{contract.name}: {reason}"
        assert len(planted) >= len(all_checks) - 2, contract.name
        ran += 1
    assert ran == len(contracts.all_contracts())


def test_an_error_inside_a_custom_expectation_is_reported_not_hidden(planted, monkeypatch):
    out, runs = planted
    run = runs["cdpf.disability_subsidies"]

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the Polars side")

    monkeypatch.setattr(expectations.row_checks, "evaluate", broken)
    g = run.gated
    args = (run.contract, QUARTER, g.source, g.ctx, g.checks)
    summary = expectations.validate(out, *args, batch_rows=7)
    raised = {e["reason"] for e in summary["expectations"] if e["exception"]}
    assert "month.outside_quarter" in raised and "amount.required" not in raised
    assert summary["success"] is False and "month.outside_quarter" in summary["error"]
    with pytest.raises(RuntimeError, match="month.outside_quarter"):
        expectations.validate(out, *args, raise_errors=True)


def test_validations_into_one_folder_take_turns(planted, tmp_path):
    """Dagster runs extracts in parallel processes, and GE rewrites its configuration (not
    atomically) when it adds an asset: without one writer at a time, parallel runs lose each
    other's assets. A validation waits while another holds the folder's lock."""
    _, runs = planted
    run = runs["hrss.employment"]
    g = run.gated
    args = (run.contract, QUARTER, g.source, g.ctx, g.checks)
    done = threading.Event()

    def validate() -> None:
        expectations.validate(tmp_path, *args, update_data_docs=False, raise_errors=True)
        done.set()

    with (tmp_path / ".gx.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        worker = threading.Thread(target=validate)
        worker.start()
        assert not done.wait(1.0)  # held off by the lock
        fcntl.flock(lock, fcntl.LOCK_UN)
    worker.join(60)
    assert done.is_set()


def test_a_run_keeps_one_context_until_another_process_changes_the_configuration(tmp_path):
    """One Great Expectations context serves the run's steps; when the project's configuration
    changed on disk (a parallel step added an asset), the context is opened again rather than
    one holding the old configuration writing it back."""
    run = gx_store.RunContext(tmp_path)
    first = run.get()
    assert run.get() is first
    config = Outputs(tmp_path).gx_config
    assert config.is_file()
    config.write_text(config.read_text(encoding="utf-8") + "\n# another step\n", encoding="utf-8")
    second = run.get()
    assert second is not first and run.get() is second


def test_the_context_substitutes_no_configuration_variables(tmp_path, monkeypatch):
    """The project names no configuration-variables file, so GE never reads one: it would parse
    that YAML file at every substitution of its configuration, hundreds of times a quarter."""
    from great_expectations.core import config_provider

    read = []
    monkeypatch.setattr(
        config_provider._ConfigurationVariablesConfigurationProvider,
        "get_values",
        lambda self: read.append(self) or {},
    )
    gx_store.context(tmp_path)  # a new project: GE's template names the file
    read.clear()
    ctx = gx_store.context(tmp_path)
    assert ctx.variables.config_variables_file_path is None
    ctx.data_sources.add_pandas("probe")  # substitutes the configuration
    again = gx_store.context(tmp_path)
    assert again.data_sources.get("probe") is not None
    assert read == []


def test_an_unchanged_suite_is_not_written_again_and_a_rerun_keeps_one_definition(
    planted, tmp_path
):
    """Validating an extract again for the same quarter reads the stored suite and validation
    definition and writes neither (they are the same); a suite that changed is written, and
    the quarter's definition then names the new one."""
    _, runs = planted
    run = runs["nhsa.settlements"]
    run.validate(tmp_path, update_data_docs=False, raise_errors=True)
    gx_root = tmp_path / "gx"
    (suite_file,) = (gx_root / "expectations").rglob("*.json")
    definitions = list((gx_root / "validation_definitions").rglob("*.json"))
    assert len(definitions) == 1
    written = suite_file.stat().st_mtime_ns, definitions[0].stat().st_mtime_ns

    again = run.validate(tmp_path, update_data_docs=False, raise_errors=True)
    assert again["expectations"] == run.validate(tmp_path, update_data_docs=False)["expectations"]
    assert (suite_file.stat().st_mtime_ns, definitions[0].stat().st_mtime_ns) == written
    assert list((gx_root / "validation_definitions").rglob("*.json")) == definitions

    g = run.gated
    fewer = [c for c in g.checks if c.reason != "duplicate_key"]  # another suite
    expectations.validate(
        tmp_path, run.contract, QUARTER, g.source, g.ctx, fewer,
        department=run.sender, update_data_docs=False, raise_errors=True,
    )  # fmt: skip
    suite = json.loads(suite_file.read_text(encoding="utf-8"))
    reasons = {e["meta"]["reason"] for e in suite["expectations"]}
    assert "duplicate_key" not in reasons and reasons
    (definition,) = (gx_root / "validation_definitions").rglob("*.json")
    assert json.loads(definition.read_text(encoding="utf-8"))["suite"]["id"] == suite["id"]


def test_a_changed_suite_keeps_its_id_and_its_unchanged_expectations_theirs(planted, tmp_path):
    """A suite that changed is written whole under the id it had; each expectation that did not
    change keeps its id, one that is new gets an id of its own, and no two share one."""
    _, runs = planted
    run, g = runs["nhsa.settlements"], runs["nhsa.settlements"].gated

    def stored() -> dict:
        (suite_file,) = (tmp_path / "gx" / "expectations").rglob("*.json")
        return json.loads(suite_file.read_text(encoding="utf-8"))

    def ids(suite: dict) -> dict[str, str]:
        return {e["meta"]["reason"]: e["id"] for e in suite["expectations"]}

    def validate(checks) -> None:
        expectations.validate(
            tmp_path, run.contract, QUARTER, g.source, g.ctx, checks,
            department=run.sender, update_data_docs=False, raise_errors=True,
        )  # fmt: skip

    validate(g.checks)
    first = stored()
    validate([c for c in g.checks if c.reason != "duplicate_key"])
    fewer = stored()
    validate(g.checks)
    again = stored()
    assert first["id"] == fewer["id"] == again["id"]
    assert ids(fewer) == {r: i for r, i in ids(first).items() if r != "duplicate_key"}
    assert set(ids(again)) == set(ids(first))
    assert ids(again)["duplicate_key"] not in ids(first).values()
    assert {r: i for r, i in ids(again).items() if r != "duplicate_key"} == ids(fewer)
    assert len(set(ids(again).values())) == len(again["expectations"])


@pytest.mark.parametrize("name", [f"{s}.{e}" for _, e, s in PLANTED])
def test_the_rows_the_gate_prepared_give_the_same_validation_without_a_second_evaluation(
    planted, tmp_path, monkeypatch, name
):
    """The gate's second pass writes the rows as GE validates them with its own flags
    (`checks.Prepared`): validated from that file, every expectation gives what the second read
    and evaluation of the file gives, row for row, and the checks are not evaluated again."""
    out, runs = planted
    run = runs[name]
    contract = contracts.as_sent_by(run.contract, run.sender)
    landing = out.parent / "landing"  # the fixture's
    keys = run.gated.checked.ctx.routed_warning_keys  # the feedback's, as the fixture gated it
    checked = gate.run_extract(
        contract, landing, tmp_path, QUARTER, department=run.sender, routed_warning_keys=keys
    )
    prepared = checked.for_validation()
    assert isinstance(prepared, row_checks.Prepared) and checked.prepared_path.is_file()
    calls = []
    real = row_checks.evaluate
    monkeypatch.setattr(row_checks, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    summary = expectations.validate(
        tmp_path, run.contract, QUARTER, prepared, checked.ctx, checked.checks,
        department=run.sender, result_format=COMPLETE, raise_errors=True,
    )  # fmt: skip
    assert calls == [], "the gate's flags were evaluated again"
    assert summary["expectations"] == run.summary["expectations"]
    assert summary["statistics"]["rows"] == len(run.rows)
    path = checked.prepared_path
    checked.close()
    assert not path.exists() and not list(path.parent.iterdir())


def test_a_quarter_leaves_no_prepared_rows_behind(tmp_path):
    """The prepared rows are personal data: gone once each extract is validated."""
    import logging

    from pipelines.gate import stage as gate_stage

    landing, out = tmp_path / "landing", tmp_path / "out"
    header, rows, _ = settlements()
    write(landing, "nhsa", "settlements", header, rows)
    contract = contracts.all_contracts()[("nhsa", "settlements")]
    gated = gate_stage.gate_extract(
        landing, out, contract, QUARTER, log=logging.getLogger("test"), render_data_docs=False
    )
    assert gated.validation is not None and gated.validation["error"] is None
    assert gated.validation["statistics"]["rows"] == len(rows)
    assert not list((out / str(QUARTER) / "staging" / ".ge").iterdir())


def test_prepared_rows_a_killed_run_left_are_removed_by_the_next_gating(tmp_path):
    """A run killed between the gate and the validation leaves its prepared rows (personal
    data); the extract's next gating removes them, whether or not it writes its own."""
    landing, out = tmp_path / "landing", tmp_path / "out"
    header, rows, _ = settlements()
    contract = contracts.all_contracts()[("nhsa", "settlements")]
    folder = out / str(QUARTER) / "staging" / ".ge"
    folder.mkdir(parents=True)
    left = folder / "nhsa.settlements.0123456789ab.parquet"
    other = folder / "mps.residents.0123456789ab.parquet"  # another extract's: not ours to remove
    left.write_bytes(b"rows of a killed run")
    other.write_bytes(b"rows of another extract")
    write(landing, "nhsa", "settlements", header, [])  # a header alone: no pass 2
    gate.run_extract(contract, landing, out, QUARTER).close()
    assert not left.exists() and other.exists()


def test_the_prepared_rows_live_as_long_as_what_validates_them(planted, tmp_path):
    """`for_validation()` may outlive the `Checked` it came from: its file stays until the
    prepared rows are dropped too."""
    import gc

    out, runs = planted
    run = runs["nhsa.settlements"]
    prepared = gate.run_extract(
        run.contract, out.parent / "landing", tmp_path, QUARTER
    ).for_validation()
    gc.collect()
    assert prepared.frame.select(pl.len()).collect().item() == len(run.rows)
