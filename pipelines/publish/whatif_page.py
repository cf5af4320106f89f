"""The what-if page `<out>/whatif/<name>/whatif.html`: a reform against a published quarter, for
analysts and the finance department, built with the quality report's page kit (`page.py`) and as
self-contained (inline CSS and SVG, no script, no address outside the page).

From `changes.parquet` and `run.parquet` only: counts, no person and no key.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl

from pipelines.core.layout import Outputs, aside
from pipelines.publish.page import (
    bar_chart_svg,
    county_names,
    escape,
    escape_free_text,
    format_count,
    page,
    rule_names,
    table,
    table_cell,
)


def _yuan(value) -> str:
    return "—" if value is None else f"{value:,.2f}"


def render_whatif_page(out: Path, name: str) -> str:
    outputs = Outputs(out)
    run = pl.read_parquet(outputs.whatif_runs_table(name)).row(0, named=True)
    changes = pl.read_parquet(outputs.whatif_changes(name))
    counties, rules = county_names(), rule_names()
    cards = [
        ("现行参数下预警 Warnings, baseline", format_count(run["baseline_warnings"])),
        ("改革参数下预警 Warnings, reform", format_count(run["reform_warnings"])),
        ("新增 Newly flagged", format_count(run["newly_flagged"])),
        ("不再预警 No longer flagged", format_count(run["no_longer_flagged"])),
        ("估计每月费用变化 Monthly cost change (yuan)", _yuan(run["monthly_cost_change_yuan"])),
    ]
    summary = (
        '<section id="summary"><h2>摘要 Summary</h2><div class="cards">'
        + "".join(
            f'<div class="card"><div>{label}</div><div class="big">{value}</div></div>'
            for label, value in cards
        )
        + "</div>"
        '<p class="note">费用估算 How the cost is estimated: '
        f"{escape(run['cost_computed_as'])}.</p>"
        "</section>"
    )
    changed = json.loads(run["changed"])
    reform = (
        '<section id="reform"><h2>改革参数 The reform</h2>'
        f"<p>{escape_free_text(run['reform_description'])}</p>"
        + table(
            [("参数 Parameter", False), ("生效 From", False), ("取值 Value", False)],
            (
                f"<tr>{table_cell(f'<code>{escape(p)}</code>')}"
                f"{table_cell(escape(start))}{table_cell(escape(value))}</tr>"
                for p, entries in sorted(changed.items())
                for start, value in entries
            ),
        )
        + f"<p>取值日期 Values in effect on <b>{escape(run['as_of'])}</b>; 季度 evaluated on the "
        f"published quarter <b>{escape(run['quarter'])}</b>. 文件 File "
        f"<code>{escape(Path(run['reform_file']).name)}</code>, SHA-256 "
        f'<span class="hash">{escape(run["reform_sha256"])}</span>.</p></section>'
    )
    by_county = (
        changes.group_by("county_code")
        .agg(pl.col("newly_flagged").sum(), pl.col("no_longer_flagged").sum())
        .sort("county_code")
    )

    def label(code: str) -> str:
        return f"{counties.get(code, '')} {code}".strip()

    charts = (
        '<section id="counties"><h2>各县变化 Change by county</h2>'
        + bar_chart_svg(
            [(label(c), int(n)) for c, n, _ in by_county.iter_rows()],
            "新增预警 newly flagged by county",
        )
        + "<h3>不再预警 No longer flagged</h3>"
        + bar_chart_svg(
            [(label(c), int(g)) for c, _, g in by_county.iter_rows()],
            "不再预警 no longer flagged by county",
        )
        + "</section>"
    )
    by_rule = (
        changes.group_by("rule_id")
        .agg(
            pl.col("baseline_warnings").sum(),
            pl.col("reform_warnings").sum(),
            pl.col("newly_flagged").sum(),
            pl.col("no_longer_flagged").sum(),
            # null for the rules that imply no payment (`whatif.PAYMENTS` has the others)
            pl.col("monthly_cost_change_yuan").sum(),
            pl.col("monthly_cost_change_yuan").is_not_null().any().alias("pays"),
        )
        .with_columns((pl.col("newly_flagged") + pl.col("no_longer_flagged")).alias("moved"))
        .sort(["moved", "rule_id"], descending=[True, False])
    )
    top = (
        '<section id="rules"><h2>规则 Rules, most changed first</h2>'
        + table(
            [
                ("规则 Rule", False),
                ("现行 Baseline", True),
                ("改革 Reform", True),
                ("新增 Newly", True),
                ("不再 No longer", True),
                ("每月费用变化 Monthly cost change", True),
            ],
            (
                "<tr>"
                + table_cell(f"<code>{escape(r)}</code> {escape(rules.get(r, ''))}")
                + "".join(table_cell(format_count(v), True) for v in (b, f, n, g))
                + table_cell(_yuan(c) if pays else "—", True)
                + "</tr>"
                for r, b, f, n, g, c, pays, _ in by_rule.iter_rows()
            ),
        )
        + "</section>"
    )
    detail = (
        '<section id="detail"><h2>明细 Every rule × county × category</h2>'
        + table(
            [
                ("规则 Rule", False),
                ("县 County", False),
                ("类别 Category", False),
                ("现行 Baseline", True),
                ("改革 Reform", True),
                ("新增 Newly", True),
                ("不再 No longer", True),
            ],
            (
                "<tr>"
                + table_cell(f"<code>{escape(r)}</code>")
                + table_cell(escape(label(c)))
                + table_cell(escape(cat))
                + "".join(table_cell(format_count(v), True) for v in (b, f, n, g))
                + "</tr>"
                for _, _, r, c, cat, b, f, n, g, _ in changes.iter_rows()
            ),
        )
        + "</section>"
    )
    title = f"政策模拟 What if — {run['whatif']} on {run['quarter']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        '<p class="sub">低收入人口动态监测 safetynet · 若参数调整，本季度的预警会怎样变化 How the '
        "quarter's warnings would change under the reformed parameters</p>",
        summary,
        reform,
        charts,
        top,
        detail,
        "<footer>来源 Sources: changes.parquet, run.parquet (the warehouse's whatif_changes and "
        "whatif_runs). 本页只含计数，不含身份证号、姓名或预警编号 Counts only: no identity "
        "number, name or warning key.</footer>",
    ]
    return page(title, body)


def write_whatif_page(out: Path, name: str) -> Path:
    path = Outputs(out).whatif_page(name)
    tmp = aside(path)
    tmp.write_bytes(render_whatif_page(out, name).encode("utf-8"))
    os.replace(tmp, path)
    return path
