"""The auditors' quality report (outputs.md §4): self-contained, complete, repeatable, and free of
identity numbers and names — built from the tables of the real gate on two quarters."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.quarters import Quarter
from pipelines.gate import accounting as quality
from pipelines.gate import extract as gate
from pipelines.generate.samples import (
    QUARTER,
    contract_named,
    make_rows,
    plant,
    write_extract,
    write_manifest,
)
from pipelines.policy import evaluate as rules
from pipelines.publish import report as reports
from tests.gating import run_gate

PREVIOUS = QUARTER.previous()
ID_LIKE = re.compile(r"\d{17}[\dXx]|\d{15}")
NOT_EVALUATED_REASON = "reads nhsa/settlements, which FAILED this quarter"
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "area", "base", "col", "source"}


def _gate_quarter(landing: Path, out: Path, quarter: Quarter, *, fail: bool) -> list[dict]:
    """Gate residents, enrollments and settlements (failed by its manifest when `fail`) and
    students (MISSING when `fail`); save the results and write the quarter's tables. Returns
    every row written, for the privacy scan."""
    written: list[dict] = []
    residents = contract_named("mps.residents")
    rows = make_rows(residents, 60, quarter=quarter, seed=quarter.q)
    plant(rows, residents, "id_number.check_character", 7, quarter=quarter)
    write_extract(landing, residents, rows, quarter=quarter)
    written += rows
    enrollments = contract_named("nhsa.enrollments")
    rows = make_rows(enrollments, 40 + quarter.q, quarter=quarter, seed=quarter.q)
    plant(rows, enrollments, "status.codes", 3, quarter=quarter)
    listed = write_extract(landing, enrollments, rows, quarter=quarter)
    written += rows
    settlements = contract_named("nhsa.settlements")
    rows = make_rows(settlements, 30, quarter=quarter, seed=quarter.q)
    path = write_extract(landing, settlements, rows, quarter=quarter)
    written += rows
    if fail:  # the sender says 31 settlements: the transfer is not the one listed
        counts = {listed.name: 40 + quarter.q, path.name: 31}
        write_manifest(path.parent, counts, department="nhsa", quarter=quarter)
    students = contract_named("moe.students")
    if not fail:
        rows = make_rows(students, 20, quarter=quarter, seed=quarter.q)
        write_extract(landing, students, rows, quarter=quarter)
        written += rows
    results = []
    for contract in (residents, enrollments, settlements, students):
        result = run_gate(contract, landing, out, quarter=quarter).result
        quality.save_result(out, result)
        results.append(result)
    quality.write_tables(out, str(quarter), quality.load_results(out, str(quarter)))
    return written


def _policy_tables(out: Path, quarter: Quarter) -> None:
    tables = out / str(quarter) / "tables"
    runs = pl.DataFrame(
        [
            {
                "quarter": str(quarter),
                "rule_id": "PNI_MEDICAL_ASSISTANCE",
                "status": "NOT_EVALUATED",
                "reason": NOT_EVALUATED_REASON,
                "warnings_raised": 0,
                "parameters": "{}",
                "rule_version": "1+abc",
                "window_quarters": None,
            },
            {
                "quarter": str(quarter),
                "rule_id": "NE_DIBAO",
                "status": "EVALUATED",
                "reason": None,
                "warnings_raised": 17,
                "parameters": '{"dibao_standard": 1000}',
                "rule_version": "1+def",
                "window_quarters": 1,
            },
        ],
        schema=rules.RULE_RUN_SCHEMA,
    )
    runs.write_parquet(tables / "rule_runs.parquet")
    findings = pl.DataFrame(
        [
            {
                "quarter": str(quarter),
                "county_code": "350102",
                "finding": "CASE_WITHOUT_ONE_HEAD",
                "count": 3,
            }
        ],
        schema=rules.FINDING_SCHEMA,
    )
    findings.write_parquet(tables / "data_findings.parquet")


@pytest.fixture
def gated(landing: Path, out: Path):
    written = _gate_quarter(landing, out, PREVIOUS, fail=False)
    written += _gate_quarter(landing, out, QUARTER, fail=True)
    _policy_tables(out, QUARTER)
    return out, written


class _Balance(HTMLParser):
    """Every non-void element closed, in order; collects src/href attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [(k, v or "") for k, v in attrs if k in ("src", "href")]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.add(tag)
        self.links += [(k, v or "") for k, v in attrs if k in ("src", "href")]

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]} at {self.getpos()}")
        else:
            self.stack.pop()


def test_the_report_is_written_self_contained_and_well_formed(gated):
    out, _ = gated
    path = reports.write_quality_report(out, str(QUARTER))
    assert path == out / str(QUARTER) / "quality_report.html"
    text = path.read_text(encoding="utf-8")
    parser = _Balance()
    parser.feed(text)
    parser.close()
    assert parser.errors == [] and parser.stack == []
    assert {"html", "head", "body", "style", "table", "svg", "section"} <= parser.tags
    # nothing fetched: no scripts, stylesheets, images or fonts from anywhere
    assert "http://" not in text and "https://" not in text
    assert not {"script", "link", "img", "iframe", "object"} & parser.tags
    assert "@import" not in text and "url(" not in text
    assert all(k == "href" for k, _ in parser.links)
    outside = {v for _, v in parser.links if not v.startswith("#")}
    assert outside == {"../data_docs/index.html"}
    anchors = {v[1:] for _, v in parser.links if v.startswith("#")}
    assert all(f'id="{a}"' in text for a in anchors)
    assert not list(path.parent.glob("*.tmp*"))


def test_the_report_shows_reconciliation_failures_reasons_charts_and_rules(gated):
    out, _ = gated
    text = reports.write_quality_report(out, str(QUARTER)).read_text(encoding="utf-8")
    table = pl.read_parquet(out / str(QUARTER) / "tables" / "extract_quality.parquet")
    by_extract = {r["extract"]: r for r in table.iter_rows(named=True)}
    failed = by_extract["settlements"]
    assert failed["status"] == gate.FAILED and by_extract["students"]["status"] == gate.MISSING
    assert [r["extract"] for r in table.iter_rows(named=True) if r["status"] == gate.FAILED] == [
        "settlements"
    ]
    assert failed["failure_reasons"] and html.escape(failed["failure_reasons"]) in text
    assert "31" in failed["failure_reasons"]
    assert 'class="badge FAILED"' in text and 'class="badge MISSING"' in text
    assert "no file was received for the quarter" in text
    # the reconciliation of every extract and of the total, with its check mark
    for r in table.iter_rows(named=True):
        assert r["rows_received"] == r["rows_accepted"] + r["rows_quarantined"]
        row = (
            f'<td class="n">{r["rows_received"]:,}</td><td class="n">{r["rows_accepted"]:,}</td>'
            f'<td class="n">{r["rows_quarantined"]:,}</td><td><span class="ok">✓</span></td>'
        )
        assert row in text, r["extract"]
        assert r["sha256"] is None or r["sha256"] in text
    total = [int(table[c].sum()) for c in ("rows_received", "rows_accepted", "rows_quarantined")]
    assert total[0] == total[1] + total[2] and f'<td class="n">{total[0]:,}</td>' in text
    assert "全部相符 all add up" in text
    # quarantine reasons, their chart, and accepted rows over both quarters
    assert "id_number.check_character" in text and "status.codes" in text
    assert text.count("<svg") >= 1 + table.height
    assert "Quarantined rows by reason" in text
    assert f"{PREVIOUS}: " in text and f"{QUARTER}: " in text  # bars of both quarters
    # the rule not evaluated, its reason, every rule, the data findings, the Data Docs link
    assert "PNI_MEDICAL_ASSISTANCE" in text and html.escape(NOT_EVALUATED_REASON) in text
    assert "NE_DIBAO" in text and '<td class="n">17</td>' in text
    assert "CASE_WITHOUT_ONE_HEAD" in text and "鼓楼区" in text
    assert 'href="../data_docs/index.html"' in text


def test_a_second_run_gives_the_same_bytes(gated):
    out, _ = gated
    path = reports.write_quality_report(out, str(QUARTER))
    first = path.read_bytes()
    assert reports.write_quality_report(out, str(QUARTER)).read_bytes() == first
    assert str(QUARTER).encode() in first


def test_no_identity_number_or_name_from_the_input_reaches_the_report(gated):
    out, written = gated
    text = reports.write_quality_report(out, str(QUARTER)).read_text(encoding="utf-8")
    previous = reports.write_quality_report(out, str(PREVIOUS)).read_text(encoding="utf-8")
    ids = {m for row in written for v in row.values() for m in ID_LIKE.findall(v or "")}
    names = {row["name"].strip() for row in written if row.get("name", "").strip()}
    assert len(ids) > 100 and len(names) > 20
    for page in (text, previous):
        assert not [i for i in ids if i in page]
        assert not [n for n in names if n in page]
    assert "********" in text  # the masked examples are shown


def test_without_the_policy_stage_the_report_still_renders(landing, out):
    _gate_quarter(landing, out, QUARTER, fail=True)
    text = reports.write_quality_report(out, str(QUARTER)).read_text(encoding="utf-8")
    assert "no rule_runs" in text.lower() or "No rule_runs" in text
    assert "No data_findings table" in text
    assert "<svg" in text


def test_a_quarter_the_gate_has_not_run_is_an_error_naming_the_file(out):
    with pytest.raises(FileNotFoundError, match="extract_quality"):
        reports.write_quality_report(out, str(QUARTER))
