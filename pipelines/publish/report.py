"""The auditors' data-quality report: `<out>/<quarter>/quality_report.html` (outputs.md §4).

One self-contained page per quarter, read from the quarter's tables (outputs.md §2): the
reconciliation of every extract (received = accepted + quarantined), its status and reasons, file,
encoding, contract version and full sha256; the quarantine reasons with masked examples; charts of
quarantined rows by reason and of accepted rows over the quarters so far; the rules not evaluated
and why; the data findings per county. Auditors open it offline, on a desktop with no network:
the CSS is inline and the charts are SVG (`page.py`, the kit it shares with the what-if page),
with nothing fetched from anywhere. The one link out is the relative link to the Great
Expectations Data Docs beside the quarter folders.

The page holds no timestamp and orders everything explicitly, so the same tables give the same
bytes (an auditor can hash the report). It adds nothing personal: the tables hold no identity
number or name (the gate masks its examples), and free text is passed through `idnumbers.scrub`
once more before it is shown.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from pipelines.core.departments import CORE_EXTRACTS, DEPARTMENTS
from pipelines.core.layout import DATA_DOCS_FROM_QUARTER, Outputs, aside
from pipelines.core.quarters import Quarter
from pipelines.publish.page import (
    STATUS_COLOUR,
    badge,
    bar_chart_svg,
    county_names,
    escape,
    escape_free_text,
    format_count,
    history_svg,
    page,
    rule_names,
    table,
    table_cell,
)

DATA_DOCS_LINK = DATA_DOCS_FROM_QUARTER  # <out>/data_docs/index.html, seen from <out>/<quarter>/

STATUS_ZH = {
    "PASSED": "通过",
    "FAILED": "未通过",
    "MISSING": "缺失",
    "EVALUATED": "已评估",
    "NOT_EVALUATED": "未评估",
}
FINDING_ZH = {  # sql/fct_data_findings.sql
    "ROSTER_PERSON_NOT_IN_REGISTRY": "名册人员不在户籍库",
    "CASE_WITHOUT_ONE_HEAD": "案件户主不是恰好一人",
    "SINGLE_PERSON_CASE_WITH_SEVERAL_ROWS": "单人保案件有多行",
}
EXAMPLE_SEPARATOR = " | "  # gate.ExtractResult.reason_table


# ------------------------------------------------------------------ small helpers
def _reasons(row: dict) -> str:
    if row["failure_reasons"]:
        return escape_free_text(row["failure_reasons"])
    if row["status"] == "MISSING":
        return "未收到文件 no file was received for the quarter"
    return ""


def _status_badge(status: str | None) -> str:
    return badge(status, STATUS_ZH.get(status or "", ""))


def _dept(department: str) -> str:
    zh = DEPARTMENTS.get(department, "")
    return f"{zh} {department}" if zh else department


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.is_file() else None


# ------------------------------------------------------------------ sections
def _quarters_upto(out: Path, quarter: Quarter) -> list[str]:
    outputs = Outputs(out)
    return [
        q
        for q in outputs.quarters()
        if Quarter.parse(q) <= quarter and outputs.quarter(q).table("extract_quality").is_file()
    ]


def _summary(quality: pl.DataFrame, runs: pl.DataFrame | None) -> str:
    status = quality["status"].to_list()
    counts = {s: status.count(s) for s in ("PASSED", "FAILED", "MISSING")}
    received, accepted, quarantined = (
        int(quality[c].sum()) for c in ("rows_received", "rows_accepted", "rows_quarantined")
    )
    off = [
        f"{r['department']}/{r['extract']}"
        for r in quality.iter_rows(named=True)
        if r["rows_received"] != r["rows_accepted"] + r["rows_quarantined"]
    ]
    recon = (
        '<div class="big ok">✓ 全部相符 all add up</div>'
        f"<div>{format_count(quality.height)} 个提取文件 "
        "extracts: received = accepted + quarantined</div>"
        if not off
        else f'<div class="big bad">✗ {len(off)} 个不相符 do not add up</div>'
        f"<div>{escape(', '.join(off))}</div>"
    )
    cards = [
        '<div class="card"><div>提取文件 Extracts</div>'
        f'<div class="big">{format_count(quality.height)}</div><div>'
        + " · ".join(
            f"{_status_badge(s)} {format_count(counts[s])}" for s in ("PASSED", "FAILED", "MISSING")
        )
        + "</div></div>",
        '<div class="card"><div>接收行 Rows received</div>'
        f'<div class="big">{format_count(received)}</div>'
        f"<div>接受 accepted {format_count(accepted)} · "
        f"隔离 quarantined {format_count(quarantined)}</div></div>",
        f'<div class="card{" alert" if off else ""}"><div>对账 Reconciliation</div>{recon}</div>',
    ]
    if runs is None:
        cards.append(
            '<div class="card"><div>规则 Rules</div><div class="big">—</div>'
            "<div>政策阶段未运行 the policy stage has not run (no rule_runs)</div></div>"
        )
    else:
        not_eval = runs.filter(pl.col("status") == "NOT_EVALUATED").height
        cards.append(
            f'<div class="card{" alert" if not_eval else ""}"><div>规则 Rules</div>'
            f'<div class="big">{format_count(runs.height - not_eval)} / '
            f"{format_count(runs.height)}</div>"
            f"<div>已评估 evaluated · 未评估 not evaluated: {format_count(not_eval)}</div></div>"
        )
    parts = ['<section id="summary"><h2>摘要 Summary</h2>', '<div class="cards">']
    parts += cards
    parts.append("</div>")
    by_key = {(r["department"], r["extract"]): r for r in quality.iter_rows(named=True)}
    # the gate writes a row for every contract, so a core extract that is absent from the table
    # is a partial table (a test, a single extract re-run), not a failure to report
    core_down = [
        f"{d}/{e}"
        for d, e in CORE_EXTRACTS
        if (d, e) in by_key and by_key[(d, e)]["status"] != "PASSED"
    ]
    if core_down:
        parts.append(
            '<p class="bad">核心提取文件未通过，本季无法处理 A core extract did not pass; the '
            f"quarter could not be processed: {escape(', '.join(core_down))}</p>"
        )
    attention = [r for r in quality.iter_rows(named=True) if r["status"] != "PASSED"]
    if attention:
        parts.append("<h3>需关注 Needs attention</h3><ul>")
        for r in attention:
            parts.append(
                f"<li>{_status_badge(r['status'])} "
                f"<b>{escape(r['department'])}/{escape(r['extract'])}</b>: "
                f"{_reasons(r) or '—'}</li>"
            )
        parts.append("</ul>")
    parts.append("</section>")
    return "\n".join(parts)


def _extracts(quality: pl.DataFrame) -> tuple[str, str]:
    """The reconciliation section and the files-and-hashes section."""
    rows = []
    for r in quality.iter_rows(named=True):
        adds_up = r["rows_received"] == r["rows_accepted"] + r["rows_quarantined"]
        mark = '<span class="ok">✓</span>' if adds_up else '<span class="bad">✗</span>'
        rows.append(
            "<tr>"
            + table_cell(escape(_dept(r["department"])))
            + table_cell(f"<b>{escape(r['extract'])}</b>")
            + table_cell(_status_badge(r["status"]))
            + table_cell(format_count(r["rows_received"]), True)
            + table_cell(format_count(r["rows_accepted"]), True)
            + table_cell(format_count(r["rows_quarantined"]), True)
            + table_cell(mark)
            + table_cell(_reasons(r))
            + "</tr>\n"
        )
    totals = [int(quality[c].sum()) for c in ("rows_received", "rows_accepted", "rows_quarantined")]
    rows.append(
        '<tr class="total"><td colspan="3">合计 Total</td>'
        + "".join(table_cell(format_count(t), True) for t in totals)
        + table_cell('<span class="ok">✓</span>' if totals[0] == totals[1] + totals[2] else "✗")
        + "<td></td></tr>\n"
    )
    recon = table(
        [
            ("部门 Department", False),
            ("提取 Extract", False),
            ("状态 Status", False),
            ("接收 Received", True),
            ("接受 Accepted", True),
            ("隔离 Quarantined", True),
            ("对账 Adds up", False),
            ("未通过原因 Failure reasons", False),
        ],
        rows,
    )
    files = []
    for r in quality.iter_rows(named=True):
        files.append(
            "<tr>"
            + table_cell(f"{escape(r['department'])}/{escape(r['extract'])}")
            + table_cell(escape(r["file_name"]) or "—")
            + table_cell(escape(r["file_format"]) or "—")
            + table_cell(escape(r["encoding"]) or "—")
            + table_cell(escape(r["contract_version"]))
            + table_cell(escape(r.get("extra_columns")) or "—")
            + table_cell(f'<span class="hash">{escape(r["sha256"]) or "—"}</span>')
            + "</tr>\n"
        )
    identity = table(
        [
            ("提取 Extract", False),
            ("文件 File", False),
            ("格式 Format", False),
            ("编码 Encoding", False),
            ("合同版本 Contract", False),
            ("额外列 Extra columns", False),
            ("SHA-256", False),
        ],
        files,
    )
    return (
        '<section id="extracts"><h2>各提取文件对账 Reconciliation per extract</h2>\n'
        '<p class="note">接收 = 接受 + 隔离 (received = accepted + quarantined): every row '
        "received is either staged for the policy engine or quarantined and sent back.</p>\n"
        f"{recon}</section>",
        '<section id="files"><h2>文件、编码、合同版本与哈希 '
        "Files, encodings, contract versions and hashes</h2>\n"
        '<p class="note">SHA-256 of the file as received; compare with the sender\'s manifest or '
        "copy.</p>\n"
        f"{identity}</section>",
    )


def _quarantine(reasons: pl.DataFrame | None) -> tuple[str, str]:
    """The chart of quarantined rows by reason, and the reasons per extract with examples."""
    parts = ['<section id="quarantine"><h2>隔离原因 Quarantine reasons</h2>']
    if reasons is None or reasons.height == 0:
        parts.append("<p>本季无隔离行 No rows were quarantined this quarter.</p></section>")
        return "\n".join(parts), ""
    totals = (
        reasons.group_by("reason")
        .agg(pl.col("rows").sum())
        .sort(["rows", "reason"], descending=[True, False])
    )
    items = [(r, int(n)) for r, n in totals.iter_rows()]
    parts.append(
        '<h3>本季各原因隔离行数 Quarantined rows by reason, all extracts</h3>\n<p class="note">'
        "一行可有多个原因，按每个原因各计一次 A row with several reasons counts under each.</p>"
    )
    parts.append(bar_chart_svg(items, "Quarantined rows by reason 各原因隔离行数"))
    parts.append(
        '<p class="note"><a href="#reasons">各提取文件的原因与示例 Reasons per extract, with '
        "examples</a></p></section>"
    )
    chart = "\n".join(parts)
    rows = []
    ordered = reasons.sort("department", "extract", "reason")
    for r in ordered.iter_rows(named=True):
        examples = [x for x in (r["examples"] or "").split(EXAMPLE_SEPARATOR) if x]
        shown = (
            '<ul class="examples">'
            + "".join(f"<li>{escape_free_text(x)}</li>" for x in examples)
            + "</ul>"
            if examples
            else "—"
        )
        rows.append(
            "<tr>"
            + table_cell(f"{escape(r['department'])}/{escape(r['extract'])}")
            + table_cell(f"<code>{escape(r['reason'])}</code>")
            + table_cell(format_count(r["rows"]), True)
            + table_cell(shown)
            + "</tr>\n"
        )
    parts = ['<section id="reasons"><h2>各提取文件的隔离原因 Quarantine reasons per extract</h2>']
    parts.append(
        table(
            [
                ("提取 Extract", False),
                ("原因 Reason", False),
                ("行数 Rows", True),
                ("示例（已脱敏）Examples (masked)", False),
            ],
            rows,
        )
    )
    parts.append("</section>")
    return chart, "\n".join(parts)


def _history(out: Path, quarter: str) -> str:
    quarters = _quarters_upto(out, Quarter.parse(quarter))
    outputs = Outputs(out)
    frames = [pl.read_parquet(outputs.quarter(q).table("extract_quality")) for q in quarters]
    seen: dict[tuple[str, str, str], tuple[int, str]] = {}
    for frame in frames:
        for r in frame.iter_rows(named=True):
            key = (r["quarter"], r["department"], r["extract"])
            seen[key] = (int(r["rows_accepted"]), r["status"])
    extracts = sorted({(d, e) for _, d, e in seen})
    cells = []
    for d, e in extracts:
        points = []
        for q in quarters:
            got = seen.get((q, d, e))
            points.append((q, got[0] if got else None, got[1] if got else None))
        now = seen.get((quarter, d, e))
        before = seen.get((str(Quarter.parse(quarter).previous()), d, e))
        change = ""
        if now and before and before[0]:
            change = f" ({(now[0] - before[0]) / before[0]:+.1%})"
        figures = (
            f"本季 this quarter {format_count(now[0] if now else None)} · 上季 previous "
            f"{format_count(before[0] if before else None)}{change}"
        )
        cells.append(
            f'<div class="cell"><div class="name">{escape(d)}/{escape(e)}</div>'
            f"{history_svg(points, f'{d}/{e}: rows accepted per quarter 各季接受行数')}"
            f'<div class="fig">{escape(figures)}</div></div>'
        )
    legend = " ".join(
        f'<span style="color:{c}">■</span> {escape(STATUS_ZH[s])} {escape(s)}'
        for s, c in STATUS_COLOUR.items()
    )
    return (
        '<section id="history"><h2>历季接受行数 Rows accepted over quarters</h2>\n'
        f'<p class="note">{escape(", ".join(quarters))}. '
        "每个提取文件单独刻度 Each chart has its own "
        f"scale. {legend}</p>\n"
        f'<div class="grid">\n' + "\n".join(cells) + "\n</div></section>"
    )


def _rules(runs: pl.DataFrame | None) -> str:
    parts = ['<section id="rules"><h2>规则运行 Rules</h2>']
    if runs is None:
        parts.append(
            "<p>本季尚无规则运行记录 No rule_runs table for this quarter: the policy stage has "
            "not run (the gate can run without it).</p></section>"
        )
        return "\n".join(parts)
    names = rule_names()
    runs = runs.sort("rule_id")
    skipped = runs.filter(pl.col("status") == "NOT_EVALUATED")
    parts.append("<h3>本季未评估的规则及原因 Rules not evaluated this quarter, and why</h3>")
    if skipped.height == 0:
        parts.append("<p>无 None: every rule was evaluated.</p>")
    else:
        parts.append(
            table(
                [("规则 Rule", False), ("名称 Name", False), ("原因 Reason", False)],
                (
                    "<tr>"
                    + table_cell(f"<code>{escape(r['rule_id'])}</code>")
                    + table_cell(escape(names.get(r["rule_id"], "")))
                    + table_cell(escape_free_text(r["reason"]))
                    + "</tr>\n"
                    for r in skipped.iter_rows(named=True)
                ),
            )
        )
    parts.append("<h3>全部规则 All rules</h3>")
    parts.append(
        table(
            [
                ("规则 Rule", False),
                ("名称 Name", False),
                ("状态 Status", False),
                ("预警数 Warnings raised", True),
                ("规则版本 Rule version", False),
            ],
            (
                "<tr>"
                + table_cell(f"<code>{escape(r['rule_id'])}</code>")
                + table_cell(escape(names.get(r["rule_id"], "")))
                + table_cell(_status_badge(r["status"]))
                + table_cell(
                    format_count(r["warnings_raised"]) if r["status"] == "EVALUATED" else "—", True
                )
                + table_cell(f"<code>{escape(r['rule_version'])}</code>")
                + "</tr>\n"
                for r in runs.iter_rows(named=True)
            ),
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


def _findings(findings: pl.DataFrame | None) -> str:
    parts = ['<section id="findings"><h2>数据发现（按区县）Data findings per county</h2>']
    if findings is None:
        parts.append(
            "<p>本季尚无数据发现表 No data_findings table for this quarter: the policy stage has "
            "not run.</p></section>"
        )
        return "\n".join(parts)
    if findings.height == 0:
        parts.append("<p>无 None this quarter.</p></section>")
        return "\n".join(parts)
    counties = county_names()
    parts.append(
        '<p class="note">名册与户籍之间的不一致，不是预警 Inconsistencies between the roster and '
        "the registry; findings, not warnings.</p>"
    )
    parts.append(
        table(
            [
                ("区县代码 County", False),
                ("名称 Name", False),
                ("发现 Finding", False),
                ("数量 Count", True),
            ],
            (
                "<tr>"
                + table_cell(escape(r["county_code"]))
                + table_cell(escape(counties.get(r["county_code"] or "", "")))
                + table_cell(
                    f"{escape(FINDING_ZH.get(r['finding'], ''))} "
                    f"<code>{escape(r['finding'])}</code>"
                )
                + table_cell(format_count(r["count"]), True)
                + "</tr>\n"
                for r in findings.sort("county_code", "finding").iter_rows(named=True)
            ),
        )
    )
    parts.append("</section>")
    return "\n".join(parts)


# ------------------------------------------------------------------ the page
def render_quality_report(out: Path, quarter: str) -> str:
    """The report's HTML for `quarter`, from `<out>/<quarter>/tables/`."""
    out = Path(out)
    quarter = str(Quarter.parse(quarter))
    tables = Outputs(out).quarter(quarter)
    path = tables.table("extract_quality")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no extract_quality table for {quarter}; run the gate for the quarter first"
        )
    quality = pl.read_parquet(path).sort("department", "extract")
    reasons = _read(tables.table("quarantine_reasons"))
    runs = _read(tables.table("rule_runs"))
    findings = _read(tables.table("data_findings"))
    reconciliation, files = _extracts(quality)
    chart, per_extract = _quarantine(reasons)
    nav = " ".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("summary", "摘要 Summary"),
            ("extracts", "对账 Reconciliation"),
            ("quarantine", "隔离原因 Quarantine"),
            ("history", "历季 Over quarters"),
            ("rules", "规则 Rules"),
            ("reasons", "原因明细 Reasons per extract"),
            ("files", "文件与哈希 Files"),
            ("findings", "数据发现 Findings"),
        )
    )
    body = [
        f"<h1>数据质量报告 Data-quality report — {escape(quarter)}</h1>",
        '<p class="sub">低收入人口动态监测 safetynet · 供审计使用 for auditors · '
        "各部门本季提取文件是否完整、有效，每一接收行是否都有去向 Was each department's data "
        "complete and valid, and is every received row accounted for?</p>",
        f'<nav>{nav} <a href="{DATA_DOCS_LINK}">Great Expectations Data Docs</a></nav>',
        _summary(quality, runs),
        reconciliation,
        chart,
        _history(out, quarter),
        _rules(runs),
        per_extract,
        files,
        _findings(findings),
        '<section id="data-docs"><h2>校验明细 Validation details</h2>'
        f'<p>每个提取文件每季一次校验 One validation per extract per quarter: <a href="'
        f'{DATA_DOCS_LINK}">Great Expectations Data Docs ({escape(DATA_DOCS_LINK)})</a>.</p>'
        "</section>",
        "<footer>"
        f"来源 Sources: {escape(path.relative_to(out).as_posix())}, "
        f"{tables.table('quarantine_reasons').name}"
        f"{', ' + tables.table('rule_runs').name if runs is not None else ''}"
        f"{', ' + tables.table('data_findings').name if findings is not None else ''}; "
        "accepted rows over quarters from each earlier quarter's extract_quality.parquet. "
        "本页不含完整身份证号或姓名，示例已脱敏 No full identity number or name appears on this "
        "page; examples are masked.</footer>",
    ]
    return page(f"数据质量报告 Data-quality report {quarter}", body)


def write_quality_report(out: Path, quarter: str) -> Path:
    """Write `<out>/<quarter>/quality_report.html` (written aside, then moved into place)."""
    out = Path(out)
    quarter = str(Quarter.parse(quarter))
    text = render_quality_report(out, quarter)
    path = Outputs(out).quarter(quarter).report
    tmp = aside(path)
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)
    return path
