"""Every bad input a province sends (issue 13, §2): a generated quarter with one corruption per
case, named as a sentence.

The quarter (`test` scale, 2026Q2 then 2026Q3 with the departments' feedback) is run clean once
through the quarterly job. Each case then corrupts one file of 2026Q3 in a copy of the landing
folder, gates that extract again (with Great Expectations, as the extract step does) into a copy
of the clean outputs, and evaluates the rules again. It asserts:
- the extract's status, and the exit status `safetynet run` would give (1 only when the registry
  or the roster did not pass: spec README, command line);
- every message is one line naming the file (and the column or line where there is one), with
  no traceback, in the result and in the log;
- received = accepted + quarantined = the rows really in the file (0 for a file that cannot be
  read at all: extracts.md §2, Accounting);
- the warnings of every rule that does not read the extract are the clean run's, and the rules
  that read a failed extract are not evaluated.
Two cases also go through `safetynet run` itself, and the Dagster event log is read for
tracebacks. What each case decides where the spec is silent: docs/gate.md.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance

from pipelines.core import contracts
from pipelines.core.layout import Landing, Outputs
from pipelines.core.pseudonym import DEMO_KEY
from pipelines.core.quarters import Quarter
from pipelines.gate import accounting, stage
from pipelines.gate.kinds import MAX_TEXT_CHARS
from pipelines.generate import generate
from pipelines.orchestration import cli
from pipelines.policy.catalogue import catalogue
from pipelines.policy.stage import evaluate_quarter

Q2, Q3 = Quarter(2026, 2), Quarter(2026, 3)


@dataclass
class Clean:
    landing: Path
    out: Path
    warnings: pl.DataFrame
    feedback: Path  # one department's feedback file of 2026Q3


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> Clean:
    root = tmp_path_factory.mktemp("bad-input")
    landing, out = root / "landing", root / "out"
    generate(landing, "test", [Q2, Q3], seed=5)
    with pytest.MonkeyPatch.context() as env:  # the module's fixture runs before conftest's key
        env.setenv("SAFETYNET_PSEUDONYM_KEY", DEMO_KEY)
        assert cli.run(landing, out, [Q2, Q3], echo=lambda *_: None) == 0
    warnings = pl.read_parquet(Outputs(out).quarter(Q3).personal_warnings)
    feedback = sorted((landing / str(Q3)).glob("*/feedback.csv"))
    assert warnings.height > 20 and feedback
    return Clean(landing, out, warnings, feedback[0])


@dataclass
class Bad:
    """What a corruption did: the extract it hit and the rows really in its file now."""

    department: str
    extract: str
    rows_in_file: int


@dataclass
class Gated:
    result: accounting.ExtractResult
    logged: list[str]
    exit_status: int
    rule_status: dict[str, str]
    warnings: pl.DataFrame


class _Logged(logging.Handler):
    def __init__(self):
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def _data_rows(path: Path, encoding: str = "utf-8-sig") -> int:
    """Data rows of a well-formed CSV (records with a value), as a reader would count them."""
    with path.open(encoding=encoding, newline="") as f:
        return sum(1 for row in list(csv.reader(f))[1:] if any(row))


def _lines(path: Path) -> int:
    """Data lines of a CSV, blank ones left out."""
    return sum(1 for line in path.read_bytes().splitlines()[1:] if line.strip())


def _relist(folder: Path, name: str, **entry) -> None:
    """The department's manifest, if it has one, updated for a changed file: its hash as it now
    is (so that the case's one corruption is the only thing wrong), and any `entry` fields."""
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return
    doc = json.loads(manifest.read_text(encoding="utf-8"))
    listed = doc["files"][name]
    listed["sha256"] = hashlib.sha256((folder / name).read_bytes()).hexdigest()
    listed.update(entry)
    manifest.write_text(json.dumps(doc), encoding="utf-8")


def run_case(clean: Clean, tmp_path: Path, corrupt: Callable[[Path], Bad]) -> tuple[Bad, Gated]:
    landing, out = tmp_path / "landing", tmp_path / "out"
    shutil.copytree(clean.landing / str(Q3), landing / str(Q3), symlinks=True)
    for part in (str(Q2), str(Q3), "gx"):
        shutil.copytree(clean.out / part, out / part, symlinks=True)
    bad = corrupt(landing / str(Q3))
    contract = (
        contracts.feedback_contract()
        if bad.extract == "feedback"
        else contracts.all_contracts()[(bad.department, bad.extract)]
    )
    handler = _Logged()
    log = logging.getLogger(f"bad-input.{tmp_path.name}")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        if bad.extract == "feedback":
            (result,) = [
                r
                for r in stage.gate_feedback(landing, out, Q3, render_data_docs=False, log=log)
                if r.department == bad.department
            ]
        else:
            result = stage.gate_extract(
                landing, out, contract, Q3, render_data_docs=False, log=log
            ).result
    finally:
        log.removeHandler(handler)
    results = accounting.load_results(out, str(Q3))
    done = evaluate_quarter(out, Q3, DEMO_KEY.encode())
    runs = done.evaluation.rule_runs
    return bad, Gated(
        result,
        handler.lines,
        1 if accounting.core_failures(results) else 0,
        dict(zip(runs["rule_id"], runs["status"], strict=True)),
        done.evaluation.warnings,
    )


def assert_handled(
    clean: Clean,
    bad: Bad,
    gated: Gated,
    *,
    status: str,
    says: tuple[str, ...] = (),
    reason: str | None = None,
    exit_status: int = 0,
) -> None:
    r = gated.result
    assert r.status == status, r.failure_reasons
    assert gated.exit_status == exit_status
    assert r.rows_received == r.rows_accepted + r.rows_quarantined == bad.rows_in_file
    messages = [*r.failure_reasons, *gated.logged]
    for m in messages:
        assert "\n" not in m and "Traceback" not in m and "internal error" not in m, m
    if status == "FAILED":
        assert r.rows_accepted == 0
        named = [m for m in r.failure_reasons if all(s in m for s in says)]
        assert named, f"no message says {says}: {r.failure_reasons}"
    if reason is not None:
        assert r.reason_rows.get(reason, 0) >= (1 if status == "PASSED" else bad.rows_in_file)
    hit = f"{bad.department}/{bad.extract}"
    reads = {rule.rule_id for rule in catalogue() if hit in rule.reads}
    for rule in catalogue():
        if rule.rule_id in reads:
            if status != "PASSED":
                assert gated.rule_status[rule.rule_id] == "NOT_EVALUATED", rule.rule_id
            continue
        # the same warnings, to the same department and county; a household's evidence lists its
        # members' incomes and costs from whatever arrived, so it is not compared (policy.md §2)
        same = ["warning_key", "subject_type", "id_number", "household_id", "county_code"]
        mine = gated.warnings.filter(pl.col("rule_id") == rule.rule_id).select(same)
        theirs = clean.warnings.filter(pl.col("rule_id") == rule.rule_id).select(same)
        assert mine.sort(same).equals(theirs.sort(same)), f"{rule.rule_id} changed by {hit}"


# --- the cases: each corrupts one file of the quarter ----------------------------------------


def students(q: Path) -> Path:
    return q / "moe" / "students.csv"


def employment(q: Path) -> Path:
    return q / "hrss" / "employment.csv"  # hrss sends a manifest


def test_a_csv_cut_mid_row_fails_naming_the_line_and_keeps_every_row(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.write_bytes(p.read_bytes()[:-20])  # inside the last row
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "ends inside line", "cut in transit")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.truncated")


def test_an_empty_file_fails_with_nothing_received(clean, tmp_path):
    def corrupt(q):
        students(q).write_bytes(b"")
        return Bad("moe", "students", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="FAILED", says=("moe/students.csv", "no header"))


def test_a_header_alone_fails_with_no_data_rows(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.write_bytes(p.read_bytes().split(b"\n")[0] + b"\n")
        return Bad("moe", "students", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="FAILED", says=("moe/students.csv", "no data rows"))


def test_a_utf16_file_fails_as_undecodable_naming_utf16(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.write_bytes(p.read_text(encoding="utf-8").encode("utf-16"))
        return Bad("moe", "students", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "UTF-16", "expected UTF-8")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def _with_chinese(path: Path, column: str) -> str:
    """The file's text with Chinese in a free-text column (a department's own wording)."""
    frame = pl.read_csv(path, infer_schema=False)
    frame = frame.with_columns((pl.lit("单位") + pl.col(column)).alias(column))
    buffer = io.StringIO()
    frame.write_csv(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("written", "declared", "says"),
    [
        ("gb18030", "utf-8", ("hrss/employment.csv", "declares utf-8", "GB18030")),
        ("utf-8", "GBK", ("hrss/employment.csv", "declares GBK", "UTF-8")),
        ("gb18030", "gb18030", None),
    ],
    ids=["gb18030-declared-utf8", "utf8-declared-gbk", "as-declared"],
)
def test_a_file_not_in_the_encoding_its_manifest_declares_fails_and_keeps_every_row(
    clean, tmp_path, written, declared, says
):
    """GB18030 where the manifest declares UTF-8 and the reverse fail; a file as declared
    passes."""

    def corrupt(q):
        p = employment(q)
        p.write_bytes(_with_chinese(p, "employer_id").encode(written))
        _relist(p.parent, p.name, encoding=declared)
        return Bad("hrss", "employment", _data_rows(p, written))

    bad, gated = run_case(clean, tmp_path, corrupt)
    if says is None:
        assert_handled(clean, bad, gated, status="PASSED")
    else:
        reason = "file.encoding_mismatch"
        assert_handled(clean, bad, gated, status="FAILED", says=says, reason=reason)


def test_nul_bytes_fail_naming_the_offset_and_line_and_keep_every_row(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        data = bytearray(p.read_bytes())
        data[data.index(b"\n", 200) - 3] = 0
        p.write_bytes(bytes(data))
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "NUL byte at offset", "line")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.nul_bytes")


def test_an_unbalanced_quote_fails_naming_its_line_and_every_line_is_received(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        lines = p.read_bytes().split(b"\n")
        lines[5] = b'"' + lines[5]
        p.write_bytes(b"\n".join(lines))
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "opened on line 6", "never closed")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.unbalanced_quote")


def test_an_embedded_newline_in_a_quoted_field_is_one_row(clean, tmp_path):
    def with_break(q):
        p = students(q)
        rows = list(csv.reader(p.read_text(encoding="utf-8").splitlines()))
        rows[5][2] = rows[5][2][:4] + "\n" + rows[5][2][4:]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        p.write_text(buffer.getvalue(), encoding="utf-8")
        return Bad("moe", "students", len(rows) - 1)

    bad, gated = run_case(clean, tmp_path, with_break)
    # one row, whose school code now holds a line break: that row alone is quarantined
    assert_handled(clean, bad, gated, status="PASSED")
    assert gated.result.rows_quarantined >= 1


def test_another_delimiter_fails_naming_the_missing_columns(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.write_bytes(p.read_bytes().replace(b",", b";"))
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "column id_number is missing")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.missing_column")


def test_a_missing_required_column_fails_naming_it(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        pl.read_csv(p, infer_schema=False).drop("stage").write_csv(p)
        return Bad("moe", "students", _data_rows(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "column stage is missing")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.missing_column")


def test_an_extra_column_and_reordered_columns_pass_with_the_extra_reported(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        frame = pl.read_csv(p, infer_schema=False).with_columns(pl.lit("x").alias("备注"))
        frame.select(["status", "备注", "school_code", "id_number", "stage"]).write_csv(p)
        return Bad("moe", "students", frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED")
    assert gated.result.extra_columns == ["备注"]


def test_a_duplicated_header_fails_naming_the_column(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        lines = p.read_bytes().split(b"\n")
        p.write_bytes(
            b"\n".join(
                line + (b",stage" if i == 0 else b",X") if line else line
                for i, line in enumerate(lines)
            )
        )
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "column stage appears twice")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.duplicate_column")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ("rows", ("hrss/employment.csv", "data rows read, the manifest says")),
        ("sha256", ("hrss/employment.csv", "sha256 is", "the manifest says")),
        ("json", ("hrss/manifest.json", "cannot be read as a manifest")),
        ("dotdot", ("hrss/manifest.json", "'../mps/residents.csv'", "by name only")),
        ("slash", ("hrss/manifest.json", "'sub/employment.csv'", "by name only")),
    ],
)
def test_a_manifest_that_lies_or_breaks_fails_the_department_naming_what(
    clean, tmp_path, change, says
):
    """A wrong row count or SHA-256, broken JSON, or a file named with a folder or `..`: the
    transfer cannot be verified, so it is not processed as if complete (extracts.md §2)."""

    def corrupt(q):
        manifest = q / "hrss" / "manifest.json"
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        entry = doc["files"]["employment.csv"]
        if change == "rows":
            entry["rows"] += 1
        elif change == "sha256":
            entry["sha256"] = "0" * 64
        elif change == "dotdot":
            doc["files"]["../mps/residents.csv"] = {"rows": 1, "sha256": "0" * 64}
        elif change == "slash":
            doc["files"]["sub/employment.csv"] = doc["files"].pop("employment.csv")
        text = json.dumps(doc)
        manifest.write_text(text[:-10] if change == "json" else text, encoding="utf-8")
        return Bad("hrss", "employment", _data_rows(employment(q)))

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_two_files_for_one_extract_fail_and_the_rows_of_both_are_received(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        frame = pl.read_csv(p, infer_schema=False)
        frame.write_parquet(p.with_suffix(".parquet"))
        return Bad("moe", "students", 2 * frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students", "2 files", "students.csv", "students.parquet")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.two_files")


def _settlements(q: Path) -> Path:
    return q / "nhsa" / "settlements.parquet"


def test_a_truncated_parquet_fails_as_unreadable_with_nothing_received(clean, tmp_path):
    def corrupt(q):
        p = _settlements(q)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        _relist(p.parent, p.name)
        return Bad("nhsa", "settlements", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("nhsa/settlements.parquet", "cannot be read as PARQUET", "sent again")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_a_parquet_column_of_the_wrong_type_fails_naming_the_column_and_type(clean, tmp_path):
    def corrupt(q):
        p = _settlements(q)
        frame = pl.read_parquet(p).with_columns(pl.lit(True).alias("settled_on"))
        frame.write_parquet(p)
        _relist(p.parent, p.name)
        return Bad("nhsa", "settlements", frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("nhsa/settlements.parquet", "column settled_on is Boolean", "date")
    assert_handled(clean, bad, gated, status="FAILED", says=says, reason="file.column_type")


def _subsidies(q: Path) -> Path:
    return q / "cdpf" / "disability_subsidies.xlsx"


def test_an_xlsx_that_is_not_a_workbook_fails_saying_so(clean, tmp_path):
    def corrupt(q):
        _subsidies(q).write_text("id_number,amount\n", encoding="utf-8")  # a CSV, renamed
        return Bad("cdpf", "disability_subsidies", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("cdpf/disability_subsidies.xlsx", "is not an Excel workbook")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_an_xlsx_that_unpacks_to_gigabytes_is_not_opened(clean, tmp_path):
    """A "zip bomb": 3 GiB of zeros packed into a few megabytes inside the workbook. The gate
    reads the sizes the archive declares and does not open it."""

    def corrupt(q):
        book = zipfile.ZipFile(_subsidies(q), "a", compression=zipfile.ZIP_DEFLATED)
        with book, book.open("xl/worksheets/sheet9.xml", "w", force_zip64=True) as f:
            zeros = b"\0" * (1 << 24)
            for _ in range(3 * 64):
                f.write(zeros)
        return Bad("cdpf", "disability_subsidies", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("cdpf/disability_subsidies.xlsx", "unpacks to 3.0 GiB", "not opened")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_an_impossible_date_quarantines_its_row_only(clean, tmp_path):
    def corrupt(q):
        p = employment(q)
        frame = pl.read_csv(p, infer_schema=False)
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 3)
            .then(pl.lit("2026-02-30"))
            .otherwise(pl.col("started_on"))
            .alias("started_on")
        )
        frame.write_csv(p)
        _relist(p.parent, p.name)
        return Bad("hrss", "employment", frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED", reason="started_on.invalid_date")


def test_full_width_digits_in_an_identity_number_quarantine_its_row(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        lines = p.read_text(encoding="utf-8").split("\n")
        number = lines[3].split(",")[0]
        wide = "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in number[:6])
        lines[3] = lines[3].replace(number, wide + number[6:], 1)
        p.write_text("\n".join(lines), encoding="utf-8")
        return Bad("moe", "students", _data_rows(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED", reason="id_number.format")


def test_a_one_megabyte_field_quarantines_its_row_as_too_long(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        lines = p.read_bytes().split(b"\n")
        fields = lines[4].split(b",")
        fields[2] = b"3" * (1 << 20)
        lines[4] = b",".join(fields)
        p.write_bytes(b"\n".join(lines))
        return Bad("moe", "students", _lines(p))

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED", reason="school_code.too_long")
    assert MAX_TEXT_CHARS < (1 << 20)


def test_an_upper_case_file_name_is_the_extract(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.rename(p.with_name("STUDENTS.CSV"))
        return Bad("moe", "students", _data_rows(p.with_name("STUDENTS.CSV")))

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED")
    assert gated.result.file_name == "STUDENTS.CSV"


def test_a_link_to_a_file_outside_the_landing_folder_is_not_read(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        outside = tmp_path / "elsewhere.csv"
        shutil.copy(p, outside)
        p.unlink()
        p.symlink_to(outside)
        return Bad("moe", "students", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "link to a file outside the landing folder")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_a_folder_where_the_file_should_be_fails_naming_it(clean, tmp_path):
    def corrupt(q):
        p = students(q)
        p.unlink()
        p.mkdir()
        (p / "students.csv").write_text("id_number\n", encoding="utf-8")
        return Bad("moe", "students", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("moe/students.csv", "is a folder, not a file")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_feedback_with_unknown_keys_quarantines_those_answers_only(clean, tmp_path):
    def corrupt(q):
        p = q / clean.feedback.relative_to(clean.landing / str(Q3))
        frame = pl.read_csv(p, infer_schema=False)
        frame = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == 0)
            .then(pl.lit("PNI_EDUCATION_AID-0000000000000000"))
            .otherwise(pl.col("warning_key"))
            .alias("warning_key")
        )
        frame.write_csv(p)
        _relist(p.parent, p.name)
        return Bad(p.parent.name, "feedback", frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert_handled(clean, bad, gated, status="PASSED", reason="warning_key.unknown_warning")


def test_feedback_missing_a_column_fails_naming_it(clean, tmp_path):
    def corrupt(q):
        p = q / clean.feedback.relative_to(clean.landing / str(Q3))
        frame = pl.read_csv(p, infer_schema=False).drop("action")
        frame.write_csv(p)
        _relist(p.parent, p.name)
        return Bad(p.parent.name, "feedback", frame.height)

    bad, gated = run_case(clean, tmp_path, corrupt)
    says = ("feedback.csv", "column action is missing")
    assert_handled(clean, bad, gated, status="FAILED", says=says)


def test_the_registry_missing_leaves_the_quarter_unprocessed_exit_1(clean, tmp_path):
    def corrupt(q):
        (q / "mps" / "residents.csv").unlink()
        return Bad("mps", "residents", 0)

    bad, gated = run_case(clean, tmp_path, corrupt)
    assert gated.result.status == "MISSING" and gated.exit_status == 1
    assert set(gated.rule_status.values()) == {"NOT_EVALUATED"}
    assert gated.warnings.is_empty()


# --- through `safetynet run`: the exit status, the terminal and the Dagster event log ---------


def _event_log_messages(out: Path) -> list[str]:
    instance = DagsterInstance.from_config(str(Outputs(out).dagster_home))
    try:
        runs = instance.get_runs()
        return [e.user_message or "" for r in runs for e in instance.all_logs(r.run_id)]
    finally:
        instance.dispose()


@pytest.mark.parametrize(
    ("corrupt", "exit_status"),
    [("students_cut", 0), ("registry_missing", 1)],
)
def test_safetynet_run_gives_the_specs_exit_status_and_no_traceback(
    clean, tmp_path, corrupt, exit_status
):
    landing, out = tmp_path / "landing", tmp_path / "out"
    shutil.copytree(clean.landing, landing, symlinks=True)
    shutil.copytree(clean.out, out, symlinks=True)  # 2026Q2 as published; 2026Q3 run again
    q = Landing(landing).quarter(str(Q3))
    if corrupt == "students_cut":
        p = students(q)
        p.write_bytes(p.read_bytes()[:-20])
    else:
        (q / "mps" / "residents.csv").unlink()
    said: list[str] = []
    assert cli.run(landing, out, [Q3], echo=said.append) == exit_status
    terminal = "\n".join(said)
    assert "Traceback" not in terminal
    assert ("could not be processed" in terminal) == (exit_status == 1)
    logged = _event_log_messages(out)
    assert logged and not [m for m in logged if "Traceback" in m]
    if exit_status == 0:  # the cut file is in the run's log, in one line
        assert [m for m in logged if "moe/students" in m and "FAILED" in m]
