"""The auditors' data-quality report: `<out>/<quarter>/quality_report.html` (outputs.md §4).

One self-contained page per quarter, read from the quarter's tables (outputs.md §2): the
reconciliation of every extract (received = accepted + quarantined), its status and reasons, file,
encoding, contract version and full sha256; the quarantine reasons with masked examples; charts of
quarantined rows by reason and of accepted rows over the quarters so far; the rules not evaluated
and why; the data findings per county. Auditors open it offline, on a desktop with no network:
the CSS is inline and the charts are SVG drawn here, with nothing fetched from anywhere. The one
link out is the relative link to the Great Expectations Data Docs beside the quarter folders.

The page holds no timestamp and orders everything explicitly, so the same tables give the same
bytes (an auditor can hash the report). It adds nothing personal: the tables hold no identity
number or name (the gate masks its examples), and free text is passed through `idnumbers.scrub`
once more before it is shown.
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import polars as pl

from pipelines.core import gbt2260, idnumbers
from pipelines.core.departments import CORE_EXTRACTS, DEPARTMENTS
from pipelines.core.layout import DATA_DOCS_FROM_QUARTER, Outputs, aside
from pipelines.core.quarters import Quarter
from pipelines.policy.catalogue import catalogue

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
STATUS_COLOUR = {"PASSED": "#2e7d32", "FAILED": "#c62828", "MISSING": "#9e9e9e"}
BAR_COLOUR = "#1565c0"
EXAMPLE_SEPARATOR = " | "  # gate.ExtractResult.reason_table

CSS = """
body{font-family:"Noto Sans CJK SC","Source Han Sans SC","Microsoft YaHei","PingFang SC",
"WenQuanYi Micro Hei",sans-serif;margin:24px auto;max-width:1240px;padding:0 16px;color:#212121;
font-size:14px;line-height:1.45}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:19px;border-bottom:2px solid #1565c0;padding-bottom:3px;margin-top:32px}
h3{font-size:15px;margin:18px 0 6px}
p.sub{color:#555;margin:0 0 12px}
nav a{margin-right:14px}
table{border-collapse:collapse;margin:6px 0 12px;width:100%}
th,td{border:1px solid #cfd8dc;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#eceff1;font-weight:600}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;background:#f5f5f5}
code,.hash{font-family:"DejaVu Sans Mono",Consolas,monospace;font-size:12px}
.hash{word-break:break-all}
.badge{display:inline-block;padding:1px 7px;border-radius:9px;color:#fff;font-size:12px;
font-weight:600;white-space:nowrap}
.PASSED,.EVALUATED{background:#2e7d32}.FAILED{background:#c62828}
.MISSING{background:#9e9e9e}.NOT_EVALUATED{background:#ef6c00}
.ok{color:#2e7d32;font-weight:700}.bad{color:#c62828;font-weight:700}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{border:1px solid #cfd8dc;border-radius:6px;padding:10px 14px;min-width:250px;flex:1}
.card .big{font-size:22px;font-weight:700}
.card.alert{border-color:#c62828;background:#ffebee}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(236px,1fr));gap:10px}
.cell{border:1px solid #cfd8dc;border-radius:6px;padding:6px 8px}
.cell .name{font-weight:600}.cell .fig{color:#555;font-size:12px}
.note{color:#555;font-size:13px}
ul.examples{margin:0;padding-left:16px;font-size:12px}
footer{margin-top:36px;color:#555;font-size:12px;border-top:1px solid #cfd8dc;padding-top:8px}
"""


# ------------------------------------------------------------------ small helpers
def _e(value: object) -> str:
    """Every value reaches the page through here (or `_t` for free text)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _t(value: object) -> str:
    """Free text from the tables (reasons, examples): masked once more, then escaped."""
    return "" if value is None else _e(idnumbers.scrub(str(value)))


def _reasons(row: dict) -> str:
    if row["failure_reasons"]:
        return _t(row["failure_reasons"])
    if row["status"] == "MISSING":
        return "未收到文件 no file was received for the quarter"
    return ""


def _n(value: int | None) -> str:
    return "—" if value is None else f"{int(value):,}"


def _badge(status: str | None) -> str:
    s = status or ""
    return f'<span class="badge {_e(s)}">{_e(STATUS_ZH.get(s, ""))} {_e(s)}</span>'


def _dept(department: str) -> str:
    zh = DEPARTMENTS.get(department, "")
    return f"{zh} {department}" if zh else department


def _table(headers: Sequence[tuple[str, bool]], rows: Iterable[str], cls: str = "") -> str:
    """`headers`: (label HTML, numeric?); `rows`: ready `<tr>` strings."""
    head = "".join(f'<th class="n">{h}</th>' if num else f"<th>{h}</th>" for h, num in headers)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>\n{''.join(rows)}</tbody></table>\n"


def _td(value: str, numeric: bool = False) -> str:
    return f'<td class="n">{value}</td>' if numeric else f"<td>{value}</td>"


def _read(path: Path) -> pl.DataFrame | None:
    return pl.read_parquet(path) if path.is_file() else None


def _f(x: float) -> str:
    """SVG coordinates with one decimal, so the bytes do not depend on float noise."""
    return f"{x:.1f}"


def _county_names() -> dict[str, str]:
    names: dict[str, tuple[int, str]] = {}
    for p in gbt2260.periods():
        if p.code not in names or p.end >= names[p.code][0]:
            names[p.code] = (p.end, p.name)
    return {code: name for code, (_, name) in names.items()}


def _rule_names() -> dict[str, str]:
    return {r.rule_id: r.name_zh for r in catalogue()}


# ------------------------------------------------------------------ charts (inline SVG)
def bar_chart_svg(items: Sequence[tuple[str, int]], title: str) -> str:
    """A horizontal bar chart: one bar per (label, value), in the order given."""
    label_w, bar_w, value_w, row_h, top = 300, 560, 90, 17, 4
    width = label_w + bar_w + value_w
    height = top * 2 + row_h * len(items)
    top_value = max((v for _, v in items), default=0) or 1
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" font-size="12">',
        f"<title>{_e(title)}</title>",
    ]
    for i, (label, value) in enumerate(items):
        y = top + i * row_h
        w = max(bar_w * value / top_value, 1.0)
        parts.append(
            f'<text x="{label_w - 8}" y="{_f(y + row_h * 0.68)}" text-anchor="end">'
            f"{_e(label)}</text>"
            f'<rect x="{label_w}" y="{_f(y + 3)}" width="{_f(w)}" height="{row_h - 6}" '
            f'fill="{BAR_COLOUR}"><title>{_e(label)}: {_n(value)}</title></rect>'
            f'<text x="{_f(label_w + w + 6)}" y="{_f(y + row_h * 0.68)}">{_n(value)}</text>'
        )
    parts.append(
        f'<line x1="{label_w}" y1="{top}" x2="{label_w}" y2="{height - top}" stroke="#607d8b"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


def history_svg(points: Sequence[tuple[str, int | None, str | None]], title: str) -> str:
    """Accepted rows per quarter for one extract: (quarter, rows accepted, status) per bar; a
    quarter without a row for the extract is drawn as a grey tick."""
    width, height, left, right, top, bottom = 224, 84, 4, 4, 14, 18
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    slot = plot_w / n
    top_value = max((v or 0 for _, v, _ in points), default=0) or 1
    base = top + plot_h
    parts = [
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title)}" font-size="10">',
        f"<title>{_e(title)}</title>",
        f'<text x="{left}" y="10" fill="#555">max {_n(top_value)}</text>',
    ]
    short = n <= 8
    for i, (quarter, value, status) in enumerate(points):
        x = left + i * slot + slot * 0.15
        w = slot * 0.7
        label = f"{quarter}: {_n(value)} {status or 'no data 无数据'}"
        if value is None:
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(base - 2)}" width="{_f(w)}" height="2" '
                f'fill="#bdbdbd"><title>{_e(label)}</title></rect>'
            )
        else:
            h = max(plot_h * value / top_value, 1.0) if value else 1.0
            colour = STATUS_COLOUR.get(status or "", "#9e9e9e")
            parts.append(
                f'<rect x="{_f(x)}" y="{_f(base - h)}" width="{_f(w)}" height="{_f(h)}" '
                f'fill="{colour}"><title>{_e(label)}</title></rect>'
            )
        if short or i in (0, n - 1):
            text = quarter[2:] if short else quarter
            parts.append(
                f'<text x="{_f(x + w / 2)}" y="{height - 8}" text-anchor="middle">{_e(text)}</text>'
            )
    parts.append(
        f'<line x1="{left}" y1="{_f(base)}" x2="{width - right}" y2="{_f(base)}" stroke="#607d8b"/>'
    )
    parts.append("</svg>")
    return "\n".join(parts)


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
        f'<div class="big ok">✓ 全部相符 all add up</div><div>{_n(quality.height)} 个提取文件 '
        "extracts: received = accepted + quarantined</div>"
        if not off
        else f'<div class="big bad">✗ {len(off)} 个不相符 do not add up</div>'
        f"<div>{_e(', '.join(off))}</div>"
    )
    cards = [
        '<div class="card"><div>提取文件 Extracts</div>'
        f'<div class="big">{_n(quality.height)}</div><div>'
        + " · ".join(f"{_badge(s)} {_n(counts[s])}" for s in ("PASSED", "FAILED", "MISSING"))
        + "</div></div>",
        '<div class="card"><div>接收行 Rows received</div>'
        f'<div class="big">{_n(received)}</div>'
        f"<div>接受 accepted {_n(accepted)} · 隔离 quarantined {_n(quarantined)}</div></div>",
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
            f'<div class="big">{_n(runs.height - not_eval)} / {_n(runs.height)}</div>'
            f"<div>已评估 evaluated · 未评估 not evaluated: {_n(not_eval)}</div></div>"
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
            f"quarter could not be processed: {_e(', '.join(core_down))}</p>"
        )
    attention = [r for r in quality.iter_rows(named=True) if r["status"] != "PASSED"]
    if attention:
        parts.append("<h3>需关注 Needs attention</h3><ul>")
        for r in attention:
            parts.append(
                f"<li>{_badge(r['status'])} <b>{_e(r['department'])}/{_e(r['extract'])}</b>: "
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
            + _td(_e(_dept(r["department"])))
            + _td(f"<b>{_e(r['extract'])}</b>")
            + _td(_badge(r["status"]))
            + _td(_n(r["rows_received"]), True)
            + _td(_n(r["rows_accepted"]), True)
            + _td(_n(r["rows_quarantined"]), True)
            + _td(mark)
            + _td(_reasons(r))
            + "</tr>\n"
        )
    totals = [int(quality[c].sum()) for c in ("rows_received", "rows_accepted", "rows_quarantined")]
    rows.append(
        '<tr class="total"><td colspan="3">合计 Total</td>'
        + "".join(_td(_n(t), True) for t in totals)
        + _td('<span class="ok">✓</span>' if totals[0] == totals[1] + totals[2] else "✗")
        + "<td></td></tr>\n"
    )
    recon = _table(
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
            + _td(f"{_e(r['department'])}/{_e(r['extract'])}")
            + _td(_e(r["file_name"]) or "—")
            + _td(_e(r["file_format"]) or "—")
            + _td(_e(r["encoding"]) or "—")
            + _td(_e(r["contract_version"]))
            + _td(_e(r.get("extra_columns")) or "—")
            + _td(f'<span class="hash">{_e(r["sha256"]) or "—"}</span>')
            + "</tr>\n"
        )
    identity = _table(
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
            '<ul class="examples">' + "".join(f"<li>{_t(x)}</li>" for x in examples) + "</ul>"
            if examples
            else "—"
        )
        rows.append(
            "<tr>"
            + _td(f"{_e(r['department'])}/{_e(r['extract'])}")
            + _td(f"<code>{_e(r['reason'])}</code>")
            + _td(_n(r["rows"]), True)
            + _td(shown)
            + "</tr>\n"
        )
    parts = ['<section id="reasons"><h2>各提取文件的隔离原因 Quarantine reasons per extract</h2>']
    parts.append(
        _table(
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
            f"本季 this quarter {_n(now[0] if now else None)} · 上季 previous "
            f"{_n(before[0] if before else None)}{change}"
        )
        cells.append(
            f'<div class="cell"><div class="name">{_e(d)}/{_e(e)}</div>'
            f"{history_svg(points, f'{d}/{e}: rows accepted per quarter 各季接受行数')}"
            f'<div class="fig">{_e(figures)}</div></div>'
        )
    legend = " ".join(
        f'<span style="color:{c}">■</span> {_e(STATUS_ZH[s])} {_e(s)}'
        for s, c in STATUS_COLOUR.items()
    )
    return (
        '<section id="history"><h2>历季接受行数 Rows accepted over quarters</h2>\n'
        f'<p class="note">{_e(", ".join(quarters))}. 每个提取文件单独刻度 Each chart has its own '
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
    names = _rule_names()
    runs = runs.sort("rule_id")
    skipped = runs.filter(pl.col("status") == "NOT_EVALUATED")
    parts.append("<h3>本季未评估的规则及原因 Rules not evaluated this quarter, and why</h3>")
    if skipped.height == 0:
        parts.append("<p>无 None: every rule was evaluated.</p>")
    else:
        parts.append(
            _table(
                [("规则 Rule", False), ("名称 Name", False), ("原因 Reason", False)],
                (
                    "<tr>"
                    + _td(f"<code>{_e(r['rule_id'])}</code>")
                    + _td(_e(names.get(r["rule_id"], "")))
                    + _td(_t(r["reason"]))
                    + "</tr>\n"
                    for r in skipped.iter_rows(named=True)
                ),
            )
        )
    parts.append("<h3>全部规则 All rules</h3>")
    parts.append(
        _table(
            [
                ("规则 Rule", False),
                ("名称 Name", False),
                ("状态 Status", False),
                ("预警数 Warnings raised", True),
                ("规则版本 Rule version", False),
            ],
            (
                "<tr>"
                + _td(f"<code>{_e(r['rule_id'])}</code>")
                + _td(_e(names.get(r["rule_id"], "")))
                + _td(_badge(r["status"]))
                + _td(_n(r["warnings_raised"]) if r["status"] == "EVALUATED" else "—", True)
                + _td(f"<code>{_e(r['rule_version'])}</code>")
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
    counties = _county_names()
    parts.append(
        '<p class="note">名册与户籍之间的不一致，不是预警 Inconsistencies between the roster and '
        "the registry; findings, not warnings.</p>"
    )
    parts.append(
        _table(
            [
                ("区县代码 County", False),
                ("名称 Name", False),
                ("发现 Finding", False),
                ("数量 Count", True),
            ],
            (
                "<tr>"
                + _td(_e(r["county_code"]))
                + _td(_e(counties.get(r["county_code"] or "", "")))
                + _td(f"{_e(FINDING_ZH.get(r['finding'], ''))} <code>{_e(r['finding'])}</code>")
                + _td(_n(r["count"]), True)
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
        f"<h1>数据质量报告 Data-quality report — {_e(quarter)}</h1>",
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
        f'{DATA_DOCS_LINK}">Great Expectations Data Docs ({_e(DATA_DOCS_LINK)})</a>.</p>'
        "</section>",
        "<footer>"
        f"来源 Sources: {_e(path.relative_to(out).as_posix())}, "
        f"{tables.table('quarantine_reasons').name}"
        f"{', ' + tables.table('rule_runs').name if runs is not None else ''}"
        f"{', ' + tables.table('data_findings').name if findings is not None else ''}; "
        "accepted rows over quarters from each earlier quarter's extract_quality.parquet. "
        "本页不含完整身份证号或姓名，示例已脱敏 No full identity number or name appears on this "
        "page; examples are masked.</footer>",
    ]
    return page(f"数据质量报告 Data-quality report {quarter}", body)


def page(title: str, body: Sequence[str]) -> str:
    """A self-contained page: the report's style inline, no script, nothing fetched."""
    return (
        "<!DOCTYPE html>\n"
        '<html lang="zh-CN">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n"
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


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
