"""Reading every allowed format and spelling (extracts.md §2: formats, headers, values)."""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from pipelines.gate import extract as gate
from pipelines.generate.samples import (
    QUARTER,
    contract_named,
    extract_path,
    id_number,
    make_rows,
    write_extract,
)
from tests.gating import run_gate

ROWS = 200  # up to ten odd values per file stay under the 5 % limit


def _gate_values(contract_name, column, values, landing, out, *, fmt="csv", **row_changes):
    """Rows 1..len(values) carry `values` in `column` (and `row_changes` column -> value for
    those rows); returns the run and, per value, the reasons its row was quarantined with."""
    contract = contract_named(contract_name)
    rows = make_rows(contract, ROWS, seed=3, variants=False)
    for i, v in enumerate(values):
        rows[i][column] = v
        rows[i].update(row_changes)
    write_extract(landing, contract, rows, fmt=fmt)
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED, run.result.failure_reasons
    by_row = run.reasons_by_row()
    return run, [by_row.get(i + 1, set()) for i in range(len(values))]


def _staged(run, column, n):
    """The staged values of rows 1..n of `column` (None for a row not staged)."""
    staged = dict(zip(run.staging["row_number"], run.staging[column], strict=True))
    return [staged.get(i + 1) for i in range(n)]


# ------------------------------------------------------------------ encodings and formats
@pytest.mark.parametrize("encoding", ["gb18030", "gbk"])
def test_gb18030_file_with_chinese_headers_passes_with_chinese_values_intact(
    landing, out, encoding
):
    contract = contract_named("mca.assistance_roster")
    rows = make_rows(contract, 120, seed=5)
    if encoding == "gb18030":
        rows[0]["name"] = "王𠮷"  # a rare character GBK lacks: four bytes in GB18030
    path = write_extract(
        landing,
        contract,
        rows,
        encoding=encoding,
        headers="alias",
        rename={"id_number": "身份证号"},  # the roster's second alias
        line_end="\r\n",  # exported on Windows
    )
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert raw.startswith("身份证号,姓名,救助家庭编号".encode("gb18030"))

    run = run_gate(contract, landing, out)
    r = run.result
    assert (r.status, r.encoding, r.file_format) == (gate.PASSED, "gb18030", "csv")
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (120, 120, 0)
    assert run.staging["name"].to_list() == [row["name"] for row in rows]
    assert run.staging["id_number"].to_list() == [row["id_number"] for row in rows]


def test_utf8_bom_file_passes_and_the_bom_is_not_part_of_the_first_header(landing, out):
    contract = contract_named("nhsa.enrollments")
    rows = make_rows(contract, 80)
    path = write_extract(landing, contract, rows, encoding="utf-8-sig", headers="padded")
    assert path.read_bytes().startswith(b"\xef\xbb\xbf  id_number ,")
    run = run_gate(contract, landing, out)
    r = run.result
    assert (r.status, r.encoding, r.extra_columns) == (gate.PASSED, "utf-8-sig", [])
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (80, 80, 0)
    assert run.staging["id_number"].to_list() == [row["id_number"] for row in rows]


@pytest.mark.parametrize("money_as", ["decimal", "float"])
def test_parquet_with_typed_columns_passes(landing, out, money_as):
    contract = contract_named("nhsa.settlements")
    rows = make_rows(contract, 90, seed=2)
    path = write_extract(landing, contract, rows, fmt="parquet", money_as=money_as)
    schema = pl.read_parquet_schema(path)
    assert schema["settled_on"] == pl.Date
    assert schema["total_cost"] == (pl.Decimal(18, 2) if money_as == "decimal" else pl.Float64)

    run = run_gate(contract, landing, out)
    r = run.result
    assert (r.status, r.file_format, r.encoding) == (gate.PASSED, "parquet", None)
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (90, 90, 0)
    assert run.staging["total_cost"].to_list() == [Decimal(row["total_cost"]) for row in rows]
    assert run.staging["settled_on"].to_list() == [
        dt.date.fromisoformat(row["settled_on"]) for row in rows
    ]


def test_parquet_typed_values_are_checked_by_the_value_they_hold(landing, out):
    contract = contract_named("nhsa.settlements")
    rows = make_rows(contract, 90, seed=2, variants=False)
    rows[4]["settled_on"] = "2026-06-30"  # a typed date, a day before the quarter
    rows[7]["total_cost"] = "0.00"
    path = write_extract(landing, contract, rows, fmt="parquet")
    assert pl.read_parquet_schema(path)["settled_on"] == pl.Date
    run = run_gate(contract, landing, out)
    assert run.reasons_by_row() == {
        5: {"settled_on.outside_quarter"},
        8: {"total_cost.sum_mismatch"},
    }


def test_xlsx_with_typed_cells_passes(landing, out):
    contract = contract_named("hrss.unemployment_registrations")
    rows = make_rows(contract, 70, seed=4)
    path = write_extract(landing, contract, rows, fmt="xlsx", headers="alias", extra_sheets=1)
    ws = openpyxl.load_workbook(path).worksheets[0]
    assert ws.cell(1, 1).value == "公民身份号码"
    assert isinstance(ws.cell(2, 2).value, dt.datetime)  # an Excel date
    assert ws.cell(2, 2).is_date
    assert isinstance(ws.cell(2, 3).value, bool)
    assert isinstance(ws.cell(2, 6).value, int | float)
    assert isinstance(ws.cell(2, 1).value, str)

    run = run_gate(contract, landing, out)
    r = run.result
    assert (r.status, r.file_format) == (gate.PASSED, "xlsx")
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (70, 70, 0)
    assert run.staging["registered_on"].to_list() == [
        dt.date.fromisoformat(row["registered_on"]) for row in rows
    ]
    assert run.staging["benefit_monthly"].to_list() == [
        Decimal(row["benefit_monthly"]).quantize(Decimal("0.01")) for row in rows
    ]


def test_xlsx_whole_numbers_and_dates_outside_the_rules(landing, out):
    contract = contract_named("cdpf.disability_certificates")
    rows = make_rows(contract, 60, seed=8, variants=False)
    rows[2]["grade"] = "5"
    write_extract(landing, contract, rows, fmt="xlsx")
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {3: {"grade.out_of_range"}}
    assert run.staging["grade"].to_list() == [int(r["grade"]) for i, r in enumerate(rows) if i != 2]


def test_undecodable_file_fails_with_nothing_received(landing, out):
    contract = contract_named("nhsa.enrollments")
    path = extract_path(landing, contract, "csv")
    lines = ["id_number,scheme,status,premium_subsidy"]
    lines += [f"350102199001011234,RÉSIDENT,ENROLLED,{i}.00 José" for i in range(30)]
    raw = "\n".join(lines).encode("latin-1")
    for encoding in ("utf-8", "gb18030"):
        with pytest.raises(UnicodeDecodeError):
            raw.decode(encoding)
    path.write_bytes(raw)
    r = run_gate(contract, landing, out).result
    assert r.status == gate.FAILED
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (0, 0, 0)
    assert r.reason_rows == {"file.undecodable": 0}
    (message,) = r.failure_reasons
    assert "nhsa/enrollments.csv" in message and "GB18030" in message
    assert r.sha256 and r.staging_path is None and r.quarantine_path is None


def test_a_damaged_utf8_file_is_not_read_as_gb18030(landing, out):
    """A UTF-8 file with Chinese names and one bad byte late in it still decodes as GB18030
    (almost any byte pair does): it must fail as undecodable, not turn into wrong text."""
    contract = contract_named("mps.residents")
    rows = make_rows(contract, 80, seed=2)
    for row in rows:
        row["name"] = "陈林"  # 6 bytes of UTF-8 that GB18030 reads as three other characters
    path = write_extract(landing, contract, rows)
    raw = path.read_bytes()
    at = raw.rindex("陈林".encode())  # the last name: E9 99 88 E6 9E 97
    damaged = raw[:at] + b"\xc3" + raw[at + 1 :]  # C3 99 is valid UTF-8, 88 then is not
    damaged.decode("gb18030")  # a fallback to GB18030 would have read it without complaint
    path.write_bytes(damaged)
    r = run_gate(contract, landing, out).result
    assert r.status == gate.FAILED
    assert r.reason_rows == {"file.undecodable": 0}
    assert f"offset {at + 2:,}" in r.failure_reasons[0]


def test_ragged_csv_row_fails_naming_the_data_row_and_keeps_every_row(landing, out):
    contract = contract_named("moe.students")
    rows = make_rows(contract, 50, seed=1)
    path = write_extract(landing, contract, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[7] += ",surplus"  # data row 7
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_gate(contract, landing, out)
    r = run.result
    assert r.status == gate.FAILED
    assert (r.rows_received, r.rows_accepted, r.rows_quarantined) == (50, 0, 50)
    (message,) = r.failure_reasons
    assert "moe/students.csv" in message and "data row 7 " in message and "5 fields" in message
    assert sorted(run.quarantine["row_number"]) == list(range(1, 51))
    assert all("file.unreadable" in reasons for reasons in run.quarantine["reasons"])


def test_short_csv_row_reads_missing_fields_as_empty(landing, out):
    """A row with fewer fields than the header (Excel drops trailing empty cells) reads the
    missing fields as empty: a required one quarantines the row, the file proceeds."""
    contract = contract_named("moe.students")
    rows = make_rows(contract, 50, seed=1, variants=False)
    path = write_extract(landing, contract, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # data row 3 lacks status
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {3: {"status.required"}}


def test_a_ragged_file_is_blamed_on_the_row_with_too_many_fields(landing, out):
    contract = contract_named("moe.students")
    rows = make_rows(contract, 50, seed=1, variants=False)
    path = write_extract(landing, contract, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].rsplit(",", 1)[0]  # data row 3: three fields
    lines[9] += ",surplus,more"  # data row 9: six fields
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = run_gate(contract, landing, out)
    r = run.result
    assert (r.status, r.rows_received, r.rows_quarantined) == (gate.FAILED, 50, 50)
    (message,) = r.failure_reasons
    assert "data row 9 has 6 fields, the header has 4" in message
    assert run.reasons_by_row()[3] == {"status.required", "file.unreadable"}


# ------------------------------------------------------------------ identity numbers
def _with_x_check_character(born: dt.date) -> str:
    for seq in range(1000):
        number = id_number("350102", born, seq)
        if number.endswith("X"):
            return number
    raise AssertionError("no sequence gives X")


def test_identity_numbers(landing, out):
    x_number = _with_x_check_character(dt.date(1980, 5, 17))
    x_other = _with_x_check_character(dt.date(1981, 6, 18))
    values = [
        "350102500101123",  # 15 digits: 1950-01-01
        x_number.lower(),
        f"  {x_other}  ",
        id_number("350402", dt.date(1950, 3, 1), 11),  # code created 1983, abolished 2021
        id_number("352122", dt.date(1994, 6, 1), 11),  # ceased 1994: born that year, fine
        id_number("352122", dt.date(1995, 6, 1), 11),  # ceased before the birth year
        id_number("350527", dt.date(1970, 1, 2), 11),  # Kinmen: a valid address code
        id_number("359999", dt.date(1970, 1, 2), 11),  # never existed
        id_number("350102", dt.date(2026, 9, 30), 11),  # born on E
        id_number("350102", dt.date(2026, 10, 1), 11),  # born after E
        id_number("350102", dt.date(1970, 1, 2), 11)[:17] + "Y",
        "3501021970010211",  # 16 characters
    ]
    right = id_number("350102", dt.date(1970, 1, 3), 11)
    values.append(right[:17] + ("0" if right[17] != "0" else "1"))
    run, reasons = _gate_values("mca.care_assessments", "id_number", values, landing, out)
    assert reasons == [
        set(),
        set(),
        set(),
        set(),
        set(),
        {"id_number.address_code"},
        set(),
        {"id_number.address_code"},
        set(),
        {"id_number.birth_date"},
        {"id_number.format"},
        {"id_number.format"},
        {"id_number.check_character"},
    ]
    staged = _staged(run, "id_number", len(values))
    upgraded = "35010219500101123"
    assert staged[0] == upgraded + id_number("350102", dt.date(1950, 1, 1), 123)[17]
    assert staged[1:3] == [x_number, x_other]


def test_full_width_digits_are_not_an_identity_number(landing, out):
    """GB 11643 digits are ASCII: a number typed in a full-width input mode is a format error,
    not a wrong birth date or check character."""
    full_width = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
    values = [
        id_number("350102", dt.date(1970, 1, 2), 11).translate(full_width),
        "350102700102011".translate(full_width),
        id_number("350102", dt.date(1970, 1, 2), 13)[:17].translate(full_width) + "1",
    ]
    _, reasons = _gate_values("mca.care_assessments", "id_number", values, landing, out)
    assert reasons == [{"id_number.format"}] * 3


def test_fifteen_digit_number_and_its_upgrade_are_one_key(landing, out):
    contract = contract_named("mca.care_assessments")
    rows = make_rows(contract, 60, variants=False)
    rows[0]["id_number"] = "350102500101123"
    rows[1]["id_number"] = id_number("350102", dt.date(1950, 1, 1), 123)
    write_extract(landing, contract, rows)
    run = run_gate(contract, landing, out)
    assert run.reasons_by_row() == {1: {"duplicate_key"}, 2: {"duplicate_key"}}


# ------------------------------------------------------------------ county codes
def test_county_codes(landing, out):
    values = [
        "350102",
        " 350404 ",  # created 2021
        "350527",  # Kinmen: not administered by Fujian
        "350100",  # Fuzhou prefecture
        "350101",  # 市辖区
        "350000",  # the province
        "350402",  # ceased 2021
        "110101",  # Beijing
        "35010",
    ]
    _, reasons = _gate_values("mps.residents", "county_code", values, landing, out)
    assert reasons == [set(), set()] + [{"county_code.invalid_county"}] * 7


# ------------------------------------------------------------------ dates
@pytest.mark.parametrize(
    ("contract_name", "column", "changes"),
    [
        ("mps.residents", "status_date", {"status": "DECEASED"}),
        ("mca.care_assessments", "assessed_on", {}),
        ("mca.assistance_roster", "start_date", {}),
    ],
)
def test_compact_dates_are_accepted_from_mps_and_mca(contract_name, column, changes, landing, out):
    values = [
        "20250115",
        "2025-01-15",
        "20260930",
        "20261001",
        "20250230",
        "2026-02-30",
        "2025-1-15",
        "2025/01/15",
    ]
    run, reasons = _gate_values(contract_name, column, values, landing, out, **changes)
    bad_date, late = {f"{column}.invalid_date"}, {f"{column}.after_quarter_end"}
    assert reasons == [set(), set(), set(), late] + [bad_date] * 4
    staged = _staged(run, column, 3)
    assert staged == [dt.date(2025, 1, 15), dt.date(2025, 1, 15), dt.date(2026, 9, 30)]


def test_compact_dates_are_rejected_from_hrss(landing, out):
    values = ["20250115", "2025-01-15", "2025/01/15", "2024-02-29", "2025-02-29", "2026-02-30"]
    _, reasons = _gate_values("hrss.employment", "started_on", values, landing, out, ended_on="")
    bad = {"started_on.invalid_date"}
    assert reasons == [bad, set(), bad, set(), bad, bad]


def test_months(landing, out):
    values = ["2026-07", "2026-09", "2026-06", "2026-10", "2026-7", "2026-13", "202607"]
    _, reasons = _gate_values("cdpf.disability_subsidies", "month", values, landing, out)
    outside, bad = {"month.outside_quarter"}, {"month.invalid_month"}
    assert reasons == [set(), set(), outside, outside, bad, bad, bad]


# ------------------------------------------------------------------ booleans, codes, money
def test_booleans(landing, out):
    values = ["true", "FALSE", "1", "0", "Y", "n", "是", "否", " True ", "yes", "T", "2"]
    run, reasons = _gate_values(
        "hrss.unemployment_registrations", "able_to_work", values, landing, out
    )
    bad = {"able_to_work.invalid_bool"}
    assert reasons == [set()] * 9 + [bad] * 3
    staged = _staged(run, "able_to_work", 9)
    assert staged == [True, False, True, False, True, False, True, False, True]


def test_codes_are_trimmed_and_upper_cased(landing, out):
    values = [" enrolled ", "Not_Enrolled", "ENROLLED", "ENROL", "enrolled!"]
    run, reasons = _gate_values("nhsa.enrollments", "status", values, landing, out)
    assert reasons == [set(), set(), set(), {"status.codes"}, {"status.codes"}]
    assert _staged(run, "status", 3) == ["ENROLLED", "NOT_ENROLLED", "ENROLLED"]


def test_money(landing, out):
    values = ["0", "12.5", " 1234.56 ", "0.00", "12.345", "-5", "-0.01", "1,000", "1e3", "¥12"]
    run, reasons = _gate_values("nhsa.enrollments", "premium_subsidy", values, landing, out)
    bad = {"premium_subsidy.invalid_money"}
    assert reasons == [set()] * 4 + [bad] * 6
    assert _staged(run, "premium_subsidy", 4) == [
        Decimal("0.00"),
        Decimal("12.50"),
        Decimal("1234.56"),
        Decimal("0.00"),
    ]


def test_a_nullable_date_left_empty_or_blank_is_null(landing, out):
    values = ["", "   "]
    run, reasons = _gate_values("hrss.employment", "ended_on", values, landing, out)
    assert reasons == [set(), set()]
    assert _staged(run, "ended_on", 2) == [None, None]


def test_staging_is_written_for_the_quarter_and_department(landing, out):
    contract = contract_named("nhsa.enrollments")
    write_extract(landing, contract, make_rows(contract, 60))
    run = run_gate(contract, landing, out)
    assert run.result.staged(out) == out / str(QUARTER) / "staging/nhsa/enrollments.parquet"
    # recorded relative to the output folder, so that a moved folder reads its own
    assert run.result.staging_path == f"{QUARTER}/staging/nhsa/enrollments.parquet"


# ------------------------------------------------------------------ typed cells by their value
def test_parquet_decimals_of_a_wider_scale_are_read_by_their_value(landing, out):
    """A DECIMAL(18,4) amount holding 1234.5 holds a money value with one decimal."""
    contract = contract_named("nhsa.enrollments")
    rows = make_rows(contract, 60, variants=False)
    path = extract_path(landing, contract, "parquet")
    amounts = [Decimal(r["premium_subsidy"]) for r in rows]
    amounts[:3] = [Decimal("1234.5"), Decimal("0"), Decimal("12.345")]
    pl.DataFrame(
        [
            pl.Series("id_number", [r["id_number"] for r in rows]),
            pl.Series("scheme", [r["scheme"] for r in rows]),
            pl.Series("status", [r["status"] for r in rows]),
            pl.Series("premium_subsidy", amounts, dtype=pl.Decimal(18, 4)),
        ]
    ).write_parquet(path)
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {3: {"premium_subsidy.invalid_money"}}
    assert _staged(run, "premium_subsidy", 2) == [Decimal("1234.50"), Decimal("0.00")]


def _patch_xlsx_numbers(path: Path, numbers: dict[str, str]) -> None:
    """Rewrite cell values in the sheet XML as Excel writes them (17 significant digits);
    the writer libraries round to 16."""
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name) for name in z.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode("utf-8")
    for cell, value in numbers.items():
        sheet, n = re.subn(rf'(<c r="{cell}"[^>]*><v>)[^<]*(</v>)', rf"\g<1>{value}\g<2>", sheet)
        assert n == 1, cell
    parts["xl/worksheets/sheet1.xml"] = sheet.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data)


def test_xlsx_amounts_computed_in_excel_read_as_excel_shows_them(landing, out):
    """Excel computes in binary floating point: a cell showing 1234.56 may hold
    1234.5600000000002. Numbers are read at Excel's 15 significant digits."""
    contract = contract_named("nhsa.settlements")
    rows = make_rows(contract, 60, variants=False)
    rows[0].update(total_cost="0.30", basic_fund_paid="0.10", critical_illness_paid="0.20")
    rows[0].update(medical_assistance_paid="0", out_of_pocket="0")
    rows[1].update(total_cost="1234.56", basic_fund_paid="1234.56", critical_illness_paid="0")
    rows[1].update(medical_assistance_paid="0", out_of_pocket="0")
    path = write_extract(landing, contract, rows, fmt="xlsx")
    # columns: E total_cost, I out_of_pocket; row 2 holds data row 1
    _patch_xlsx_numbers(
        path, {"E2": "0.30000000000000004", "E3": "1234.5600000000002", "I4": "12.345"}
    )
    wb = openpyxl.load_workbook(path, data_only=True)
    assert wb.worksheets[0]["E2"].value == 0.1 + 0.2
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {3: {"out_of_pocket.invalid_money"}}
    assert _staged(run, "total_cost", 2) == [Decimal("0.30"), Decimal("1234.56")]


def test_parquet_float_amounts_read_at_fifteen_significant_digits(landing, out):
    contract = contract_named("nhsa.enrollments")
    rows = make_rows(contract, 60, variants=False)
    path = extract_path(landing, contract, "parquet")
    amounts = [float(r["premium_subsidy"]) for r in rows]
    amounts[:3] = [0.1 + 0.2, 1234.56 + 2e-13, 12.345]
    frame = pl.DataFrame(
        {
            "id_number": [r["id_number"] for r in rows],
            "scheme": [r["scheme"] for r in rows],
            "status": [r["status"] for r in rows],
            "premium_subsidy": amounts,
        }
    )
    frame.write_parquet(path)
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {3: {"premium_subsidy.invalid_money"}}
    assert _staged(run, "premium_subsidy", 2) == [Decimal("0.30"), Decimal("1234.56")]


@pytest.mark.parametrize("fmt", ["parquet", "xlsx"])
def test_a_month_sent_as_a_date_cell_is_that_month(landing, out, fmt):
    """Excel turns a typed `2026-07` into the date 2026-07-01; a typed month column holds the
    first day of the month."""
    contract = contract_named("cdpf.disability_subsidies")
    rows = make_rows(contract, 60, variants=False)
    path = extract_path(landing, contract, fmt)
    firsts = [dt.date.fromisoformat(r["month"] + "-01") for r in rows]
    firsts[1] = dt.date(2026, 6, 1)
    firsts[2] = dt.date(2026, 7, 15)  # a day, not a month
    if fmt == "parquet":
        frame = pl.DataFrame(
            {
                "id_number": [r["id_number"] for r in rows],
                "subsidy_type": [r["subsidy_type"] for r in rows],
                "month": firsts,
                "amount": [r["amount"] for r in rows],
            }
        )
        assert frame.schema["month"] == pl.Date
        frame.write_parquet(path)
    else:
        write_extract(landing, contract, rows, fmt="xlsx")
        wb = openpyxl.load_workbook(path)
        ws = wb.worksheets[0]
        for i, day in enumerate(firsts, start=2):
            ws.cell(i, 3).value = dt.datetime.combine(day, dt.time())
            ws.cell(i, 3).number_format = "yyyy-mm"
        wb.save(path)
    run = run_gate(contract, landing, out)
    assert run.result.status == gate.PASSED
    assert run.reasons_by_row() == {2: {"month.outside_quarter"}, 3: {"month.invalid_month"}}
    assert _staged(run, "month", 1) == [firsts[0]]
